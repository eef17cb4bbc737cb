// Package httpapi is the HTTP edge: it turns route tables into a mux with
// the middleware every Matrix endpoint shares (CORS, body limits, auth,
// rate limits, JSON errors) and maps service errors to Matrix errors.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/mxid"
	"github.com/axon-matrix/axon/internal/ratelimit"
)

// AuthMode says whether a route needs an access token.
type AuthMode int

const (
	// NoAuth routes ignore access tokens.
	NoAuth AuthMode = iota
	// RequireAuth routes need a valid access token.
	RequireAuth
	// OptionalAuth routes use a token when one is given.
	OptionalAuth
)

// Route is one row of a route table.
type Route struct {
	Method  string
	Path    string // Go mux pattern without method, e.g. /rooms/{roomId}/join
	Auth    AuthMode
	Limit   string // rate limit class ("" for default)
	Handler http.HandlerFunc
	// MaxBodyBytes overrides Options.MaxRequestBytes for this route: 0 keeps
	// the mux's limit, a positive value replaces it, and NoBodyLimit leaves
	// the body unlimited for handlers that stream it and enforce their own
	// limit (media uploads).
	MaxBodyBytes int64
	// AllowLocked lets locked accounts through; the spec allows them only
	// to log out.
	AllowLocked bool
	// Guest lets guest accounts call the route. The spec lists the few
	// endpoints guests may use; every other route answers them
	// M_GUEST_ACCESS_FORBIDDEN.
	Guest bool
}

// NoBodyLimit is the Route.MaxBodyBytes of routes that limit bodies themselves.
const NoBodyLimit = -1

// Caller is the authenticated user of a request.
type Caller struct {
	UserID   string
	DeviceID string
	IsAdmin  bool
	IsGuest  bool
	Token    string
	// Locked accounts get M_USER_LOCKED on every route without
	// AllowLocked. Suspended accounts are refused actions by the services.
	Locked    bool
	Suspended bool
	// AppService is the registration ID when the request was made with an
	// application service's as_token (as its sender or a user it asserts).
	AppService string
	// NoRateLimit exempts the request from rate limits (an application
	// service's sender, or its users when it registered rate_limited: false).
	NoRateLimit bool
}

type callerKey struct{}

// CallerOf returns the authenticated caller (zero if none).
func CallerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

// AuthRequest is what an Authenticator gets to resolve a request's caller.
type AuthRequest struct {
	Token string
	// IP is the client's address, for the device's last-seen record.
	IP string
	// AssertUser and AssertDevice are the user_id and device_id query
	// parameters with which an application service names the user (and
	// device) it acts as; ignored for other tokens.
	AssertUser, AssertDevice string
}

// Authenticator resolves access tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, req AuthRequest) (Caller, error)
}

// Options configures the edge.
type Options struct {
	Auth            Authenticator
	Limiters        map[string]*ratelimit.Limiter // by class; "default" for unnamed
	MaxRequestBytes int64
	Log             *slog.Logger
	// ExemptToken, if set, reports whether a token given to a route that
	// does not authenticate (POST /register, /login) exempts the request
	// from rate limits: an application service registering its users.
	ExemptToken func(token string) bool
	// BodyTimeout and BodyMinRate bound the time a request body may take
	// to arrive: BodyTimeout plus one second per BodyMinRate bytes
	// received. Zero BodyTimeout leaves bodies unbounded in time.
	BodyTimeout time.Duration
	BodyMinRate int64
}

// Mux builds the handler for groups of routes mounted under prefixes.
type Mux struct {
	opts     Options
	mux      *http.ServeMux
	patterns map[string]map[string]Route
	order    []string
}

// NewMux creates an empty mux.
func NewMux(opts Options) *Mux {
	return &Mux{opts: opts, mux: http.NewServeMux(), patterns: map[string]map[string]Route{}}
}

// Mount adds routes under each prefix.
func (m *Mux) Mount(prefixes []string, routes []Route) {
	for _, p := range prefixes {
		for _, rt := range routes {
			pattern := p + rt.Path
			if m.patterns[pattern] == nil {
				m.patterns[pattern] = map[string]Route{}
				m.order = append(m.order, pattern)
			}
			m.patterns[pattern][rt.Method] = rt
		}
	}
}

