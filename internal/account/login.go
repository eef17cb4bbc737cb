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

// LoginTypePassword is the password login offered by GET /login (with
// LoginTypeToken).
const LoginTypePassword = "m.login.password"

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Type       string
	Identifier *Identifier
	// Deprecated top-level forms of the identifier.
	User, Medium, Address string
	Password              *string
	Token                 string // of LoginTypeToken
	DeviceID              string
	DeviceDisplayName     string // initial_device_display_name
	// RefreshToken: the client supports refresh tokens.
	RefreshToken bool
}

// Session is a freshly issued access token and the device it belongs to.
// RefreshToken and ExpiresIn are set for clients that opted into refresh
// tokens: the access token then stops working after ExpiresIn.
type Session struct {
	UserID       string
	DeviceID     string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
}

// Login checks credentials and issues an access token.
func (s *Service) Login(ctx context.Context, req LoginRequest) (*Session, error) {
	if req.Type == LoginTypeToken {
		if err := checkDeviceID(req.DeviceID); err != nil {
			return nil, err
		}
		userID, err := s.loginWithToken(ctx, req.Token)
		if err != nil {
			return nil, err
		}
		return s.newSession(ctx, userID, req.DeviceID, req.DeviceDisplayName, req.RefreshToken)
	}
	if req.Type != LoginTypePassword {
		return nil, mxerr.New("M_UNKNOWN", "Unknown login type %q", req.Type).WithStatus(400)
	}
	if req.Password == nil {
		return nil, mxerr.MissingParam("Missing password")
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return nil, err
	}
	userID, err := s.identify(ctx, req.Identifier, req.User, req.Medium, req.Address)
	if err != nil {
		return nil, err
	}
	u, err := s.verifyPassword(ctx, userID, *req.Password)
	if err != nil {
		return nil, err
	}
	// Checked after the password, so that only the account holder
	// learns that the account is locked.
	if u.Locked {
		return nil, mxerr.UserLocked()
	}
	return s.newSession(ctx, userID, req.DeviceID, req.DeviceDisplayName, req.RefreshToken)
}

// identify resolves a user identifier (or its deprecated top-level form)
// to a local user ID. An email address finds the account it was added to;
// an unknown one (and any phone number: the server keeps none) is answered
// like an unknown account, with the 403 the spec asks for.
func (s *Service) identify(ctx context.Context, id *Identifier, user, medium, address string) (string, error) {
	if id == nil {
		switch {
		case user != "":
			id = &Identifier{Type: "m.id.user", User: user}
		case medium != "" || address != "":
			id = &Identifier{Type: "m.id.thirdparty", Medium: medium, Address: address}
		default:
			return "", mxerr.InvalidParam("Missing identifier")
		}
	}
	switch id.Type {
	case "m.id.user":
		if id.User == "" {
			return "", mxerr.MissingParam("Missing identifier.user")
		}
		userID, ok := s.ResolveUser(id.User)
		if !ok {
			return "", mxerr.Forbidden("Invalid username or password")
		}
		return userID, nil
	case "m.id.thirdparty":
		if id.Medium == "email" && id.Address != "" {
			owner, err := s.db.ThreepidOwner(ctx, "email", CanonicalEmail(id.Address))
			if err == nil {
				return owner, nil
			}
			if !errors.Is(err, storage.ErrNotFound) {
				return "", fmt.Errorf("look up 3PID: %w", err)
			}
			// No account: an empty user ID makes the password check
			// fail after the same hashing work as for a wrong password,
			// so timing does not tell which addresses are registered.
			return "", nil
		}
		return "", mxerr.Forbidden("Invalid username or password")
	case "m.id.phone":
		return "", mxerr.Forbidden("Invalid username or password")
	default:
		return "", mxerr.New("M_UNKNOWN", "Unknown identifier type %q", id.Type).WithStatus(400)
	}
}

