package appservice

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/netguard"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service holds the registered application services and talks to them.
type Service struct {
	regs       []*Registration
	db         *storage.DB
	rooms      *rooms.Service
	accounts   *account.Service
	serverName string
	log        *slog.Logger
	now        func() time.Time

	// client carries transactions; queryClient pings and lookups, which a
	// client is waiting on and so get a shorter timeout. Neither has the
	// private-address guard of push delivery: the URLs come from the
	// operator's registration files, not from users, and bridges usually
	// listen on this machine or a private network.
	client      *http.Client
	queryClient *http.Client

	// KeyCounts returns a device's one-time key counts and unused
	// fallback key types (keys.Service.Counts), for MSC3202.
	KeyCounts func(ctx context.Context, user, device string) (map[string]int, []string)

	// qmu guards the existence queries in flight and the services in
	// query cooldown (calls.go).
	qmu       sync.Mutex
	flights   map[string]*queryFlight
	cooling   map[string]error
	coolUntil map[string]time.Time
	// answeredAt is when each service last answered a request.
	answeredAt map[string]time.Time
	// qslots bounds each service's queries in flight.
	qslots map[string]chan struct{}

	mu                      sync.Mutex
	baseBackoff, maxBackoff time.Duration
	workers                 []*worker
	wg                      sync.WaitGroup
}

// New creates the service for the given registrations (possibly none).
func New(regs []*Registration, db *storage.DB, rs *rooms.Service, accounts *account.Service, serverName string, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		regs: regs, db: db, rooms: rs, accounts: accounts, serverName: serverName, log: log, now: time.Now,
		client: newClient(30 * time.Second), queryClient: newClient(10 * time.Second),
		baseBackoff: time.Second, maxBackoff: 5 * time.Minute,
	}
	for _, r := range regs {
		if r.URL != "" {
			s.workers = append(s.workers, &worker{s: s, reg: r, wake: make(chan struct{}, 1)})
		}
	}
	return s
}

// newClient builds the client services are called with. Their addresses
// are not restricted like those of URL previews and push gateways: each URL
// comes from a registration file only the operator can write, and bridges
// usually listen on loopback or the local network.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         netguard.Unrestricted().Dialer(5 * time.Second).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetBackoff changes the transaction retry delays (tests use short ones).
func (s *Service) SetBackoff(base, maxDelay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseBackoff, s.maxBackoff = base, maxDelay
}

// SetQueryTimeout changes how long pings and lookups wait for a service
// (tests use a short one).
func (s *Service) SetQueryTimeout(d time.Duration) { s.queryClient.Timeout = d }

// Registrations are the loaded registrations.
func (s *Service) Registrations() []*Registration { return s.regs }

