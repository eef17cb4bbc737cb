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

// ServerName is the server's Matrix name, the domain of local user IDs.
func (s *Service) ServerName() string { return s.cfg.ServerName }

// Authenticate resolves an access token to its user and device. Tokens are
// not cached: `axon user deactivate` and `reset-password` run in another
// process and remove devices directly in the database, and that must take
// effect at once.
func (s *Service) Authenticate(ctx context.Context, token string) (userID, deviceID string, isAdmin bool, err error) {
	userID, deviceID, isAdmin, err = s.db.DeviceByToken(ctx, auth.HashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		e := mxerr.New("M_UNKNOWN_TOKEN", "Unknown access token")
		e.Extra = map[string]any{"soft_logout": false}
		return "", "", false, e
	}
	if err != nil {
		return "", "", false, fmt.Errorf("authenticate: %w", err)
	}
	return userID, deviceID, isAdmin, nil
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