// verifyPassword checks pw against the account's password. Unknown
// accounts, accounts without a password and wrong passwords all give the
// same M_FORBIDDEN after the same amount of hashing work.
func (s *Service) verifyPassword(ctx context.Context, userID, pw string) (*storage.User, error) {
	denied := mxerr.Forbidden("Invalid username or password")
	u, err := s.db.GetUser(ctx, userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if u != nil && u.Deactivated {
		_, _ = s.hasher.Check(s.dummy(), pw)
		return nil, mxerr.New("M_USER_DEACTIVATED", "This account has been deactivated")
	}
	if u == nil || u.PasswordHash == "" || len(pw) > maxPasswordLen {
		_, _ = s.hasher.Check(s.dummy(), pw)
		return nil, denied
	}
	ok, err := s.hasher.Check(u.PasswordHash, pw)
	if err != nil {
		s.log.Error("stored password hash is unusable", "user", userID, "err", err)
		return nil, denied
	}
	if !ok {
		return nil, denied
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		// Raised cost parameters reach each account at its next login.
		if h, err := s.hasher.Hash(pw); err == nil {
			if err := s.db.SetPassword(ctx, userID, h); err != nil {
				s.log.Warn("rehashing password", "user", userID, "err", err)
			}
		}
	}
	return u, nil
}

func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		h, err := s.hasher.Hash(auth.RandomString(16))
		if err != nil {
			s.log.Error("computing dummy password hash", "err", err)
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// IssueSession issues an access token for an existing account, for logins
// that other services have authorised (application services).
func (s *Service) IssueSession(ctx context.Context, userID, deviceID, displayName string, refresh bool) (*Session, error) {
	if err := checkDeviceID(deviceID); err != nil {
		return nil, err
	}
	return s.newSession(ctx, userID, deviceID, displayName, refresh)
}

// newSession issues an access token for a device, creating the device if
// it does not exist and replacing its tokens if it does. With refresh (the
// client supports refresh tokens, and they are not turned off) the access
// token expires and comes with a refresh token.
func (s *Service) newSession(ctx context.Context, userID, deviceID, displayName string, refresh bool) (*Session, error) {
	if deviceID == "" {
		deviceID = auth.NewDeviceID()
	}
	now := s.now()
	out := &Session{UserID: userID, DeviceID: deviceID, AccessToken: auth.NewAccessToken()}
	row := storage.Session{UserID: userID, DeviceID: deviceID, DisplayName: displayName, TokenHash: auth.HashToken(out.AccessToken)}
	if refresh && s.cfg.RefreshTokens.AccessTokenLifetime > 0 {
		s.addRefresh(out, &row, now)
	}
	if err := s.db.UpsertSession(ctx, row, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("create device: %w", err)
	}
	return out, nil
}

// addRefresh gives a session an expiring access token and a new refresh
// token.
func (s *Service) addRefresh(out *Session, row *storage.Session, now time.Time) {
	rt := s.cfg.RefreshTokens
	out.ExpiresIn = rt.AccessTokenLifetime
	out.RefreshToken = auth.NewRefreshToken()
	row.TokenExpiresTS = now.Add(rt.AccessTokenLifetime).UnixMilli()
	row.RefreshHash = auth.HashToken(out.RefreshToken)
	if rt.RefreshTokenLifetime > 0 {
		row.RefreshExpiresTS = now.Add(rt.RefreshTokenLifetime).UnixMilli()
	}
}

// Refresh exchanges a refresh token for a new access token and refresh
// token on the same device (POST /refresh). The old refresh token keeps
// working until the new access or refresh token is first used, so a client
// that lost the answer can ask again; after that it is refused.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Session, error) {
	if refreshToken == "" {
		return nil, mxerr.MissingParam("Missing refresh_token")
	}
	now := s.now()
	out := &Session{AccessToken: auth.NewAccessToken()}
	row := storage.Session{TokenHash: auth.HashToken(out.AccessToken)}
	s.addRefresh(out, &row, now)
	if s.cfg.RefreshTokens.AccessTokenLifetime <= 0 {
		// Refresh tokens were turned off since this one was issued: hand
		// out a last pair whose access token does not expire.
		out.ExpiresIn, row.TokenExpiresTS = 0, 0
	}
	o, err := s.db.RotateRefresh(ctx, auth.HashToken(refreshToken), row, func(o storage.RefreshOwner) error {
		if o.ExpiresTS != 0 && now.UnixMilli() >= o.ExpiresTS {
			return mxerr.UnknownToken(true, "Refresh token has expired")
		}
		if o.Locked {
			return mxerr.UserLocked()
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.UnknownToken(false, "Unknown refresh token")
	}
	if err != nil {
		if _, ok := mxerr.As(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("refresh: %w", err)
	}
	out.UserID, out.DeviceID = o.UserID, o.DeviceID
	return out, nil
}

// Logout deletes the device of the access token used, and so the token.
func (s *Service) Logout(ctx context.Context, userID, deviceID string) error {
	if err := s.db.DeleteDevices(ctx, userID, []string{deviceID}, ""); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	s.devicesChanged(ctx, userID)
	return nil
}

// LogoutAll deletes every device of the user.
func (s *Service) LogoutAll(ctx context.Context, userID string) error {
	if err := s.db.DeleteDevices(ctx, userID, nil, ""); err != nil {
		return fmt.Errorf("logout all: %w", err)
	}
	s.devicesChanged(ctx, userID)
	return nil
}
