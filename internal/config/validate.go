package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// SettingError reports an invalid value for one setting. Setting is the
// dotted YAML key, so operators can find it in axon.yaml directly.
type SettingError struct {
	Setting string
	Msg     string
	// Env is the environment variable the value came from, if it did:
	// the operator then looks there, not in axon.yaml.
	Env string
}

func (e *SettingError) Error() string {
	if e.Env != "" {
		return "config: " + e.Setting + " (set by the environment variable " + e.Env + "): " + e.Msg
	}
	return "config: " + e.Setting + ": " + e.Msg
}

// Validate checks every setting and reports all problems at once (joined with
// errors.Join), so a misconfigured server needs one restart, not one per
// mistake.
func (c *Config) Validate() error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, &SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)})
	}

	if err := checkServerName(c.ServerName); err != nil {
		bad("server_name", "%v (got %q)", err, c.ServerName)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%v (got %q)", err, c.Listen)
	}
	if err := checkDatabase(c.Database); err != nil {
		bad("database", "%v", err)
	}
	switch c.DatabaseSynchronous {
	case SynchronousNormal, SynchronousFull:
	default:
		bad("database_synchronous", "must be %s or %s (got %q)", SynchronousNormal, SynchronousFull, c.DatabaseSynchronous)
	}
	if _, err := c.Outbound.Networks(); err != nil {
		bad("outbound.allowed_networks", "%v", err)
	}
	if err := checkHTTPURL(c.PublicBaseURL); err != nil {
		bad("public_baseurl", "%v (got %q)", err, c.PublicBaseURL)
	}
	switch c.Registration {
	case RegistrationDisabled, RegistrationToken, RegistrationOpen:
	default:
		bad("registration", "must be one of %s, %s, %s (got %q)",
			RegistrationDisabled, RegistrationToken, RegistrationOpen, c.Registration)
	}
	for _, rl := range []struct {
		name string
		rl   RateLimit
	}{
		{"login", c.RateLimit.Login},
		{"register", c.RateLimit.Register},
		{"message", c.RateLimit.Message},
		{"default", c.RateLimit.Default},
		{"key_claim", c.RateLimit.KeyClaim},
	} {
		// Checked even with rate_limits off, so that switching them back on
		// cannot turn a config that loaded fine into one that does not.
		if ps := rl.rl.PerSecond; !(ps > 0) || math.IsInf(ps, 0) {
			bad("rate_limit."+rl.name+".per_second", "must be a positive number (got %v)", ps)
		}
		if rl.rl.Burst < 1 {
			bad("rate_limit."+rl.name+".burst", "must be at least 1 (got %d)", rl.rl.Burst)
		}
	}
	if c.PasswordMinLength < 1 || c.PasswordMinLength > 512 {
		bad("password_min_length", "must be between 1 and 512 (got %d)", c.PasswordMinLength)
	}
	if c.MaxRequestBytes <= 0 {
		bad("max_request_bytes", "must be greater than 0 (got %d)", c.MaxRequestBytes)
	}
	if cs := c.Connections; cs.MaxTotal < 0 {
		bad("connections.max_total", "must not be negative (got %d)", cs.MaxTotal)
	}
	if cs := c.Connections; cs.MaxPerAddress < 0 {
		bad("connections.max_per_address", "must not be negative (got %d)", cs.MaxPerAddress)
	}
	if cs := c.Connections; cs.RequestBodyTimeout <= 0 {
		bad("connections.request_body_timeout", "must be greater than 0 (got %v)", cs.RequestBodyTimeout)
	}
	if cs := c.Connections; cs.RequestBodyMinRate <= 0 {
		bad("connections.request_body_min_rate", "must be greater than 0 (got %d)", cs.RequestBodyMinRate)
	}
	if c.Media.MaxUploadBytes <= 0 {
		bad("media.max_upload_bytes", "must be greater than 0 (got %d)", c.Media.MaxUploadBytes)
	}
	if c.Media.UserQuotaBytes < 0 {
		bad("media.user_quota_bytes", "must not be negative (got %d)", c.Media.UserQuotaBytes)
	}
	if c.SigningKeyPath == "" {
		bad("signing_key_path", "must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be one of debug, info, warn, error (got %q)", c.LogLevel)
	}
	if err := checkHTTPURL(c.WellKnownClient); err != nil {
		bad("well_known_client_base_url", "%v (got %q)", err, c.WellKnownClient)
	}
	for _, u := range c.TURN.URIs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			bad("turn.uris", "must be turn: or turns: URIs (got %q)", u)
		}
	}
	if len(c.TURN.URIs) > 0 && c.TURN.SharedSecret == "" {
		bad("turn.shared_secret", "must be set when turn.uris is set")
	}
	if c.TURN.TTL <= 0 {
		bad("turn.ttl", "must be greater than 0 (got %d)", c.TURN.TTL)
	}
	if c.Support.Page != "" {
		if u, err := url.Parse(c.Support.Page); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("support.page", "must be an absolute http:// or https:// URL (got %q)", c.Support.Page)
		}
	}
	if rt := c.RefreshTokens; rt.AccessTokenLifetime < 0 {
		bad("refresh_tokens.access_token_lifetime", "must not be negative (got %v)", rt.AccessTokenLifetime)
	}
	if rt := c.RefreshTokens; rt.RefreshTokenLifetime < 0 {
		bad("refresh_tokens.refresh_token_lifetime", "must not be negative (got %v)", rt.RefreshTokenLifetime)
	} else if rt.RefreshTokenLifetime > 0 && rt.RefreshTokenLifetime <= rt.AccessTokenLifetime {
		bad("refresh_tokens.refresh_token_lifetime", "must be longer than access_token_lifetime (got %v, access tokens live %v)",
			rt.RefreshTokenLifetime, rt.AccessTokenLifetime)
	}
	if d := c.AppServiceQueryTimeout; d <= 0 || d > MaxAppServiceQueryTimeout {
		bad("app_service_query_timeout", "must be greater than 0 and at most %v (got %v)", MaxAppServiceQueryTimeout, d)
	}
	for _, ch := range c.ServerNotices.Localpart {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.ContainsRune("._=-/+", ch)) {
			bad("server_notices.localpart", "may only contain a-z, 0-9 and ._=-/+ (got %q)", c.ServerNotices.Localpart)
			break
		}
	}
	if _, err := c.Support.ParsedContacts(); err != nil {
		bad("support.contacts", "%v", err)
	}
	c.validateEmail(bad)
	return errors.Join(errs...)
}

