// Package account manages users, devices, access tokens, registration and
// user-interactive authentication.
package account

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service manages accounts.
type Service struct {
	db     *storage.DB
	cfg    *config.Config
	log    *slog.Logger
	hasher auth.Hasher
	now    func() time.Time
}

// New creates the service.
func New(db *storage.DB, cfg *config.Config, log *slog.Logger) *Service {
	return &Service{db: db, cfg: cfg, log: log, hasher: auth.DefaultHasher, now: time.Now}
}

// SetHasher replaces the password hasher (tests use a cheap one).
func (s *Service) SetHasher(h auth.Hasher) { s.hasher = h }

// Authenticate resolves an access token to its user and device.
func (s *Service) Authenticate(ctx context.Context, token string) (userID, deviceID string, isAdmin bool, err error) {
	userID, deviceID, err = s.db.DeviceByToken(ctx, auth.HashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		e := mxerr.New("M_UNKNOWN_TOKEN", "Unknown access token")
		e.Extra = map[string]any{"soft_logout": false}
		return "", "", false, e
	}
	if err != nil {
		return "", "", false, err
	}
	u, err := s.db.GetUser(ctx, userID)
	if err != nil {
		return "", "", false, err
	}
	return userID, deviceID, u.IsAdmin, nil
}
