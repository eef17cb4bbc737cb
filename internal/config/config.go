// Package config loads Axon's settings from an optional YAML file and from
// AXON_* environment variables.
//
// Precedence, lowest to highest: built-in defaults, the YAML file, the
// environment. An empty value, in the file or in the environment, means "use
// the default"; that lets the generated axon.yaml list every setting without
// pinning values that are derived from others (public_baseurl follows listen,
// signing_key_path follows data_dir, and so on).
//
// Relative paths (data_dir, signing_key_path, database sqlite:PATH) are
// resolved against the working directory of the Axon process, not against the
// directory of the config file. The same value then means the same thing
// whether it comes from the file or from an environment variable, which has no
// directory of its own.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/axon-matrix/axon/internal/netguard"
)

// Defaults for settings that do not derive from other settings.
const (
	DefaultServerName      = "localhost"
	DefaultDataDir         = "./axon-data"
	DefaultListen          = "127.0.0.1:8008"
	DefaultRegistration    = RegistrationDisabled
	DefaultMaxRequestBytes = 1 << 20
	DefaultLogLevel        = "info"
	DefaultMaxUploadBytes  = 50 << 20
	DefaultTURNTTL         = 86400

	// DefaultAccessTokenLifetime is how long the access token of a client
	// that opted into refresh tokens lives (Synapse uses 5 minutes too):
	// short enough that a leaked token is soon useless, long enough that
	// refreshing is rare.
	DefaultAccessTokenLifetime = 5 * time.Minute
	DefaultSMTPPort            = 587

	DefaultDatabaseSynchronous = SynchronousNormal
	// Server notices: the sender's localpart and the names shown.
	DefaultServerNoticesLocalpart = "_server"
	DefaultServerNoticesName      = "Server Notices"
)

// Values of Config.DatabaseSynchronous: SQLite's synchronous setting in WAL
// mode. normal syncs the write-ahead log only at checkpoints, full at every
// commit.
const (
	SynchronousNormal = "normal"
	SynchronousFull   = "full"
)

// Defaults of the connection limits (see ConnectionSettings).
const (
	// DefaultMaxConnections: an open connection costs about 20 kB (two
	// buffers and a goroutine), so 10,000 bound that at some 200 MB.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerAddress leaves room for a household or an
	// office behind one NAT address (browsers open up to six connections
	// each) while one client cannot take more than a small share.
	DefaultMaxConnectionsPerAddress = 256
	// DefaultRequestBodyTimeout and DefaultRequestBodyMinRate: a body
	// must arrive within 10 s plus one second per 8 KiB received, i.e. at
	// an average of at least 64 kbit/s after the first 10 s.
	DefaultRequestBodyTimeout = 10 * time.Second
	DefaultRequestBodyMinRate = 8 << 10
)

const (
	// DefaultAppServiceQueryTimeout bounds how long a client waits for an
	// application service asked about an unknown user or alias.
	DefaultAppServiceQueryTimeout = 10 * time.Second
	// MaxAppServiceQueryTimeout: a longer wait holds client requests
	// (and proxies' patience) for too long.
	MaxAppServiceQueryTimeout = time.Minute
)

// File names inside the data directory.
const (
	ConfigFileName     = "axon.yaml"
	DatabaseFileName   = "axon.db"
	SigningKeyFileName = "signing.key"
	MediaDirName       = "media"
)

// Values of Config.Registration.
const (
	RegistrationDisabled = "disabled"
	RegistrationToken    = "token"
	RegistrationOpen     = "open"
)

// EnvPrefix starts every environment variable the package reads. The rest of
// the name is the setting's YAML key in upper case with "." replaced by "_".
const EnvPrefix = "AXON_"

// RateLimit is a token bucket: PerSecond is the sustained rate and Burst the
// number of requests that may arrive at once.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// RateLimitSettings groups the rate limits for each class of request.
type RateLimitSettings struct {
	Login    RateLimit `yaml:"login"`
	Register RateLimit `yaml:"register"`
	Message  RateLimit `yaml:"message"`
	Default  RateLimit `yaml:"default"`
	KeyClaim RateLimit `yaml:"key_claim"`
}

// ConnectionSettings bounds what clients can hold of the server:
// connections, and the time a request body may take to arrive.
type ConnectionSettings struct {
	MaxTotal      int64 `yaml:"max_total"`
	MaxPerAddress int64 `yaml:"max_per_address"`
	// LimitLoopback applies MaxPerAddress to loopback addresses too. Off
	// by default: behind a reverse proxy on the same machine every client
	// arrives from loopback, and the proxy is where to limit each client.
	LimitLoopback      bool          `yaml:"limit_loopback"`
	RequestBodyTimeout time.Duration `yaml:"request_body_timeout"`
	RequestBodyMinRate int64         `yaml:"request_body_min_rate"`
}