// Handler returns the finished handler.
func (m *Mux) Handler() http.Handler {
	for _, pattern := range m.order {
		methods := m.patterns[pattern]
		m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			noteRoute(r, pattern)
			rt, ok := methods[r.Method]
			if !ok {
				WriteError(w, r, mxerr.New("M_UNRECOGNIZED", "Method not allowed").WithStatus(http.StatusMethodNotAllowed))
				return
			}
			m.serveRoute(w, r, rt)
		}))
	}
	m.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, mxerr.New("M_UNRECOGNIZED", "Unrecognized request"))
	})
	return m.requestLog(m.cors(m.recoverer(m.bodyDeadline(m.mux))))
}

func (m *Mux) serveRoute(w http.ResponseWriter, r *http.Request, rt Route) {
	limit := m.opts.MaxRequestBytes
	if rt.MaxBodyBytes != 0 {
		limit = rt.MaxBodyBytes
	}
	if r.Body != nil && limit > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if rt.Auth != NoAuth {
		token := accessToken(r)
		if token == "" && rt.Auth == RequireAuth {
			WriteError(w, r, mxerr.New("M_MISSING_TOKEN", "Missing access token"))
			return
		}
		if token != "" {
			q := r.URL.Query()
			device := q.Get("device_id")
			if device == "" {
				device = q.Get("org.matrix.msc3202.device_id") // MSC3202's unstable name, still sent by bridges
			}
			c, err := m.opts.Auth.Authenticate(r.Context(), AuthRequest{Token: token, IP: clientIP(r), AssertUser: q.Get("user_id"), AssertDevice: device})
			if err != nil {
				WriteError(w, r, err)
				return
			}
			if c.Locked && !rt.AllowLocked {
				WriteError(w, r, mxerr.UserLocked())
				return
			}
			if c.IsGuest && !rt.Guest {
				WriteError(w, r, mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guest accounts may not use this endpoint"))
				return
			}
			c.Token = token
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
		}
	}
	if err := checkPathIDs(r, rt.Path); err != nil {
		WriteError(w, r, err)
		return
	}
	if lim := m.limiter(rt.Limit); lim != nil && !m.exempt(r, rt) {
		key := CallerOf(r).UserID
		if key == "" {
			key = clientIP(r)
		}
		if ok, retry := lim.Allow(rt.Limit + "\x00" + key); !ok {
			e := mxerr.New("M_LIMIT_EXCEEDED", "Too many requests")
			e.Extra = map[string]any{"retry_after_ms": retry.Milliseconds() + 1}
			w.Header().Set("Retry-After", strconv.FormatInt(int64(retry.Seconds())+1, 10))
			WriteError(w, r, e)
			return
		}
	}
	rt.Handler(w, r)
}

func (m *Mux) exempt(r *http.Request, rt Route) bool {
	if c := CallerOf(r); c.UserID != "" {
		return c.NoRateLimit
	}
	if rt.Auth != NoAuth || m.opts.ExemptToken == nil {
		return false
	}
	token := accessToken(r)
	return token != "" && m.opts.ExemptToken(token)
}

func (m *Mux) limiter(class string) *ratelimit.Limiter {
	if class == "" {
		class = "default"
	}
	return m.opts.Limiters[class]
}

func accessToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):])
	}
	return r.URL.Query().Get("access_token")
}

// AccessToken is the request's access token (Authorization header or
// access_token parameter), for routes that look at a token without
// requiring one (application-service registration and login).
func AccessToken(r *http.Request) string { return accessToken(r) }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientIP is the remote address of a request (no proxy headers trusted).
func ClientIP(r *http.Request) string { return clientIP(r) }

func (m *Mux) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (m *Mux) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				m.opts.Log.Error("panic in handler", "path", r.URL.Path, "panic", v)
				WriteError(w, r, mxerr.Unknown("Internal server error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// logger is used by WriteError for unexpected errors; set by the server.
var errLog = slog.Default()

// SetErrorLogger sets where unexpected handler errors are logged.
func SetErrorLogger(l *slog.Logger) { errLog = l }

// WriteError writes err as a Matrix error; errors that are not Matrix
// errors are internal failures, logged and answered with M_UNKNOWN.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := mxerr.As(err)
	if !ok {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = mxerr.New("M_TOO_LARGE", "Request body too large")
		} else if errors.Is(err, context.Canceled) {
			e = mxerr.Unknown("Request cancelled")
		} else {
			errLog.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			e = mxerr.Unknown("Internal server error")
		}
	}
	if mxerr.StatusOf(e) == http.StatusTooManyRequests {
		// A client refused for its rate must come back on a new
		// connection: one kept alive for it would let a flood of refused
		// requests hold as many connections (and their memory) as it likes.
		w.Header().Set("Connection", "close")
	}
	body := map[string]any{"errcode": e.Code, "error": e.Msg}
	for k, v := range e.Extra {
		body[k] = v
	}
	WriteJSON(w, mxerr.StatusOf(e), body)
}

