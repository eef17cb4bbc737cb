package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "axon.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		ServerName:          "localhost",
		DataDir:             "./axon-data",
		Listen:              "127.0.0.1:8008",
		Database:            "",
		DatabaseSynchronous: "normal",
		PublicBaseURL:       "http://127.0.0.1:8008/",
		Registration:        "disabled",
		PasswordMinLength:   8,
		DefaultRoomVersion:  "12",
		RateLimits:          true,
		MaxRequestBytes:     1048576,
		SigningKeyPath:      filepath.Join("axon-data", "signing.key"),
		LogLevel:            "info",
		WellKnownClient:     "http://127.0.0.1:8008/",
		Media:               MediaSettings{MaxUploadBytes: 50 << 20, Dir: filepath.Join("axon-data", "media")},
		TURN:                TURNSettings{TTL: 86400},
		RefreshTokens:       RefreshTokenSettings{AccessTokenLifetime: 5 * time.Minute},
		Email:               EmailSettings{SMTPPort: 587, SMTPTLS: "starttls"},
		Connections:         ConnectionSettings{MaxTotal: 10000, MaxPerAddress: 256, RequestBodyTimeout: 10 * time.Second, RequestBodyMinRate: 8192},
		ServerNotices:       ServerNoticesSettings{Enabled: true, Localpart: "_server", DisplayName: "Server Notices", RoomName: "Server Notices"},

		AppServiceQueryTimeout: 10 * time.Second,
	}
	want.RateLimit.Login = RateLimit{PerSecond: 0.2, Burst: 5}
	want.RateLimit.Register = RateLimit{PerSecond: 0.1, Burst: 3}
	want.RateLimit.Message = RateLimit{PerSecond: 10, Burst: 50}
	want.RateLimit.Default = RateLimit{PerSecond: 20, Burst: 100}
	want.RateLimit.KeyClaim = RateLimit{PerSecond: 0.1, Burst: 5}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(\"\", nil) =\n%+v\nwant\n%+v", c, want)
	}
	if !reflect.DeepEqual(Default(), want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", Default(), want)
	}
	if got := c.DatabasePath(); got != filepath.Join("axon-data", "axon.db") {
		t.Errorf("DatabasePath() = %q", got)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(c *Config) // applied to Default()
	}{
		{"server name", map[string]string{"AXON_SERVER_NAME": "example.org"},
			func(c *Config) { c.ServerName = "example.org" }},
		{"data dir moves signing key", map[string]string{"AXON_DATA_DIR": "/srv/axon"},
			func(c *Config) {
				c.DataDir = "/srv/axon"
				c.SigningKeyPath = "/srv/axon/signing.key"
				c.Media.Dir = "/srv/axon/media"
			}},
		{"listen moves base URLs", map[string]string{"AXON_LISTEN": "10.0.0.1:9000"},
			func(c *Config) {
				c.Listen = "10.0.0.1:9000"
				c.PublicBaseURL = "http://10.0.0.1:9000/"
				c.WellKnownClient = "http://10.0.0.1:9000/"
			}},
		{"wildcard listen derives localhost", map[string]string{"AXON_LISTEN": "0.0.0.0:8008"},
			func(c *Config) {
				c.Listen = "0.0.0.0:8008"
				c.PublicBaseURL = "http://localhost:8008/"
				c.WellKnownClient = "http://localhost:8008/"
			}},
		{"IPv6 wildcard listen", map[string]string{"AXON_LISTEN": "[::]:8448"},
			func(c *Config) {
				c.Listen = "[::]:8448"
				c.PublicBaseURL = "http://localhost:8448/"
				c.WellKnownClient = "http://localhost:8448/"
			}},
		{"IPv6 listen keeps brackets", map[string]string{"AXON_LISTEN": "[::1]:8008"},
			func(c *Config) {
				c.Listen = "[::1]:8008"
				c.PublicBaseURL = "http://[::1]:8008/"
				c.WellKnownClient = "http://[::1]:8008/"
			}},
		{"database", map[string]string{"AXON_DATABASE": "sqlite:/tmp/x.db"},
			func(c *Config) { c.Database = "sqlite:/tmp/x.db" }},
		{"public baseurl gains slash and feeds well-known", map[string]string{"AXON_PUBLIC_BASEURL": "https://matrix.example.org"},
			func(c *Config) {
				c.PublicBaseURL = "https://matrix.example.org/"
				c.WellKnownClient = "https://matrix.example.org/"
			}},
		{"registration", map[string]string{"AXON_REGISTRATION": "token"},
			func(c *Config) { c.Registration = "token" }},
		{"shared secret", map[string]string{"AXON_REGISTRATION_SHARED_SECRET": " s3cret "},
			func(c *Config) { c.RegistrationSharedSecret = " s3cret " }},
		{"rate limits false", map[string]string{"AXON_RATE_LIMITS": "false"},
			func(c *Config) { c.RateLimits = false }},
		{"rate limits 0", map[string]string{"AXON_RATE_LIMITS": "0"},
			func(c *Config) { c.RateLimits = false }},
		{"rate limits no", map[string]string{"AXON_RATE_LIMITS": "no"},
			func(c *Config) { c.RateLimits = false }},
		{"rate limits OFF", map[string]string{"AXON_RATE_LIMITS": "OFF"},
			func(c *Config) { c.RateLimits = false }},
		{"rate limits true", map[string]string{"AXON_RATE_LIMITS": "true"},
			func(c *Config) {}},
		{"login rate limit", map[string]string{"AXON_RATE_LIMIT_LOGIN": "0.5:5"},
			func(c *Config) { c.RateLimit.Login = RateLimit{PerSecond: 0.5, Burst: 5} }},
		{"register rate limit", map[string]string{"AXON_RATE_LIMIT_REGISTER": "1:2"},
			func(c *Config) { c.RateLimit.Register = RateLimit{PerSecond: 1, Burst: 2} }},
		{"message rate limit", map[string]string{"AXON_RATE_LIMIT_MESSAGE": "3.5:7"},
			func(c *Config) { c.RateLimit.Message = RateLimit{PerSecond: 3.5, Burst: 7} }},
		{"default rate limit", map[string]string{"AXON_RATE_LIMIT_DEFAULT": "100:1000"},
			func(c *Config) { c.RateLimit.Default = RateLimit{PerSecond: 100, Burst: 1000} }},
		{"max request bytes", map[string]string{"AXON_MAX_REQUEST_BYTES": "2048"},
			func(c *Config) { c.MaxRequestBytes = 2048 }},
		{"signing key path", map[string]string{"AXON_SIGNING_KEY_PATH": "/etc/axon/key"},
			func(c *Config) { c.SigningKeyPath = "/etc/axon/key" }},
		{"log level", map[string]string{"AXON_LOG_LEVEL": "debug"},
			func(c *Config) { c.LogLevel = "debug" }},
		{"well-known client", map[string]string{"AXON_WELL_KNOWN_CLIENT_BASE_URL": "https://m.example.org"},
			func(c *Config) { c.WellKnownClient = "https://m.example.org" }},
		{"media", map[string]string{"AXON_MEDIA_MAX_UPLOAD_BYTES": "1000", "AXON_MEDIA_DIR": "/mnt/media",
			"AXON_MEDIA_USER_QUOTA_BYTES": "5000", "AXON_MEDIA_URL_PREVIEWS": "on", "AXON_MEDIA_FREEZE_LEGACY": "yes"},
			func(c *Config) {
				c.Media = MediaSettings{MaxUploadBytes: 1000, Dir: "/mnt/media", UserQuotaBytes: 5000, URLPreviews: true, FreezeLegacy: true}
			}},
		{"turn", map[string]string{"AXON_TURN_URIS": " turn:t.example.org?transport=udp,, turns:t.example.org:5349 ",
			"AXON_TURN_SHARED_SECRET": "s", "AXON_TURN_TTL": "600"},
			func(c *Config) {
				c.TURN = TURNSettings{URIs: []string{"turn:t.example.org?transport=udp", "turns:t.example.org:5349"}, SharedSecret: "s", TTL: 600}
			}},
		{"refresh tokens", map[string]string{"AXON_REFRESH_TOKENS_ACCESS_TOKEN_LIFETIME": "90s",
			"AXON_REFRESH_TOKENS_REFRESH_TOKEN_LIFETIME": " 720h "},
			func(c *Config) {
				c.RefreshTokens = RefreshTokenSettings{AccessTokenLifetime: 90 * time.Second, RefreshTokenLifetime: 720 * time.Hour}
			}},
		{"support", map[string]string{"AXON_SUPPORT_PAGE": "https://example.org/help?x=1",
			"AXON_SUPPORT_CONTACTS": "m.role.admin @a:example.org a@example.org, m.role.security sec@example.org"},
			func(c *Config) {
				c.Support = SupportSettings{Page: "https://example.org/help?x=1",
					Contacts: []string{"m.role.admin @a:example.org a@example.org", "m.role.security sec@example.org"}}
			}},
		{"app service query timeout", map[string]string{"AXON_APP_SERVICE_QUERY_TIMEOUT": "3s"},
			func(c *Config) { c.AppServiceQueryTimeout = 3 * time.Second }},
		{"empty value means default", map[string]string{"AXON_SERVER_NAME": "", "AXON_MAX_REQUEST_BYTES": ""},
			func(c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("", envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env, value string
		want       string // every message must name the setting and the variable
	}{
		{"AXON_RATE_LIMITS", "maybe", "config: rate_limits (set by the environment variable AXON_RATE_LIMITS): expected true or false"},
		{"AXON_MAX_REQUEST_BYTES", "1MB", "config: max_request_bytes (set by the environment variable AXON_MAX_REQUEST_BYTES): expected a whole number"},
		{"AXON_REFRESH_TOKENS_ACCESS_TOKEN_LIFETIME", "300", "config: refresh_tokens.access_token_lifetime (set by the environment variable AXON_REFRESH_TOKENS_ACCESS_TOKEN_LIFETIME): expected a duration"},
		{"AXON_RATE_LIMIT_LOGIN", "5", "config: rate_limit.login (set by the environment variable AXON_RATE_LIMIT_LOGIN): expected PER_SECOND:BURST"},
		{"AXON_RATE_LIMIT_MESSAGE", "x:5", "config: rate_limit.message (set by the environment variable AXON_RATE_LIMIT_MESSAGE): per second rate"},
		{"AXON_RATE_LIMIT_DEFAULT", "1:1.5", "config: rate_limit.default (set by the environment variable AXON_RATE_LIMIT_DEFAULT): burst"},
		// Parsed fine but rejected by Validate, which names the leaf setting
		// and the variable it came from.
		{"AXON_RATE_LIMIT_REGISTER", "0:5", "config: rate_limit.register.per_second (set by the environment variable AXON_RATE_LIMIT_REGISTER): must be a positive number"},
		{"AXON_REGISTRATION", "x", `config: registration (set by the environment variable AXON_REGISTRATION): must be one of disabled, token, open (got "x")`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("", envMap(map[string]string{tt.env: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFile(t *testing.T) {
	path := writeFile(t, `
server_name: example.org:8448
data_dir: /var/lib/axon
listen: "[::]:8008"
database: sqlite:/var/lib/axon/main.db
public_baseurl: https://matrix.example.org/
registration: open
registration_shared_secret: hunter2
rate_limits: off
rate_limit:
  login: {per_second: 1, burst: 2}
  message:
    burst: 60
max_request_bytes: 4096
log_level: warn
well_known_client_base_url: https://client.example.org
turn:
  uris:
    - turn:turn.example.org:3478?transport=udp
    - "turns:turn.example.org:5349?transport=tcp"
  shared_secret: coturn-secret
`)
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ServerName = "example.org:8448"
	want.DataDir = "/var/lib/axon"
	want.Listen = "[::]:8008"
	want.Database = "sqlite:/var/lib/axon/main.db"
	want.PublicBaseURL = "https://matrix.example.org/"
	want.Registration = "open"
	want.RegistrationSharedSecret = "hunter2"
	want.RateLimits = false
	want.RateLimit.Login = RateLimit{PerSecond: 1, Burst: 2}
	want.RateLimit.Message.Burst = 60 // per_second keeps its default
	want.MaxRequestBytes = 4096
	want.SigningKeyPath = "/var/lib/axon/signing.key"
	want.Media.Dir = "/var/lib/axon/media"
	want.LogLevel = "warn"
	want.WellKnownClient = "https://client.example.org"
	want.TURN.URIs = []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"}
	want.TURN.SharedSecret = "coturn-secret"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if got.DatabasePath() != "/var/lib/axon/main.db" {
		t.Errorf("DatabasePath() = %q", got.DatabasePath())
	}
}

func TestEnvBeatsFile(t *testing.T) {
	path := writeFile(t, "server_name: file.example\nlog_level: warn\n")
	got, err := Load(path, envMap(map[string]string{"AXON_SERVER_NAME": "env.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.ServerName != "env.example" || got.LogLevel != "warn" {
		t.Errorf("server_name = %q, log_level = %q", got.ServerName, got.LogLevel)
	}
}

func TestFileEmptyValuesMeanDefault(t *testing.T) {
	for _, content := range []string{
		"",
		"# only a comment\n",
		"~\n",
		"server_name:\nrate_limit:\nmax_request_bytes: ~\nrate_limits:\npublic_baseurl: \"\"\n",
		"rate_limit:\n  login:\n",
		"turn:\n  uris: []\n",
	} {
		path := writeFile(t, content)
		got, err := Load(path, nil)
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		// The default data_dir of a file is next to it.
		want := staticDefaults()
		want.DataDir = filepath.Join(filepath.Dir(path), DefaultDataDir)
		want.fillDefaults()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got\n%+v\nwant defaults", content, got)
		}
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown key", "server_name: a\nserver_nmae: b\n", `config: server_nmae: unknown setting (`},
		{"unknown key reports line", "server_name: a\nserver_nmae: b\n", `line 2)`},
		{"unknown nested key", "rate_limit:\n  login:\n    burts: 3\n", "config: rate_limit.login.burts: unknown setting"},
		{"unknown rate limit class", "rate_limit:\n  logout: {burst: 1}\n", "config: rate_limit.logout: unknown setting"},
		{"bad int", "max_request_bytes: 1MiB\n", `config: max_request_bytes: expected a whole number, got "1MiB"`},
		{"bad duration", "refresh_tokens:\n  access_token_lifetime: 300\n", `config: refresh_tokens.access_token_lifetime: expected a duration such as 90s, 5m or 12h, got "300"`},
		{"bad bool", "rate_limits: sometimes\n", `config: rate_limits: expected true or false, got "sometimes"`},
		{"bad float", "rate_limit:\n  login:\n    per_second: fast\n", `config: rate_limit.login.per_second: expected a number, got "fast"`},
		{"list for string", "server_name: [a, b]\n", "config: server_name: expected a string, got a list"},
		{"scalar for list", "turn:\n  uris: turn:a\n", `config: turn.uris: expected a list of strings, got "turn:a"`},
		{"mapping in list", "turn:\n  uris: [{a: b}]\n", "config: turn.uris: expected a list of strings, got a mapping in it"},
		{"scalar for mapping", "rate_limit: 5\n", `config: rate_limit: expected a mapping of settings, got "5"`},
		{"top level not a mapping", "- a\n", "config: top level: expected a mapping"},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", "config: listen: set twice, on line 1 and "},
		{"duplicate nested key", "rate_limit:\n  login: {burst: 1, burst: 2}\n", "config: rate_limit.login.burst: set twice"},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", "only one YAML document"},
		{"syntax error", "listen: [\n", "config: "},
		{"validation after load", "registration: maybe\n", `config: registration: must be one of disabled, token, open (got "maybe")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSupportContacts(t *testing.T) {
	got, err := SupportSettings{Contacts: []string{"m.role.admin @a:example.org a@example.org", " org.example.role  b@example.org "}}.ParsedContacts()
	want := []SupportContact{{Role: "m.role.admin", MatrixID: "@a:example.org", EmailAddress: "a@example.org"},
		{Role: "org.example.role", EmailAddress: "b@example.org"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error = %v, want it to name the file", err)
	}
}

func TestDatabasePath(t *testing.T) {
	tests := []struct{ db, dataDir, want string }{
		{"", "/d", "/d/axon.db"},
		{"", "rel", "rel/axon.db"},
		{"sqlite:/x/y.db", "/d", "/x/y.db"},
		{"sqlite:y.db", "/d", "y.db"}, // relative to the working directory, not data_dir
		{"postgres://u@h/db", "/d", ""},
	}
	for _, tt := range tests {
		c := &Config{Database: tt.db, DataDir: tt.dataDir}
		if got := c.DatabasePath(); got != tt.want {
			t.Errorf("DatabasePath(%q, %q) = %q, want %q", tt.db, tt.dataDir, got, tt.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"server_name":                "AXON_SERVER_NAME",
		"public_baseurl":             "AXON_PUBLIC_BASEURL",
		"rate_limit.login":           "AXON_RATE_LIMIT_LOGIN",
		"well_known_client_base_url": "AXON_WELL_KNOWN_CLIENT_BASE_URL",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestEnvErrorsNameTheVariable: a bad value from the environment is
// reported with the variable's name, so nobody searches axon.yaml for it;
// a bad value from the file is not blamed on the environment.
func TestEnvErrorsNameTheVariable(t *testing.T) {
	for env, want := range map[string]string{
		"AXON_REGISTRATION":          "registration (set by the environment variable AXON_REGISTRATION): must be one of",
		"AXON_RATE_LIMIT_LOGIN":      "rate_limit.login.burst (set by the environment variable AXON_RATE_LIMIT_LOGIN)",
		"AXON_MAX_REQUEST_BYTES":     "max_request_bytes (set by the environment variable AXON_MAX_REQUEST_BYTES): expected a whole number",
		"AXON_CONNECTIONS_MAX_TOTAL": "connections.max_total (set by the environment variable AXON_CONNECTIONS_MAX_TOTAL): must not be negative",
	} {
		val := map[string]string{"AXON_REGISTRATION": "bogus", "AXON_RATE_LIMIT_LOGIN": "1:0",
			"AXON_MAX_REQUEST_BYTES": "lots", "AXON_CONNECTIONS_MAX_TOTAL": "-1"}[env]
		_, err := Load("", envMap(map[string]string{env: val}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: error %v, want %q", env, val, err, want)
		}
	}
	_, err := Load(writeFile(t, "registration: bogus\n"), envMap(map[string]string{"AXON_LOG_LEVEL": "debug"}))
	if err == nil || strings.Contains(err.Error(), "environment") {
		t.Errorf("bad value from the file: %v", err)
	}
}