// MediaSettings configures the media repository.
type MediaSettings struct {
	MaxUploadBytes int64  `yaml:"max_upload_bytes"`
	Dir            string `yaml:"dir"`
	UserQuotaBytes int64  `yaml:"user_quota_bytes"`
	URLPreviews    bool   `yaml:"url_previews"`
	FreezeLegacy   bool   `yaml:"freeze_legacy"`
}

// PushSettings configures delivery to push gateways.
type PushSettings struct {
	AllowHTTP             bool `yaml:"allow_http"`
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
}

// OutboundSettings configures the requests the server makes to addresses
// that users choose (URL previews, push gateways) and, later, that other
// servers choose (federation): by default only public addresses are
// reached, so that nobody can make the server send requests into its own
// network.
type OutboundSettings struct {
	// AllowedNetworks are networks (CIDR, or single addresses) that those
	// requests may reach although they are not public.
	AllowedNetworks []string `yaml:"allowed_networks"`
}

// Networks parses AllowedNetworks (Validate has checked them).
func (o OutboundSettings) Networks() ([]netip.Prefix, error) {
	return netguard.ParsePrefixes(o.AllowedNetworks)
}

// TURNSettings configures the TURN servers handed to clients for VoIP
// calls, with coturn's shared-secret ("REST API") credentials.
type TURNSettings struct {
	URIs         []string `yaml:"uris"`
	SharedSecret string   `yaml:"shared_secret"`
	TTL          int64    `yaml:"ttl"`
}

// RefreshTokenSettings configures refresh tokens (clients opt in with
// refresh_token: true on /login and /register).
type RefreshTokenSettings struct {
	AccessTokenLifetime  time.Duration `yaml:"access_token_lifetime"`
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
}

// ServerNoticesSettings configures server notices: messages an admin
// sends to a user (POST /_synapse/admin/v1/send_server_notice) into the
// user's one server notices room, from a system account of this server.
type ServerNoticesSettings struct {
	Enabled     bool   `yaml:"enabled"`
	Localpart   string `yaml:"localpart"`
	DisplayName string `yaml:"display_name"`
	RoomName    string `yaml:"room_name"`
}

// SupportSettings is what /.well-known/matrix/support publishes.
type SupportSettings struct {
	Page     string   `yaml:"page"`
	Contacts []string `yaml:"contacts"`
}

// EmailSettings configures the SMTP server Axon sends its own email
// through: validation links for email addresses (registration, adding an
// address, password reset). An empty smtp_host turns email off.
type EmailSettings struct {
	SMTPHost         string `yaml:"smtp_host"`
	SMTPPort         int64  `yaml:"smtp_port"`
	SMTPUsername     string `yaml:"smtp_username"`
	SMTPPassword     string `yaml:"smtp_password"`
	SMTPPasswordFile string `yaml:"smtp_password_file"`
	SMTPTLS          string `yaml:"smtp_tls"`
	From             string `yaml:"from"`
}

// Values of EmailSettings.SMTPTLS.
const (
	SMTPStartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587); required
	SMTPTLS      = "tls"      // TLS from the first byte (port 465)
	SMTPNoTLS    = "none"     // no encryption: only for a relay on this machine
)

// Enabled reports whether the server can send email.
func (e EmailSettings) Enabled() bool { return e.SMTPHost != "" }