// DecodeJSON reads a JSON object body into v. An empty body decodes as {}.
func DecodeJSON(r *http.Request, v any) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	return DecodeBytes(body, v)
}

// DecodeBytes decodes a JSON object, distinguishing syntax (M_NOT_JSON)
// from shape (M_BAD_JSON) errors.
func DecodeBytes(body []byte, v any) error {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		trimmed = "{}"
	}
	if err := checkJSON([]byte(trimmed)); err != nil {
		return err
	}
	if trimmed[0] != '{' {
		return mxerr.BadJSON("Request body must be a JSON object")
	}
	if err := json.Unmarshal([]byte(trimmed), v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return mxerr.BadJSON("Field %q has the wrong type", te.Field)
		}
		return mxerr.BadJSON("Malformed JSON: %v", err)
	}
	return nil
}

// QueryBool reads a boolean query parameter: absent is false, and anything
// but true or false is M_INVALID_PARAM rather than silently false.
func QueryBool(q url.Values, name string) (bool, error) {
	switch q.Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, mxerr.InvalidParam("%s must be true or false", name)
}

// ReadBody reads the raw body, mapping limit overruns to M_TOO_LARGE.
func ReadBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, mxerr.New("M_TOO_LARGE", "Request body too large")
		}
		return nil, mxerr.New("M_NOT_JSON", "Could not read request body")
	}
	return body, nil
}

// ReadJSON reads a JSON body raw, for handlers that pass it on whole (event
// content, account data) or decode it more than once: a body that is not
// JSON is M_NOT_JSON here, as in DecodeBytes. An empty body is returned
// empty, for the service to default.
func ReadJSON(r *http.Request) ([]byte, error) {
	body, err := ReadBody(r)
	if err != nil {
		return nil, err
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 {
		if err := checkJSON(trimmed); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// checkJSON is the one syntax check of every JSON request body. JSON text
// must be UTF-8 (RFC 8259 section 8.1), and encoding/json would otherwise
// accept invalid bytes in strings and turn them into U+FFFD, storing
// something other than what the client sent.
func checkJSON(b []byte) error {
	if !utf8.Valid(b) {
		return mxerr.New("M_NOT_JSON", "Content is not valid UTF-8")
	}
	if !json.Valid(b) {
		return mxerr.New("M_NOT_JSON", "Content not JSON")
	}
	return nil
}

// pathIDs are the path parameters that name a Matrix ID, keyed by the name
// the route table gives them, with the check of the ID's syntax. Checking
// them here, once for every route, answers a value that cannot be an ID
// with the spec's 400 M_INVALID_PARAM before any handler looks it up (and
// would report it missing); well-formed unknown IDs go on to the handler.
var pathIDs = map[string]struct {
	valid func(string) bool
	what  string
}{
	"roomId":  {mxid.RoomID, "room ID"},
	"eventId": {mxid.EventID, "event ID"},
	"userId":  {mxid.UserID, "user ID"},
	// join, knock and the room summary take an alias as well.
	"roomIdOrAlias": {func(s string) bool { return mxid.RoomID(s) || mxid.RoomAlias(s) }, "room ID or alias"},
}

// checkPathIDs refuses a request whose path parameters named in pathIDs are
// not IDs of their kind.
func checkPathIDs(r *http.Request, pattern string) error {
	for rest := pattern; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil
		}
		name := strings.TrimSuffix(rest[i+1:i+j], "...")
		rest = rest[i+j+1:]
		if c, ok := pathIDs[name]; ok && !c.valid(r.PathValue(name)) {
			return mxerr.InvalidParam("%s is not a valid %s", name, c.what)
		}
	}
}
