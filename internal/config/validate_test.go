package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		setting string // the message must start with "config: <setting>: "
		want    string // and contain this
	}{
		{"empty server name", func(c *Config) { c.ServerName = "" }, "server_name", "must not be empty"},
		{"server name with scheme", func(c *Config) { c.ServerName = "https://example.org" }, "server_name", "port"},
		{"server name with path", func(c *Config) { c.ServerName = "example.org/x" }, "server_name", `found '/'`},
		{"server name with space", func(c *Config) { c.ServerName = "exa mple.org" }, "server_name", "hostname"},
		{"server name empty label", func(c *Config) { c.ServerName = "example..org" }, "server_name", "dot-separated"},
		{"server name trailing dot", func(c *Config) { c.ServerName = "example.org." }, "server_name", "dot-separated"},
		{"server name port 0", func(c *Config) { c.ServerName = "example.org:0" }, "server_name", "port between 1 and 65535"},
		{"server name port too big", func(c *Config) { c.ServerName = "example.org:65536" }, "server_name", "port"},
		{"server name signed port", func(c *Config) { c.ServerName = "example.org:+80" }, "server_name", "port"},
		{"server name empty port", func(c *Config) { c.ServerName = "example.org:" }, "server_name", "port"},
		{"server name bare IPv6", func(c *Config) { c.ServerName = "::1" }, "server_name", "brackets"},
		{"server name bad bracket", func(c *Config) { c.ServerName = "[::1" }, "server_name", "]"},
		{"server name IPv4 in brackets", func(c *Config) { c.ServerName = "[1.2.3.4]" }, "server_name", "IPv6"},
		{"server name junk after bracket", func(c *Config) { c.ServerName = "[::1]x" }, "server_name", ":port"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir", "must not be empty"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen", "host:port"},
		{"listen named port", func(c *Config) { c.Listen = "localhost:http" }, "listen", "numeric port"},
		{"listen bad host", func(c *Config) { c.Listen = "a b:80" }, "listen", "hostname"},
		{"postgres", func(c *Config) { c.Database = "postgres://axon:pw@db/axon" }, "database", "PostgreSQL is not supported yet"},
		{"postgresql", func(c *Config) { c.Database = "postgresql://db/axon" }, "database", "not supported yet"},
		{"unknown db scheme", func(c *Config) { c.Database = "mysql://u:pw@h/db" }, "database", `got scheme "mysql"`},
		{"db plain path", func(c *Config) { c.Database = "/var/axon.db" }, "database", "sqlite:/var/axon.db"},
		{"sqlite without path", func(c *Config) { c.Database = "sqlite:" }, "database", "file path"},
		{"database synchronous", func(c *Config) { c.DatabaseSynchronous = "off" }, "database_synchronous", `must be normal or full (got "off")`},
		{"database synchronous case", func(c *Config) { c.DatabaseSynchronous = "FULL" }, "database_synchronous", "must be normal or full"},
		{"outbound network", func(c *Config) { c.Outbound.AllowedNetworks = []string{"10.0.0.0/8", "intranet.example"} }, "outbound.allowed_networks", `"intranet.example" is not an IP address`},
		{"outbound bad prefix", func(c *Config) { c.Outbound.AllowedNetworks = []string{"10.0.0.0/33"} }, "outbound.allowed_networks", "not a network"},
		{"relative public baseurl", func(c *Config) { c.PublicBaseURL = "matrix.example.org/" }, "public_baseurl", "absolute http"},
		{"ftp public baseurl", func(c *Config) { c.PublicBaseURL = "ftp://example.org/" }, "public_baseurl", "absolute http"},
		{"public baseurl query", func(c *Config) { c.PublicBaseURL = "https://example.org/?a=b" }, "public_baseurl", "query"},
		{"registration", func(c *Config) { c.Registration = "x" }, "registration", `must be one of disabled, token, open (got "x")`},
		{"registration case", func(c *Config) { c.Registration = "Open" }, "registration", "must be one of"},
		{"login rate zero", func(c *Config) { c.RateLimit.Login.PerSecond = 0 }, "rate_limit.login.per_second", "positive"},
		{"register rate negative", func(c *Config) { c.RateLimit.Register.PerSecond = -1 }, "rate_limit.register.per_second", "positive"},
		{"message rate NaN", func(c *Config) { c.RateLimit.Message.PerSecond = math.NaN() }, "rate_limit.message.per_second", "positive"},
		{"default rate Inf", func(c *Config) { c.RateLimit.Default.PerSecond = math.Inf(1) }, "rate_limit.default.per_second", "positive"},
		{"burst zero", func(c *Config) { c.RateLimit.Login.Burst = 0 }, "rate_limit.login.burst", "at least 1"},
		{"burst checked with limits off", func(c *Config) { c.RateLimits = false; c.RateLimit.Default.Burst = -1 }, "rate_limit.default.burst", "at least 1"},
		{"max request bytes zero", func(c *Config) { c.MaxRequestBytes = 0 }, "max_request_bytes", "greater than 0"},
		{"max request bytes negative", func(c *Config) { c.MaxRequestBytes = -5 }, "max_request_bytes", "greater than 0"},
		{"empty signing key path", func(c *Config) { c.SigningKeyPath = "" }, "signing_key_path", "must not be empty"},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, "log_level", "debug, info, warn, error"},
		{"well-known", func(c *Config) { c.WellKnownClient = "example.org" }, "well_known_client_base_url", "absolute http"},
		{"turn uri scheme", func(c *Config) { c.TURN.URIs = []string{"stun:x"}; c.TURN.SharedSecret = "s" }, "turn.uris", "turn: or turns:"},
		{"turn without secret", func(c *Config) { c.TURN.URIs = []string{"turn:x"} }, "turn.shared_secret", "must be set"},
		{"turn ttl", func(c *Config) { c.TURN.TTL = 0 }, "turn.ttl", "greater than 0"},
		{"negative access token lifetime", func(c *Config) { c.RefreshTokens.AccessTokenLifetime = -time.Second }, "refresh_tokens.access_token_lifetime", "negative"},
		{"negative refresh token lifetime", func(c *Config) { c.RefreshTokens.RefreshTokenLifetime = -time.Second }, "refresh_tokens.refresh_token_lifetime", "negative"},
		{"refresh shorter than access", func(c *Config) { c.RefreshTokens.RefreshTokenLifetime = time.Minute }, "refresh_tokens.refresh_token_lifetime", "longer than access_token_lifetime"},
		{"app service query timeout zero", func(c *Config) { c.AppServiceQueryTimeout = 0 }, "app_service_query_timeout", "greater than 0"},
		{"app service query timeout too long", func(c *Config) { c.AppServiceQueryTimeout = 2 * time.Minute }, "app_service_query_timeout", "at most 1m"},
		{"support page", func(c *Config) { c.Support.Page = "example.org/help" }, "support.page", "absolute http"},
		{"support contact without address", func(c *Config) { c.Support.Contacts = []string{"m.role.admin"} }, "support.contacts", "ROLE ADDRESS"},
		{"support contact without role", func(c *Config) { c.Support.Contacts = []string{"@a:b c@d"} }, "support.contacts", "role"},
		{"support contact bad address", func(c *Config) { c.Support.Contacts = []string{"m.role.admin alice"} }, "support.contacts", "not a Matrix user ID"},
		{"support contact two emails", func(c *Config) { c.Support.Contacts = []string{"m.role.admin a@b c@d"} }, "support.contacts", "twice"},
		{"email required without smtp", func(c *Config) { c.RegistrationRequiresEmail = true }, "registration_requires_email", "smtp_host"},
		{"smtp without from", func(c *Config) { c.Email.SMTPHost = "smtp.example.org" }, "email.from", "must be set"},
		{"smtp bad from", func(c *Config) { c.Email.SMTPHost = "smtp.example.org"; c.Email.From = "noreply" }, "email.from", "email address"},
		{"smtp host with port", func(c *Config) { c.Email.SMTPHost = "smtp.example.org:587"; c.Email.From = "a@b.org" }, "email.smtp_host", "without port"},
		{"smtp port", func(c *Config) { c.Email.SMTPPort = 0 }, "email.smtp_port", "between 1 and 65535"},
		{"smtp tls mode", func(c *Config) { c.Email.SMTPTLS = "ssl" }, "email.smtp_tls", "starttls, tls, none"},
		{"smtp password twice", func(c *Config) {
			c.Email.SMTPUsername, c.Email.SMTPPassword, c.Email.SMTPPasswordFile = "u", "p", "/run/secret"
		}, "email.smtp_password_file", "not both"},
		{"smtp password without user", func(c *Config) { c.Email.SMTPPassword = "p" }, "email.smtp_username", "must be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+tt.setting+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want \"config: %s: ...%s...\"", msg, tt.setting, tt.want)
			}
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != tt.setting {
				t.Errorf("errors.As SettingError = %+v, want Setting %q", se, tt.setting)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Registration = "x"
	c.LogLevel = "y"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "registration") || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("error = %v, want both registration and log_level", err)
	}
}