// Password returns the SMTP password, read from smtp_password_file when
// that is set (trailing newlines removed), so that it need not be in the
// config file or the environment.
func (e EmailSettings) Password() (string, error) {
	if e.SMTPPasswordFile == "" {
		return e.SMTPPassword, nil
	}
	b, err := os.ReadFile(e.SMTPPasswordFile)
	if err != nil {
		return "", fmt.Errorf("config: email.smtp_password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// SupportContact is one contact of /.well-known/matrix/support.
type SupportContact struct {
	Role         string `json:"role"`
	MatrixID     string `json:"matrix_id,omitempty"`
	EmailAddress string `json:"email_address,omitempty"`
}

// ParsedContacts reads the contacts, each written as
// "ROLE ADDRESS [ADDRESS]" with a Matrix user ID (@...) and/or an email
// address, e.g. "m.role.admin @alice:example.org alice@example.org".
func (s SupportSettings) ParsedContacts() ([]SupportContact, error) {
	out := make([]SupportContact, 0, len(s.Contacts))
	for _, c := range s.Contacts {
		f := strings.Fields(c)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("contact %q: expected ROLE ADDRESS [ADDRESS]", c)
		}
		sc := SupportContact{Role: f[0]}
		if strings.HasPrefix(sc.Role, "@") || strings.Contains(sc.Role, "@") {
			return nil, fmt.Errorf("contact %q: must start with a role such as m.role.admin", c)
		}
		for _, addr := range f[1:] {
			switch {
			case strings.HasPrefix(addr, "@") && strings.Contains(addr, ":") && sc.MatrixID == "":
				sc.MatrixID = addr
			case !strings.HasPrefix(addr, "@") && strings.Contains(addr, "@") && sc.EmailAddress == "":
				sc.EmailAddress = addr
			default:
				return nil, fmt.Errorf("contact %q: %q is not a Matrix user ID or email address (or is given twice)", c, addr)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// Config is the complete server configuration. See the generated axon.yaml
// (DefaultFile) for what each setting does.
type Config struct {
	ServerName                string                `yaml:"server_name"`
	DataDir                   string                `yaml:"data_dir"`
	Listen                    string                `yaml:"listen"`
	Database                  string                `yaml:"database"`
	DatabaseSynchronous       string                `yaml:"database_synchronous"`
	PublicBaseURL             string                `yaml:"public_baseurl"`
	Registration              string                `yaml:"registration"`
	RegistrationSharedSecret  string                `yaml:"registration_shared_secret"`
	GuestAccess               bool                  `yaml:"guest_access"`
	RateLimits                bool                  `yaml:"rate_limits"`
	RateLimit                 RateLimitSettings     `yaml:"rate_limit"`
	MaxRequestBytes           int64                 `yaml:"max_request_bytes"`
	Connections               ConnectionSettings    `yaml:"connections"`
	SigningKeyPath            string                `yaml:"signing_key_path"`
	LogLevel                  string                `yaml:"log_level"`
	WellKnownClient           string                `yaml:"well_known_client_base_url"`
	Push                      PushSettings          `yaml:"push"`
	Outbound                  OutboundSettings      `yaml:"outbound"`
	Media                     MediaSettings         `yaml:"media"`
	TURN                      TURNSettings          `yaml:"turn"`
	Support                   SupportSettings       `yaml:"support"`
	RefreshTokens             RefreshTokenSettings  `yaml:"refresh_tokens"`
	AppServiceConfigFiles     []string              `yaml:"app_service_config_files"`
	AppServiceQueryTimeout    time.Duration         `yaml:"app_service_query_timeout"`
	Email                     EmailSettings         `yaml:"email"`
	RegistrationRequiresEmail bool                  `yaml:"registration_requires_email"`
	ServerNotices             ServerNoticesSettings `yaml:"server_notices"`
	Experimental              ExperimentalSettings  `yaml:"experimental"`
}

// ExperimentalSettings turns on MSCs whose behaviour would surprise the
// clients that do not implement them.
type ExperimentalSettings struct {
	// ThreadSubscriptions is MSC4306 (with MSC4308's sliding sync
	// extension): its default push rules silence threads the user has not
	// subscribed to, which clients without the MSC never do.
	ThreadSubscriptions bool `yaml:"msc4306_thread_subscriptions"`
}

// DefaultRateLimits returns the rate limits used when the configuration does
// not set them. Login and registration are slow on purpose: they are the
// targets of password guessing and account spam.
func DefaultRateLimits() RateLimitSettings {
	return RateLimitSettings{
		Login:    RateLimit{PerSecond: 0.2, Burst: 5},
		Register: RateLimit{PerSecond: 0.1, Burst: 3},
		Message:  RateLimit{PerSecond: 10, Burst: 50},
		Default:  RateLimit{PerSecond: 20, Burst: 100},
		// One-time keys one user may claim from one device: enough for
		// new sessions and retries, too few to drain the device's keys.
		KeyClaim: RateLimit{PerSecond: 0.1, Burst: 5},
	}
}

// Default returns the configuration Load produces with no file and an empty
// environment.
func Default() *Config {
	c := staticDefaults()
	c.fillDefaults()
	return c
}

// staticDefaults leaves derived settings empty, so that they can follow the
// settings they derive from once the file and environment have been applied.
func staticDefaults() *Config {
	return &Config{
		ServerName:          DefaultServerName,
		DataDir:             DefaultDataDir,
		Listen:              DefaultListen,
		Registration:        DefaultRegistration,
		DatabaseSynchronous: DefaultDatabaseSynchronous,
		RateLimits:          true,
		RateLimit:           DefaultRateLimits(),
		MaxRequestBytes:     DefaultMaxRequestBytes,
		LogLevel:            DefaultLogLevel,
		Media:               MediaSettings{MaxUploadBytes: DefaultMaxUploadBytes},
		TURN:                TURNSettings{TTL: DefaultTURNTTL},
		RefreshTokens:       RefreshTokenSettings{AccessTokenLifetime: DefaultAccessTokenLifetime},
		Email:               EmailSettings{SMTPPort: DefaultSMTPPort, SMTPTLS: SMTPStartTLS},
		Connections: ConnectionSettings{MaxTotal: DefaultMaxConnections, MaxPerAddress: DefaultMaxConnectionsPerAddress,
			RequestBodyTimeout: DefaultRequestBodyTimeout, RequestBodyMinRate: DefaultRequestBodyMinRate},
		ServerNotices: ServerNoticesSettings{Enabled: true},

		AppServiceQueryTimeout: DefaultAppServiceQueryTimeout,
	}
}

// fillDefaults replaces empty strings by their defaults. An explicitly empty
// value in the file (server_name: "") therefore behaves like an absent one.
func (c *Config) fillDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ServerName, DefaultServerName)
	def(&c.DataDir, DefaultDataDir)
	def(&c.Listen, DefaultListen)
	def(&c.Registration, DefaultRegistration)
	def(&c.DatabaseSynchronous, DefaultDatabaseSynchronous)
	def(&c.LogLevel, DefaultLogLevel)
	def(&c.SigningKeyPath, filepath.Join(c.DataDir, SigningKeyFileName))
	def(&c.Media.Dir, filepath.Join(c.DataDir, MediaDirName))
	def(&c.PublicBaseURL, baseURLFromListen(c.Listen))
	// Matrix clients append API paths to the base URL; a missing slash would
	// glue the last path segment of the base to "_matrix".
	if !strings.HasSuffix(c.PublicBaseURL, "/") {
		c.PublicBaseURL += "/"
	}
	def(&c.WellKnownClient, c.PublicBaseURL)
	def(&c.ServerNotices.Localpart, DefaultServerNoticesLocalpart)
	def(&c.ServerNotices.DisplayName, DefaultServerNoticesName)
	def(&c.ServerNotices.RoomName, DefaultServerNoticesName)
}

// baseURLFromListen guesses a URL for reaching the listener. A wildcard bind
// address cannot be connected to, so it is replaced by localhost; anyone
// serving other machines is expected to set public_baseurl.
func baseURLFromListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/"
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// DatabasePath returns the SQLite file to open, or "" when the database is
// not SQLite.
func (c *Config) DatabasePath() string {
	if c.Database == "" {
		return filepath.Join(c.DataDir, DatabaseFileName)
	}
	if scheme, rest, ok := strings.Cut(c.Database, ":"); ok && strings.EqualFold(scheme, "sqlite") {
		return rest
	}
	return ""
}

// Load reads the YAML file at path (skipped when path is ""), applies AXON_*
// overrides obtained from getenv (nil means no overrides), fills in defaults
// and validates the result.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := staticDefaults()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(data, path, c); err != nil {
			return nil, err
		}
	}
	if getenv != nil {
		if err := c.applyEnv(getenv); err != nil {
			return nil, err
		}
	}
	c.fillDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeYAML walks the document itself rather than relying on the decoder's
// KnownFields, so that every error can name the setting by its full key
// (rate_limit.login.burst) instead of a Go type.
func decodeYAML(data []byte, file string, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("config: %s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: only one YAML document is allowed", file)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil
	}
	return decodeStruct(root, reflect.ValueOf(c).Elem(), "", file)
}

func decodeStruct(n *yaml.Node, v reflect.Value, prefix, file string) error {
	n = unalias(n)
	if n.Kind != yaml.MappingNode {
		name := prefix
		if name == "" {
			name = "top level"
		}
		return fmt.Errorf("config: %s: expected a mapping of settings, got %s (%s)", name, describeNode(n), where(file, n))
	}
	// Decoding into a yaml.Node does not catch repeated keys, and silently
	// taking the last one would hide which value is in effect.
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], unalias(n.Content[i+1])
		name := key.Value
		if prefix != "" {
			name = prefix + "." + key.Value
		}
		f, ok := fieldByKey(v, key.Value)
		if !ok {
			return fmt.Errorf("config: %s: unknown setting (%s)", name, where(file, key))
		}
		if line, dup := seen[key.Value]; dup {
			return fmt.Errorf("config: %s: set twice, on line %d and %s", name, line, where(file, key))
		}
		seen[key.Value] = key.Line
		if isNull(val) {
			continue
		}
		if f.Kind() == reflect.Struct {
			if err := decodeStruct(val, f, name, file); err != nil {
				return err
			}
			continue
		}
		if f.Kind() == reflect.Slice {
			if err := decodeStrings(val, f, name, file); err != nil {
				return err
			}
			continue
		}
		if val.Kind != yaml.ScalarNode {
			return fmt.Errorf("config: %s: expected %s, got %s (%s)", name, describeType(f), describeNode(val), where(file, val))
		}
		if err := val.Decode(f.Addr().Interface()); err != nil {
			return fmt.Errorf("config: %s: expected %s, got %q (%s)", name, describeType(f), val.Value, where(file, val))
		}
	}
	return nil
}

