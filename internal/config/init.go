package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// setting documents one key of axon.yaml. The table drives both the
// environment overrides and the generated file, so a setting cannot be
// documented in one place and forgotten in the other (a test checks that
// every Config field is listed).
type setting struct {
	key string // dotted YAML key; the env var name is derived from it
	doc string
	// group marks a mapping whose members are listed separately; it has no
	// environment variable of its own.
	group bool
}

var settings = []setting{
	{key: "server_name", doc: "The Matrix server name: the part after the colon in user IDs such as " +
		"@alice:example.com. It is built into every user and room ID, so it cannot be changed once " +
		"the server has users. A hostname, IPv4 address or [IPv6] address, optionally followed by :port."},
	{key: "data_dir", doc: "Directory holding the database, the signing key and this file. " +
		"Created with mode 0700 if missing. A relative path is taken from the directory Axon is started in."},
	{key: "listen", doc: "Address (host:port) the HTTP listener binds to. 127.0.0.1 only accepts " +
		"local connections, which suits running behind a reverse proxy; use 0.0.0.0:8008 or [::]:8008 " +
		"to accept connections from other machines."},
	{key: "database", doc: "Where data is stored. Empty: the SQLite file axon.db inside data_dir. " +
		"sqlite:PATH: a SQLite file at PATH (relative to the start directory). postgres://... is " +
		"reserved for PostgreSQL, which is not supported yet."},
	{key: "database_synchronous", doc: "How SQLite makes commits durable: normal (the default) or full. " +
		"Both survive a crash or kill of the Axon process with every acknowledged write kept. After a power " +
		"loss or operating-system crash, normal can lose the writes of the last moments (commits made since " +
		"the write-ahead log was last synced at a checkpoint) but never corrupts the database; full syncs the " +
		"log at every commit so that nothing acknowledged is lost, at the cost of slower writes. " +
		"Has no effect on PostgreSQL."},
	{key: "public_baseurl", doc: "The URL clients and other servers use to reach this server. " +
		"Empty: http://<listen>/, which only works on this machine; set your https:// address when " +
		"running behind a reverse proxy."},
	{key: "registration", doc: "Who may create accounts: disabled (nobody through the client API), " +
		"token (only with a registration token) or open (anyone; open servers attract spam " +
		"accounts, so keep rate limits on)."},
	{key: "registration_shared_secret", doc: "Secret that lets administration tools register users " +
		"even when registration is disabled. Empty turns shared-secret registration off. If you " +
		"set it, keep this file readable only by Axon."},
	{key: "guest_access", doc: "Let anyone create a guest account (POST /register?kind=guest) " +
		"without registering. Guests may only read and post in rooms that allow guests " +
		"(m.room.guest_access can_join) and preview world-readable rooms, and may later upgrade " +
		"to a full account when registration allows it. Off by default."},
	{key: "rate_limits", doc: "Whether the rate limits below are enforced. Turning them off is " +
		"meant for testing only."},
	{key: "rate_limit", group: true, doc: "Per-client rate limits. per_second is the sustained " +
		"request rate and burst how many requests may arrive at once."},
	{key: "rate_limit.login", doc: "Login attempts; kept low to slow down password guessing."},
	{key: "rate_limit.register", doc: "Account registration; kept low against account spam."},
	{key: "rate_limit.message", doc: "Sending events into rooms."},
	{key: "rate_limit.default", doc: "Every other request."},
	{key: "rate_limit.key_claim", doc: "One-time keys one user may claim from one device of " +
		"another (or their own). Past it they get the device's fallback key instead, so that " +
		"nobody can drain a device's one-time keys."},
	{key: "max_request_bytes", doc: "Largest request body accepted, in bytes."},
	{key: "connections", group: true, doc: "Limits on what clients can hold of the server. A " +
		"connection over a limit is closed as soon as it is accepted."},
	{key: "connections.max_total", doc: "Most connections open at once; 0 means no limit. Each " +
		"costs about 20 kB of memory."},
	{key: "connections.max_per_address", doc: "Most connections open at once from one client " +
		"address (IPv6 addresses count by /64 network); 0 means no limit. Loopback addresses " +
		"are exempt unless limit_loopback is true."},
	{key: "connections.limit_loopback", doc: "Apply max_per_address to loopback addresses too. " +
		"Leave it off behind a reverse proxy on this machine: every client then arrives from " +
		"loopback, and the proxy is the place to limit connections per client."},
	{key: "connections.request_body_timeout", doc: "How long a request body may take to arrive " +
		"before the connection is closed, as a duration, plus one second for every " +
		"request_body_min_rate bytes received (so large uploads get more time as long as they " +
		"keep arriving). Protects against clients that send a body a byte at a time."},
	{key: "connections.request_body_min_rate", doc: "Bytes per second a request body must " +
		"average after request_body_timeout; see above."},
	{key: "signing_key_path", doc: "File holding the ed25519 key that signs this server's events and " +
		"federation requests; created on first start. Empty: signing.key inside data_dir. Back it " +
		"up: other servers remember it, and a lost key cannot be recovered."},
	{key: "log_level", doc: "How much to log: debug, info, warn or error."},
	{key: "well_known_client_base_url", doc: "Homeserver base URL advertised to clients in " +
		"/.well-known/matrix/client. Empty: the same as public_baseurl."},
	{key: "push", group: true, doc: "Delivery of push notifications to the push gateways of users' phones."},
	{key: "push.allow_http", doc: "Accept pushers whose gateway URL is plain http://. The spec " +
		"requires https://; allow http only for testing or a gateway on a trusted network."},
	{key: "push.allow_private_addresses", doc: "Deliver to gateways on loopback, private and " +
		"link-local addresses. Off by default so that users cannot make the server send requests " +
		"into its own network; turn on for a gateway on this machine or in tests."},
	{key: "outbound", group: true, doc: "Requests to addresses that users choose (URL previews, push " +
		"gateways). They may only reach public internet addresses, checked on the address actually connected to " +
		"(after DNS, on every redirect); loopback, private, link-local, carrier-grade NAT, multicast, documentation " +
		"and other special ranges are refused, also when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4, Teredo). " +
		"Application services are not restricted: their URLs come from the operator's registration files."},
	{key: "outbound.allowed_networks", doc: "Networks (CIDR such as 10.20.0.0/16, or single addresses) " +
		"that these requests may reach although they are not public: an intranet to preview, a push gateway " +
		"in your own network. Each is matched against the address connected to."},
	{key: "media", group: true, doc: "The media repository: uploaded files, avatars and their thumbnails."},
	{key: "media.max_upload_bytes", doc: "Largest file a user may upload, in bytes. Uploads are " +
		"streamed to disk, so this does not bound memory use."},
	{key: "media.dir", doc: "Directory holding uploaded files (stored once per distinct content) " +
		"and thumbnails. Empty: media inside data_dir."},
	{key: "media.user_quota_bytes", doc: "Total bytes each user may have uploaded; 0 means no quota."},
	{key: "media.url_previews", doc: "Whether /preview_url fetches web pages for link previews. " +
		"The server then makes requests to addresses chosen by users (public addresses only)."},
	{key: "media.freeze_legacy", doc: "Serve media uploaded from now on only through the " +
		"authenticated endpoints (/_matrix/client/v1/media), as Matrix 1.12 recommends; media " +
		"uploaded before stays available on the old /_matrix/media/v3 paths."},
	{key: "turn", group: true, doc: "TURN servers for voice and video calls, handed to clients by " +
		"/voip/turnServer with short-lived credentials derived from a secret shared with the TURN " +
		"server (coturn: use-auth-secret and static-auth-secret). Leave uris empty to offer no TURN server."},
	{key: "turn.uris", doc: "TURN URIs given to clients, such as turn:turn.example.org:3478?transport=udp " +
		"and turns:turn.example.org:5349?transport=tcp."},
	{key: "turn.shared_secret", doc: "The secret shared with the TURN server (coturn's " +
		"static-auth-secret); required when uris is set. Keep this file readable only by Axon."},
	{key: "turn.ttl", doc: "How long the credentials handed out stay valid, in seconds."},
	{key: "support", group: true, doc: "Who to contact about this server, published at " +
		"/.well-known/matrix/support (which answers 404 while both settings are empty)."},
	{key: "support.page", doc: "URL of a support web page for this server."},
	{key: "support.contacts", doc: "Contacts, each \"ROLE ADDRESS [ADDRESS]\": a role " +
		"(m.role.admin for anything, m.role.security for security reports) and a Matrix user ID " +
		"and/or an email address, e.g. \"m.role.admin @alice:example.org alice@example.org\"."},
	{key: "refresh_tokens", group: true, doc: "Refresh tokens, for clients that ask for one at " +
		"login or registration (refresh_token: true). Their access tokens expire and are renewed " +
		"with the refresh token, so a leaked access token is soon useless. Clients that do not ask " +
		"keep access tokens that never expire."},
	{key: "refresh_tokens.access_token_lifetime", doc: "How long the access token of such a client " +
		"works before it must be refreshed, as a duration (90s, 5m, 1h). 0s turns refresh tokens " +
		"off: clients asking for one get a non-expiring access token instead."},
	{key: "refresh_tokens.refresh_token_lifetime", doc: "How long a refresh token stays usable; each " +
		"refresh issues a new one with a fresh lifetime, so this is the longest a client may stay " +
		"away before it must log in again. 0s: refresh tokens never expire."},
	{key: "app_service_config_files", doc: "Registration files (YAML, as for Synapse) of the " +
		"application services (bridges, bots) this server talks to, read at start. An invalid " +
		"file stops the start with a message naming the file and the field. Each service's url " +
		"is trusted like this file: it may be on this machine or a private network."},
	{key: "app_service_query_timeout", doc: "How long a request that asks an application service " +
		"about an unknown user or alias of its namespace (an invite, a profile lookup, a join by " +
		"alias) waits for its answer, as a duration (at most 1m). A service that does not answer " +
		"in time gives the client 408 M_CONNECTION_TIMEOUT and is not asked again for 30 seconds."},
	{key: "email", group: true, doc: "Email sent by Axon itself through an SMTP server: links that " +
		"confirm an email address when it is added to an account or given at registration, and " +
		"password reset links. Leave smtp_host empty to send no email; clients are then told that " +
		"email addresses cannot be added (see docs/email.md)."},
	{key: "email.smtp_host", doc: "Host name of the SMTP server (your provider's submission server, " +
		"or localhost for a local relay). Empty: no email."},
	{key: "email.smtp_port", doc: "Port of the SMTP server: usually 587 with starttls, 465 with tls, 25 for a local relay."},
	{key: "email.smtp_username", doc: "User name to log in to the SMTP server with; empty: no login."},
	{key: "email.smtp_password", doc: "Password for smtp_username. Prefer smtp_password_file or the " +
		"environment variable over writing it here; it is never logged."},
	{key: "email.smtp_password_file", doc: "File holding the SMTP password (trailing newline ignored), " +
		"e.g. a systemd credential or a Docker secret. Takes the place of smtp_password."},
	{key: "email.smtp_tls", doc: "How the connection is encrypted: starttls (upgrade with STARTTLS, " +
		"refusing a server that does not offer it), tls (TLS from the start, port 465) or none " +
		"(no encryption; only for a relay on this machine, and no password is sent)."},
	{key: "email.from", doc: "Sender of the emails, e.g. \"Example Matrix <noreply@example.org>\"; required with smtp_host."},
	{key: "registration_requires_email", doc: "Registration (open or with a token) needs a validated " +
		"email address; it then becomes the account's address for password resets. Needs email.smtp_host. " +
		"When false and email is configured, giving an address at open registration is optional."},
	{key: "server_notices", group: true, doc: "Server notices: messages a server admin sends to a user " +
		"(POST /_synapse/admin/v1/send_server_notice) into that user's server notices room, from a " +
		"system account that cannot log in. The user is invited, cannot reject the invite (the spec's " +
		"M_CANNOT_LEAVE_SERVER_NOTICE_ROOM), and may leave once joined; the next notice invites them " +
		"back into the same room."},
	{key: "server_notices.enabled", doc: "Whether admins may send server notices. The system account " +
		"is created with the first notice, and registration may not take its localpart while this is on."},
	{key: "server_notices.localpart", doc: "Localpart of the system account notices come from " +
		"(@_server:<server_name> by default). It must not be the localpart of an account that " +
		"logs in: a notices room is readable by its sender."},
	{key: "server_notices.display_name", doc: "Display name of the system account."},
	{key: "server_notices.room_name", doc: "Name given to each user's server notices room."},
	{key: "experimental", group: true, doc: "Unstable features (MSCs) that change what users of " +
		"other clients see, so they are off until you turn them on."},
	{key: "experimental.msc4306_thread_subscriptions", doc: "Thread subscriptions (MSC4306, and " +
		"MSC4308's sliding sync extension), which Element X uses when /versions lists " +
		"org.matrix.msc4306. Messages in threads then notify only users subscribed to the thread " +
		"(or mentioned): users of clients that cannot subscribe, such as Element Web, stop " +
		"hearing of thread replies."},
}