// ByID returns the registration with an id, or nil.
func (s *Service) ByID(id string) *Registration {
	for _, r := range s.regs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ByToken returns the registration whose as_token is token, or nil. Every
// registration is compared, in constant time, whatever matches.
func (s *Service) ByToken(token string) *Registration {
	if len(s.regs) == 0 || token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	var found *Registration
	for _, r := range s.regs {
		if subtle.ConstantTimeCompare(h[:], r.tokenHash[:]) == 1 {
			found = r
		}
	}
	return found
}

// IsAppServiceToken reports whether token is some service's as_token.
func (s *Service) IsAppServiceToken(token string) bool { return s.ByToken(token) != nil }

// Identity is who a request made with an as_token acts as.
type Identity struct {
	UserID      string
	DeviceID    string
	AppService  string
	NoRateLimit bool
	// Locked and Suspended carry the asserted user's moderation state:
	// acting through the service does not lift it.
	Locked, Suspended bool
}

// Authenticate resolves an as_token with the user_id and device_id the
// service asserts. ok is false when token is not an as_token (the caller
// then tries it as an ordinary access token).
func (s *Service) Authenticate(ctx context.Context, token, assertUser, assertDevice string) (id Identity, ok bool, err error) {
	reg := s.ByToken(token)
	if reg == nil {
		return Identity{}, false, nil
	}
	id = Identity{UserID: reg.Sender, AppService: reg.ID, NoRateLimit: true}
	if assertUser != "" && assertUser != reg.Sender {
		if !s.ownsUser(reg, assertUser) {
			return Identity{}, true, mxerr.New("M_EXCLUSIVE", "Application service cannot act as %s: not in its namespace", assertUser).WithStatus(http.StatusForbidden)
		}
		u, err := s.db.GetUser(ctx, assertUser)
		if errors.Is(err, storage.ErrNotFound) {
			return Identity{}, true, mxerr.Forbidden("Application service has not registered %s", assertUser)
		}
		if err != nil {
			return Identity{}, true, fmt.Errorf("look up asserted user: %w", err)
		}
		if u.Deactivated {
			return Identity{}, true, mxerr.Forbidden("%s is deactivated", assertUser)
		}
		id.UserID = assertUser
		id.Locked, id.Suspended = u.Locked, u.Suspended
		// The spec exempts the sender; its users follow rate_limited.
		id.NoRateLimit = !reg.RateLimited
	}
	if assertDevice != "" {
		if _, err := s.accounts.Device(ctx, id.UserID, assertDevice); err != nil {
			if e, isMx := mxerr.As(err); isMx && e.Code == "M_NOT_FOUND" {
				return Identity{}, true, mxerr.New("M_UNKNOWN_DEVICE", "Device %s does not belong to %s", assertDevice, id.UserID)
			}
			return Identity{}, true, err
		}
		id.DeviceID = assertDevice
	}
	return id, true, nil
}

// ownsUser reports whether reg may register, log in and act as userID: a
// user of its namespaces that no other service reserves exclusively (a
// broad non-exclusive namespace must not reach into another bridge's users).
func (s *Service) ownsUser(reg *Registration, userID string) bool {
	if !reg.InUserNamespace(userID) {
		return false
	}
	for _, other := range s.regs {
		if other != reg && other.ExclusiveUser(userID) {
			return false
		}
	}
	return true
}

// ExclusiveUser reports whether some service reserves userID exclusively.
func (s *Service) ExclusiveUser(userID string) bool {
	for _, r := range s.regs {
		if r.ExclusiveUser(userID) {
			return true
		}
	}
	return false
}

// CheckAliasOwner refuses (M_EXCLUSIVE) the creation or deletion of alias
// by anyone but the service that reserves it exclusively, and by a service
// outside its own aliases namespaces. asID is the acting service ("" for
// ordinary users). A service passing it has full control of the alias.
func (s *Service) CheckAliasOwner(alias, asID string) error {
	if asID != "" {
		if reg := s.ByID(asID); reg == nil || !reg.InAliasNamespace(alias) {
			return mxerr.New("M_EXCLUSIVE", "Room alias %s is not in the application service's namespace", alias)
		}
	}
	for _, r := range s.regs {
		if r.ID != asID && r.ExclusiveAlias(alias) {
			return mxerr.New("M_EXCLUSIVE", "Room alias %s is reserved by an application service", alias)
		}
	}
	return nil
}

// EnsureSenders creates the sender account of every service that has
// none yet: the sender joins rooms and sends events like any user.
func (s *Service) EnsureSenders(ctx context.Context) error {
	for _, r := range s.regs {
		_, err := s.db.GetUser(ctx, r.Sender)
		if err == nil {
			continue
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("appservice %s: sender: %w", r.ID, err)
		}
		if _, err := s.accounts.CreateAccount(ctx, account.NewAccount{Localpart: r.SenderLocalpart}); err != nil {
			return fmt.Errorf("appservice %s: creating sender %s: %w", r.ID, r.Sender, err)
		}
		s.log.Info("created application service sender", "appservice", r.ID, "user", r.Sender)
	}
	return nil
}

// LoginType is the login and registration type of application services.
const LoginType = "m.login.application_service"

// RegisterRequest is an application service's POST /register.
type RegisterRequest struct {
	Token             string
	Username          string
	DeviceID          string
	DeviceDisplayName string
	InhibitLogin      bool
	RefreshToken      bool // the client supports refresh tokens
}

// Register creates a user in the service's namespace, without
// user-interactive authentication and without a password.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (*account.Registration, error) {
	reg, err := s.requireToken(req.Token)
	if err != nil {
		return nil, err
	}
	if req.Username == "" {
		return nil, mxerr.MissingParam("username is required")
	}
	localpart := req.Username
	if strings.HasPrefix(localpart, "@") {
		lp, server, _ := strings.Cut(localpart[1:], ":")
		if server != s.serverName {
			return nil, mxerr.New("M_INVALID_USERNAME", "User ID must be on this server (%s)", s.serverName)
		}
		localpart = lp
	}
	userID := "@" + localpart + ":" + s.serverName
	if !reg.InUserNamespace(userID) {
		return nil, mxerr.New("M_EXCLUSIVE", "%s is not in the application service's namespace", userID)
	}
	if !s.ownsUser(reg, userID) {
		return nil, mxerr.New("M_EXCLUSIVE", "%s is reserved by another application service", userID)
	}
	if _, err := s.accounts.CreateAccount(ctx, account.NewAccount{Localpart: localpart}); err != nil {
		return nil, err
	}
	s.log.Info("application service registered user", "appservice", reg.ID, "user", userID)
	out := &account.Registration{UserID: userID}
	if !req.InhibitLogin {
		if out.Session, err = s.accounts.IssueSession(ctx, userID, req.DeviceID, req.DeviceDisplayName, req.RefreshToken); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LoginRequest is an application service's POST /login.
type LoginRequest struct {
	Token             string
	User              string // localpart or user ID
	DeviceID          string
	DeviceDisplayName string
	RefreshToken      bool
}

// Login issues an access token for a registered user in the service's
// namespace.
func (s *Service) Login(ctx context.Context, req LoginRequest) (*account.Session, error) {
	reg, err := s.requireToken(req.Token)
	if err != nil {
		return nil, err
	}
	if req.User == "" {
		return nil, mxerr.MissingParam("identifier.user is required")
	}
	userID, ok := s.accounts.ResolveUser(req.User)
	if !ok || !s.ownsUser(reg, userID) {
		return nil, mxerr.New("M_EXCLUSIVE", "User is not in the application service's namespace").WithStatus(http.StatusForbidden)
	}
	u, err := s.db.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.Forbidden("User %s has not been registered", userID)
	}
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if u.Deactivated {
		return nil, mxerr.New("M_USER_DEACTIVATED", "This account has been deactivated")
	}
	return s.accounts.IssueSession(ctx, userID, req.DeviceID, req.DeviceDisplayName, req.RefreshToken)
}

// requireToken answers a missing or unknown as_token as the spec asks for
// m.login.application_service: 401 M_MISSING_TOKEN or M_UNKNOWN_TOKEN.
func (s *Service) requireToken(token string) (*Registration, error) {
	if token == "" {
		return nil, mxerr.New("M_MISSING_TOKEN", "Missing application service token")
	}
	reg := s.ByToken(token)
	if reg == nil {
		return nil, mxerr.New("M_UNKNOWN_TOKEN", "Unknown application service token")
	}
	return reg, nil
}