// decodeStrings decodes a list of strings. An empty list leaves the field
// nil, as an absent one does.
func decodeStrings(n *yaml.Node, f reflect.Value, name, file string) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("config: %s: expected a list of strings, got %s (%s)", name, describeNode(n), where(file, n))
	}
	var out []string
	for _, item := range n.Content {
		item = unalias(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			return fmt.Errorf("config: %s: expected a list of strings, got %s in it (%s)", name, describeNode(item), where(file, item))
		}
		out = append(out, item.Value)
	}
	f.Set(reflect.ValueOf(out))
	return nil
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func where(file string, n *yaml.Node) string {
	if file == "" {
		return fmt.Sprintf("line %d", n.Line)
	}
	return fmt.Sprintf("%s line %d", file, n.Line)
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func describeType(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			return "a duration such as 90s, 5m or 12h"
		}
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of strings"
	default:
		return v.Type().String()
	}
}

// fieldByKey finds the struct field whose yaml tag is key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// fieldByPath resolves a dotted key such as "rate_limit.login".
func fieldByPath(c *Config, path string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for part := range strings.SplitSeq(path, ".") {
		var ok bool
		if v, ok = fieldByKey(v, part); !ok {
			return reflect.Value{}, false
		}
	}
	return v, true
}

// EnvName returns the environment variable that overrides the setting with
// the given dotted YAML key, e.g. "rate_limit.login" -> AXON_RATE_LIMIT_LOGIN.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func (c *Config) applyEnv(getenv func(string) string) error {
	for _, s := range settings {
		if s.group {
			continue
		}
		raw := getenv(EnvName(s.key))
		if raw == "" {
			continue
		}
		f, ok := fieldByPath(c, s.key)
		if !ok {
			panic("config: settings table names unknown key " + s.key)
		}
		if err := setFromEnv(f, raw); err != nil {
			return fmt.Errorf("config: %s: %s: %w", s.key, EnvName(s.key), err)
		}
	}
	return nil
}