func TestPostgresPasswordNotEchoed(t *testing.T) {
	for _, db := range []string{"postgres://axon:topsecret@db/axon", "mysql://axon:topsecret@db/axon"} {
		c := Default()
		c.Database = db
		if err := c.Validate(); err == nil || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: error = %v", db, err)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"defaults", func(c *Config) {}},
		{"dns name", func(c *Config) { c.ServerName = "matrix.example.org" }},
		{"dns name with port", func(c *Config) { c.ServerName = "example.org:8448" }},
		{"ipv4", func(c *Config) { c.ServerName = "1.2.3.4" }},
		{"ipv4 with port", func(c *Config) { c.ServerName = "1.2.3.4:1234" }},
		{"ipv6", func(c *Config) { c.ServerName = "[1234:5678::abcd]" }},
		{"ipv6 with port", func(c *Config) { c.ServerName = "[::1]:8448" }},
		{"hyphen", func(c *Config) { c.ServerName = "my-server.example" }},
		{"token registration", func(c *Config) { c.Registration = "token" }},
		{"open registration", func(c *Config) { c.Registration = "open" }},
		{"listen all interfaces", func(c *Config) { c.Listen = ":8008" }},
		{"listen port 0", func(c *Config) { c.Listen = "127.0.0.1:0" }},
		{"listen hostname", func(c *Config) { c.Listen = "localhost:8008" }},
		{"listen ipv6 zone", func(c *Config) { c.Listen = "[fe80::1%eth0]:8008" }},
		{"sqlite path", func(c *Config) { c.Database = "sqlite:./x.db" }},
		{"sqlite case", func(c *Config) { c.Database = "SQLite:/x.db" }},
		{"https baseurl with path", func(c *Config) { c.PublicBaseURL = "https://example.org/matrix/" }},
		{"fractional rate", func(c *Config) { c.RateLimit.Login.PerSecond = 0.001 }},
		{"database synchronous full", func(c *Config) { c.DatabaseSynchronous = "full" }},
		{"outbound networks", func(c *Config) { c.Outbound.AllowedNetworks = []string{"10.20.0.0/16", "192.168.1.5", "fd00::/8"} }},
		{"email", func(c *Config) {
			c.Email = EmailSettings{SMTPHost: "smtp.example.org", SMTPPort: 465, SMTPTLS: "tls", From: "Example <noreply@example.org>",
				SMTPUsername: "axon", SMTPPasswordFile: "/run/secret"}
			c.RegistrationRequiresEmail = true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}
