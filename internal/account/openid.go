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

// OpenIDTokenTTL is how long an OpenID token stays valid: the hour the spec
// shows and Synapse uses; services exchange it at once and keep their own
// session afterwards.
const OpenIDTokenTTL = time.Hour

// NewOpenIDToken issues an OpenID token for user, which must be the caller:
// nobody may obtain a token that vouches for someone else.
func (s *Service) NewOpenIDToken(ctx context.Context, caller, user string) (*IssuedToken, error) {
	if caller != user {
		return nil, mxerr.Forbidden("Cannot request an OpenID token for another user")
	}
	tok, err := s.issueToken(OpenIDTokenTTL, func(hash string, created, expires int64) error {
		return s.db.AddOpenIDToken(ctx, hash, user, created, expires)
	})
	if err != nil {
		return nil, fmt.Errorf("store openid token: %w", err)
	}
	return tok, nil
}

// OpenIDUser returns the user an OpenID token was issued to. Unknown and
// expired tokens, and those of accounts deactivated since, are
// M_UNKNOWN_TOKEN (401).
func (s *Service) OpenIDUser(ctx context.Context, token string) (string, error) {
	unknown := mxerr.New("M_UNKNOWN_TOKEN", "Access token unknown or expired")
	if token == "" {
		return "", unknown
	}
	user, err := s.db.OpenIDTokenUser(ctx, auth.HashToken(token), s.now().UnixMilli())
	if errors.Is(err, storage.ErrNotFound) {
		return "", unknown
	}
	if err != nil {
		return "", fmt.Errorf("openid token: %w", err)
	}
	u, err := s.db.GetUser(ctx, user)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return "", unknown
	}
	if err != nil {
		return "", fmt.Errorf("openid token: %w", err)
	}
	return user, nil
}