// checkServerName follows the server name grammar of the Matrix spec
// (appendix "Server Name"): hostname [":" port], where hostname is an IPv4
// address, a bracketed IPv6 address or a DNS name. It is stricter than the
// grammar about empty DNS labels, which no resolver can look up.
func checkServerName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	host, port, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return errors.New("must close the [IPv6] address with ]")
		}
		host = s[1:end]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return errors.New("must contain an IPv6 address between [ and ]")
		}
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return errors.New("must have only :port after the [IPv6] address")
			}
			port, hasPort = rest[1:], true
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if strings.Contains(host, ":") {
			return errors.New("must put an IPv6 address in brackets, e.g. [::1]")
		}
		if err := checkDNSName(host); err != nil {
			return err
		}
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || len(port) > 5 || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return errors.New("must have a port between 1 and 65535")
		}
	}
	return nil
}

func checkDNSName(host string) error {
	if host == "" || len(host) > 255 {
		return errors.New("must be a hostname of 1 to 255 characters")
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("must be a hostname made of letters, digits, '-' and '.' (found %q)", r)
		}
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("must be a hostname whose dot-separated parts are 1 to 63 characters")
		}
	}
	return nil
}

// checkListen requires a numeric port because public_baseurl is derived from
// listen and a service name such as "http" would not survive that.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:8008 or [::]:8008")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return errors.New("must have a numeric port between 0 and 65535")
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	return checkDNSName(host)
}

func checkDatabase(db string) error {
	if db == "" {
		return nil
	}
	scheme, rest, ok := strings.Cut(db, ":")
	if !ok {
		return fmt.Errorf("must be empty, sqlite:PATH or postgres://...; for a SQLite file write sqlite:%s", db)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			return errors.New("sqlite: needs a file path, e.g. sqlite:/var/lib/axon/axon.db")
		}
		return nil
	case "postgres", "postgresql":
		return errors.New("PostgreSQL is not supported yet; leave database empty or use sqlite:PATH")
	}
	// Only the scheme is echoed: the rest of a database URL may hold a password.
	return fmt.Errorf("must be empty, sqlite:PATH or postgres://... (got scheme %q)", scheme)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not contain user info, a query or a fragment")
	}
	return nil
}

func (c *Config) validateEmail(bad func(setting, format string, args ...any)) {
	e := c.Email
	if c.RegistrationRequiresEmail && !e.Enabled() {
		bad("registration_requires_email", "needs email.smtp_host: without email nobody could register")
	}
	if e.SMTPPort < 1 || e.SMTPPort > 65535 {
		bad("email.smtp_port", "must be between 1 and 65535 (got %d)", e.SMTPPort)
	}
	switch e.SMTPTLS {
	case SMTPStartTLS, SMTPTLS, SMTPNoTLS:
	default:
		bad("email.smtp_tls", "must be one of %s, %s, %s (got %q)", SMTPStartTLS, SMTPTLS, SMTPNoTLS, e.SMTPTLS)
	}
	if e.SMTPPassword != "" && e.SMTPPasswordFile != "" {
		bad("email.smtp_password_file", "set either smtp_password or smtp_password_file, not both")
	}
	if (e.SMTPPassword != "" || e.SMTPPasswordFile != "") && e.SMTPUsername == "" {
		bad("email.smtp_username", "must be set when a password is")
	}
	if !e.Enabled() {
		return
	}
	if strings.ContainsAny(e.SMTPHost, " /:") && !strings.HasPrefix(e.SMTPHost, "[") {
		bad("email.smtp_host", "must be a host name or address without port or scheme (got %q)", e.SMTPHost)
	}
	if e.From == "" {
		bad("email.from", "must be set when email.smtp_host is")
	} else if a, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(a.Address, "\r\n") {
		bad("email.from", "must be an email address such as \"Example <noreply@example.org>\" (got %q)", e.From)
	}
}
