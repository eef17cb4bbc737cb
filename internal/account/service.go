// Package account manages users, devices, access tokens, registration,
// profiles and user-interactive authentication. The HTTP handlers in
// clientapi and the `axon user` / `axon token` commands both call it, so
// the rules (username grammar, password hashing, token handling) live in
// one place.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service manages accounts.
type Service struct {
	db     *storage.DB
	cfg    *config.Config
	log    *slog.Logger
	hasher auth.Hasher
	now    func() time.Time

	uia    *uiaStore
	nonces *auth.NonceStore

	// dummyHash is checked against when a login names no existing
	// password, so that the answer takes as long as for a real account
	// and response times do not reveal which user IDs exist.
	dummyOnce sync.Once
	dummyHash string

	seenMu sync.Mutex
	seen   map[deviceKey]seenEntry

	// OnDevicesDeleted, if set, is told after devices of a user were
	// deleted (the key server wakes whoever tracks that user's devices).
	OnDevicesDeleted func(ctx context.Context, userID string)

	// ReservedUser, if set, reports whether a user ID is in an application
	// service's exclusive namespace or is otherwise the server's (the server
	// notices account): ordinary registration may not take it.
	ReservedUser func(userID string) bool
	// QueryUnknownUser, if set, is asked when a profile lookup names a
	// local user that does not exist, and reports whether the user exists
	// now (an application service may create users of its namespace on
	// demand). Its error (the service did not answer) is the client's.
	QueryUnknownUser func(ctx context.Context, userID string) (bool, error)

	// Threepids, if set, checks email validation sessions for the
	// m.login.email.identity stage (offered when email is configured).
	Threepids ThreepidSessions
}

type deviceKey struct{ user, device string }

type seenEntry struct {
	at time.Time
	ip string
}

// New creates the service.
func New(db *storage.DB, cfg *config.Config, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{
		db: db, cfg: cfg, log: log,
		hasher: auth.DefaultHasher,
		now:    time.Now,
		uia:    newUIAStore(time.Now),
		nonces: auth.NewNonceStore(),
		seen:   make(map[deviceKey]seenEntry),
	}
}

// SetHasher replaces the password hasher (tests use a cheap one). Call it
// before the service is used.
func (s *Service) SetHasher(h auth.Hasher) {
	s.hasher = h
	s.dummyOnce = sync.Once{}
}

// SetClock replaces the service's clock (tests move it forward to expire
// tokens without waiting). Call it before the service is used.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// ServerName is the server's Matrix name, the domain of local user IDs.
func (s *Service) ServerName() string { return s.cfg.ServerName }

// Caller is who an access token belongs to, with the account's state.
type Caller struct {
	UserID, DeviceID string
	IsAdmin          bool
	// Locked accounts may only log out; the HTTP edge refuses the rest.
	Locked bool
	// Suspended accounts may read but not act; the services refuse.
	Suspended bool
	// Guest accounts may use only the endpoints the spec lists for them.
	IsGuest bool
}

// Authenticate resolves an access token to its user and device. Tokens are
// not cached: `axon user deactivate`, `reset-password` and `lock` run in
// another process and change the database directly, and that must take
// effect at once. The lookup is one indexed query.
func (s *Service) Authenticate(ctx context.Context, token string) (*Caller, error) {
	hash := auth.HashToken(token)
	o, err := s.db.DeviceByToken(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.UnknownToken(false, "Unknown access token")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if o.ExpiresTS != 0 && s.now().UnixMilli() >= o.ExpiresTS {
		// The session lives on: the client refreshes, or logs in again
		// on the same device, and keeps its keys.
		return nil, mxerr.UnknownToken(true, "Access token has expired")
	}
	if o.RotationPending {
		// First use of a refreshed access token: the refresh token it
		// replaced stops working now (spec: refreshing access tokens).
		if err := s.db.FinishRotation(ctx, hash); err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		}
	}
	return &Caller{UserID: o.UserID, DeviceID: o.DeviceID, IsAdmin: o.IsAdmin, Locked: o.Locked, Suspended: o.Suspended, IsGuest: o.IsGuest}, nil
}

// seenInterval is how stale a device's last-seen record may get. Writing
// it on every request would put a database write on every read.
const seenInterval = time.Minute

// SeenDevice records that a device made a request from ip. Writes are
// throttled to one per device per seenInterval unless the address changes.
// Failures are logged, never returned: last-seen data is informational.
func (s *Service) SeenDevice(ctx context.Context, userID, deviceID, ip string) {
	now := s.now()
	k := deviceKey{userID, deviceID}
	s.seenMu.Lock()
	e, ok := s.seen[k]
	if ok && e.ip == ip && now.Sub(e.at) < seenInterval {
		s.seenMu.Unlock()
		return
	}
	s.seen[k] = seenEntry{at: now, ip: ip}
	if len(s.seen) > 100000 {
		// Forget everything rather than track an unbounded set; the
		// worst case is one extra write per device.
		s.seen = map[deviceKey]seenEntry{k: {at: now, ip: ip}}
	}
	s.seenMu.Unlock()
	if err := s.db.TouchDevice(ctx, userID, deviceID, ip, now.UnixMilli()); err != nil {
		s.log.Warn("recording device last seen", "user", userID, "device", deviceID, "err", err)
	}
}

// Rooms is what the account service needs from the room service: profile
// changes are announced by new member events, and deactivated accounts
// leave their rooms. *rooms.Service implements it.
type Rooms interface {
	Send(ctx context.Context, req rooms.SendRequest) (*rooms.Event, error)
	CurrentStateEvent(ctx context.Context, roomID, typ, stateKey string) (*rooms.Event, error)
	Leave(ctx context.Context, roomID, user, reason string) error
}
