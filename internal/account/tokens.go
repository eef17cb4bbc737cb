package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// NewRegistrationToken creates a registration token. uses 0 means
// unlimited; validFor 0 means it never expires.
func (s *Service) NewRegistrationToken(ctx context.Context, uses int64, validFor time.Duration) (storage.RegistrationToken, error) {
	if uses < 0 {
		return storage.RegistrationToken{}, mxerr.InvalidParam("uses may not be negative")
	}
	if validFor < 0 {
		return storage.RegistrationToken{}, mxerr.InvalidParam("expiry may not be in the past")
	}
	now := s.now()
	t := storage.RegistrationToken{Token: auth.NewRegistrationToken(), CreatedTS: now.UnixMilli()}
	if uses > 0 {
		t.UsesAllowed = &uses
	}
	if validFor > 0 {
		exp := now.Add(validFor).UnixMilli()
		t.ExpiryTS = &exp
	}
	if err := s.db.CreateRegistrationToken(ctx, t); err != nil {
		return storage.RegistrationToken{}, fmt.Errorf("create registration token: %w", err)
	}
	return t, nil
}

// RegistrationTokens lists every registration token.
func (s *Service) RegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	ts, err := s.db.ListRegistrationTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registration tokens: %w", err)
	}
	return ts, nil
}

// RevokeRegistrationToken makes a token unusable.
func (s *Service) RevokeRegistrationToken(ctx context.Context, token string) error {
	err := s.db.RevokeRegistrationToken(ctx, token)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("No such registration token")
	}
	if err != nil {
		return fmt.Errorf("revoke registration token: %w", err)
	}
	return nil
}

// TokenState describes a token for listings: "valid", "revoked",
// "expired" or "used up".
func (s *Service) TokenState(t storage.RegistrationToken) string {
	switch {
	case t.Revoked:
		return "revoked"
	case t.ExpiryTS != nil && *t.ExpiryTS <= s.now().UnixMilli():
		return "expired"
	case t.UsesAllowed != nil && t.Completed >= *t.UsesAllowed:
		return "used up"
	}
	return "valid"
}

// Users lists every account (for `axon user list`).
func (s *Service) Users(ctx context.Context) ([]storage.User, error) {
	us, err := s.db.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}
