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

// LoginTypeToken is the m.login.token login, with a token from
// POST /login/get_token.
const LoginTypeToken = "m.login.token"

// LoginTokenTTL is how long a login token stays valid: long enough to scan
// a QR code or type it into a new device, short enough to be useless when
// it leaks later.
const LoginTokenTTL = 2 * time.Minute

// IssuedToken is a freshly issued short-lived secret (a login or an OpenID
// token): the caller gets it once, the database keeps only its hash.
type IssuedToken struct {
	Token     string
	ExpiresIn time.Duration
}

// issueToken makes a random token valid for ttl and stores its hash with
// store, which is given the creation and expiry times in milliseconds.
func (s *Service) issueToken(ttl time.Duration, store func(hash string, created, expires int64) error) (*IssuedToken, error) {
	tok := auth.RandomString(43)
	now := s.now()
	if err := store(auth.HashToken(tok), now.UnixMilli(), now.Add(ttl).UnixMilli()); err != nil {
		return nil, err
	}
	return &IssuedToken{Token: tok, ExpiresIn: ttl}, nil
}

// NewLoginToken issues a single-use login token for user once the account
// password is confirmed through user-interactive authentication (a
// *AuthRequired until then).
func (s *Service) NewLoginToken(ctx context.Context, user string, a *AuthDict) (*IssuedToken, error) {
	finish, err := s.ConfirmPassword(ctx, user, "get_login_token", a)
	if err != nil {
		return nil, err
	}
	defer finish()
	tok, err := s.issueToken(LoginTokenTTL, func(hash string, created, expires int64) error {
		return s.db.AddLoginToken(ctx, hash, user, created, expires)
	})
	if err != nil {
		return nil, fmt.Errorf("store login token: %w", err)
	}
	return tok, nil
}

// loginWithToken consumes a login token and returns its user.
func (s *Service) loginWithToken(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", mxerr.MissingParam("Missing token")
	}
	user, err := s.db.ConsumeLoginToken(ctx, auth.HashToken(token), s.now().UnixMilli())
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.Forbidden("Invalid or expired login token")
	}
	if err != nil {
		return "", fmt.Errorf("login token: %w", err)
	}
	u, err := s.db.GetUser(ctx, user)
	if err != nil {
		return "", fmt.Errorf("login token: %w", err)
	}
	if u.Deactivated {
		return "", mxerr.New("M_USER_DEACTIVATED", "This account has been deactivated")
	}
	if u.Locked {
		return "", mxerr.UserLocked()
	}
	return user, nil
}