const fileHeader = `# Axon configuration file.
#
# Every setting below is shown with its default value. Each one can also be
# set through the environment variable named in its comment; the environment
# takes precedence over this file. An empty value ("") means the default.
# Relative paths are relative to the directory Axon is started in, not to the
# directory of this file.

`

// DefaultFile renders a commented axon.yaml holding the default value of
// every setting, with data_dir set to dataDir ("" keeps the default).
// Settings that derive from others are written as "" so that they keep
// following their source when it is edited.
func DefaultFile(dataDir string) []byte {
	c := staticDefaults()
	if dataDir != "" {
		c.DataDir = dataDir
	}
	var b bytes.Buffer
	b.WriteString(fileHeader)
	for _, s := range settings {
		depth := strings.Count(s.key, ".")
		indent := strings.Repeat("  ", depth)
		name := s.key[strings.LastIndexByte(s.key, '.')+1:]
		for _, line := range wrap(s.doc, 78-len(indent)-2) {
			b.WriteString(indent + "# " + line + "\n")
		}
		if s.group {
			b.WriteString(indent + name + ":\n")
			continue
		}
		env := EnvName(s.key)
		v, ok := fieldByPath(c, s.key)
		if !ok {
			panic("config: settings table names unknown key " + s.key)
		}
		if v.Type() == reflect.TypeFor[RateLimit]() {
			env += " (as PER_SECOND:BURST, e.g. 0.5:5)"
		}
		if v.Kind() == reflect.Slice {
			env += " (comma-separated)"
		}
		b.WriteString(indent + "# Environment: " + env + "\n")
		if v.Kind() == reflect.Struct {
			b.WriteString(indent + name + ":\n")
			out, err := yaml.Marshal(v.Interface())
			if err != nil {
				panic(err)
			}
			for line := range strings.Lines(string(out)) {
				b.WriteString(indent + "  " + line)
			}
		} else {
			b.WriteString(indent + name + ": " + scalarYAML(v.Interface()) + "\n")
		}
		b.WriteString("\n")
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

// scalarYAML always double-quotes strings: Go's quoting is valid YAML
// double-quoted syntax, and unquoted YAML would misread values such as "no"
// or a path containing ": ".
func scalarYAML(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case time.Duration:
		return strconv.Quote(v.String())
	case []string:
		quoted := make([]string, len(v))
		for i, s := range v {
			quoted[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	panic(fmt.Sprintf("config: cannot render %T", v))
}

func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// Init prepares a configuration for `axon serve` without --config: it
// creates the data directory (AXON_DATA_DIR or DefaultDataDir) with mode
// 0700, writes a commented default axon.yaml into it unless one exists, and
// loads that file with the environment applied. It returns the config and the
// path of the file. getenv may be nil for an empty environment.
func Init(getenv func(string) string) (*Config, string, error) {
	dir := ""
	if getenv != nil {
		dir = getenv(EnvName("data_dir"))
	}
	if dir == "" {
		dir = DefaultDataDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("config: data_dir: %w", err)
	}
	path := filepath.Join(dir, ConfigFileName)
	if err := writeNewFile(path, DefaultFile(dir)); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, path, fmt.Errorf("config: writing default config: %w", err)
	}
	c, err := Load(path, getenv)
	return c, path, err
}

// writeNewFile never replaces an existing file, so a config written by the
// operator (or by a concurrently starting process) always wins. Mode 0600
// because the file may later hold registration_shared_secret.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A truncated file would be loaded on the next start as if it were
		// deliberate, so remove it.
		os.Remove(path)
	}
	return err
}