func setFromEnv(f reflect.Value, raw string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = raw
	case *bool:
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("expected a duration such as 90s, 5m or 12h, got %q", raw)
		}
		*p = d
	case *int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("expected a whole number, got %q", raw)
		}
		*p = n
	case *[]string:
		*p = splitList(raw)
	case *RateLimit:
		rl, err := parseRateLimit(raw)
		if err != nil {
			return err
		}
		*p = rl
	default:
		panic(fmt.Sprintf("config: no environment parser for %s", f.Type()))
	}
	return nil
}

// splitList reads a list from one environment variable: comma-separated,
// surrounding spaces and empty items dropped.
func splitList(raw string) []string {
	var out []string
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseBool accepts the spellings people commonly use in shell environments,
// which strconv.ParseBool does not all cover.
func parseBool(raw string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("expected true or false, got %q", raw)
}

// parseRateLimit reads the compact "PER_SECOND:BURST" form, since one
// environment variable cannot hold a YAML mapping.
func parseRateLimit(raw string) (RateLimit, error) {
	rate, burst, ok := strings.Cut(strings.TrimSpace(raw), ":")
	if !ok {
		return RateLimit{}, fmt.Errorf("expected PER_SECOND:BURST such as 0.5:5, got %q", raw)
	}
	ps, err := strconv.ParseFloat(rate, 64)
	if err != nil {
		return RateLimit{}, fmt.Errorf("per second rate: expected a number, got %q", rate)
	}
	b, err := strconv.Atoi(burst)
	if err != nil {
		return RateLimit{}, fmt.Errorf("burst: expected a whole number, got %q", burst)
	}
	return RateLimit{PerSecond: ps, Burst: b}, nil
}
