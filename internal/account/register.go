package account

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// maxRegistrationTokenLen is the spec's limit on registration tokens.
const maxRegistrationTokenLen = 64

// RegisterRequest is the body (and kind parameter) of POST /register.
type RegisterRequest struct {
	Kind              string
	Username          string
	Password          string
	DeviceID          string
	DeviceDisplayName string
	InhibitLogin      bool
	Auth              *AuthDict
	// RefreshToken: the client supports refresh tokens.
	RefreshToken bool
}

// Registration is the result of a completed registration. Session is nil
// when the client asked for inhibit_login.
type Registration struct {
	UserID  string
	Session *Session
}

// Register creates an account through user-interactive authentication:
// m.login.dummy when registration is open, m.login.registration_token
// when it needs a token.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (*Registration, error) {
	switch req.Kind {
	case "", "user":
	case "guest":
		return nil, mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
	default:
		return nil, mxerr.InvalidParam("Invalid kind %q", req.Kind)
	}
	op, err := s.registerOp()
	if err != nil {
		return nil, err
	}
	// The spec wants username problems reported before authentication,
	// so a user does not fetch a token only to find the name taken.
	var localpart string
	if req.Username != "" {
		localpart = s.normaliseUsername(req.Username)
		if err := s.checkAvailable(ctx, localpart); err != nil {
			return nil, err
		}
	}
	if err := checkPasswordInput(req.Password); err != nil {
		return nil, err
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return nil, err
	}
	sess, err := s.interactiveAuth(ctx, op, req.Auth)
	if err != nil {
		return nil, err
	}
	if localpart == "" {
		for range 5 {
			localpart = generateLocalpart()
			if err := s.checkAvailable(ctx, localpart); err == nil {
				break
			}
		}
	}
	userID, err := s.CreateAccount(ctx, NewAccount{Localpart: localpart, Password: req.Password, RegistrationToken: sess.regToken})
	if errors.Is(err, errTokenUsedUp) {
		// Someone else took the token's last use while this client was
		// between stages: ask for the stage again.
		sess.completed = slices.DeleteFunc(sess.completed, func(st string) bool { return st == StageRegistrationToken })
		sess.regToken = ""
		s.uia.update(sess)
		return nil, &AuthRequired{Flows: op.flows, Params: op.params, Session: sess.id, Completed: sess.completed,
			Err: mxerr.New("M_UNAUTHORIZED", "The registration token is no longer valid")}
	}
	if err != nil {
		return nil, err
	}
	s.uia.remove(sess.id)
	s.log.Info("registered user", "user", userID)
	out := &Registration{UserID: userID}
	if !req.InhibitLogin {
		if out.Session, err = s.newSession(ctx, userID, req.DeviceID, req.DeviceDisplayName, req.RefreshToken); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// registerOp is the authentication required by /register in the
// configured registration mode.
func (s *Service) registerOp() (uiaOp, error) {
	op := uiaOp{name: "register", params: map[string]any{}}
	switch s.cfg.Registration {
	case config.RegistrationOpen:
		op.flows = []Flow{{Stages: []string{StageDummy}}}
	case config.RegistrationToken:
		op.flows = []Flow{{Stages: []string{StageRegistrationToken}}}
	default:
		return uiaOp{}, mxerr.Forbidden("Registration is disabled")
	}
	op.verify = func(ctx context.Context, stage string, a *AuthDict, sess *uiaSession) error {
		switch stage {
		case StageDummy:
			return nil
		case StageRegistrationToken:
			valid, err := s.tokenValid(ctx, a.Token)
			if err != nil {
				return err
			}
			if !valid {
				return mxerr.New("M_UNAUTHORIZED", "Invalid registration token")
			}
			sess.regToken = a.Token
			return nil
		}
		return mxerr.New("M_UNRECOGNIZED", "Unsupported authentication type %q", stage)
	}
	return op, nil
}

// UsernameAvailable answers GET /register/available: nil when username
// could be registered now, else M_INVALID_USERNAME or M_USER_IN_USE. It
// answers whatever the registration mode, as Synapse does.
func (s *Service) UsernameAvailable(ctx context.Context, username string) error {
	return s.checkAvailable(ctx, s.normaliseUsername(username))
}

func (s *Service) checkAvailable(ctx context.Context, localpart string) error {
	userID, err := s.CheckLocalpart(localpart)
	if err != nil {
		return err
	}
	_, err = s.db.GetUser(ctx, userID)
	switch {
	case err == nil:
		return mxerr.New("M_USER_IN_USE", "User ID already taken")
	case errors.Is(err, storage.ErrNotFound):
		return nil
	default:
		return fmt.Errorf("look up user: %w", err)
	}
}

// RegistrationTokenValid answers GET /register/m.login.registration_token/validity.
func (s *Service) RegistrationTokenValid(ctx context.Context, token string) (bool, error) {
	if s.cfg.Registration == config.RegistrationDisabled {
		return false, mxerr.Forbidden("Registration is not enabled on this homeserver")
	}
	return s.tokenValid(ctx, token)
}

func (s *Service) tokenValid(ctx context.Context, token string) (bool, error) {
	if token == "" || len(token) > maxRegistrationTokenLen {
		return false, nil
	}
	valid, err := s.db.RegistrationTokenValid(ctx, token, s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("check registration token: %w", err)
	}
	return valid, nil
}

// NewAccount describes an account to create.
type NewAccount struct {
	Localpart   string
	Password    string // "" for an account that cannot log in with a password
	Admin       bool
	DisplayName string // defaults to the localpart, as on Synapse
	// RegistrationToken, when set, has one use consumed atomically with
	// the creation.
	RegistrationToken string
}

var errTokenUsedUp = errors.New("registration token no longer valid")

// CreateAccount validates and creates an account; it is shared by
// registration, shared-secret registration and `axon user create`.
func (s *Service) CreateAccount(ctx context.Context, n NewAccount) (string, error) {
	userID, err := s.CheckLocalpart(n.Localpart)
	if err != nil {
		return "", err
	}
	if err := checkPasswordInput(n.Password); err != nil {
		return "", err
	}
	u := storage.User{
		UserID: userID, Localpart: n.Localpart, IsAdmin: n.Admin,
		DisplayName: n.DisplayName, CreatedTS: s.now().UnixMilli(),
	}
	if u.DisplayName == "" {
		u.DisplayName = n.Localpart
	}
	if n.Password != "" {
		if u.PasswordHash, err = s.hasher.Hash(n.Password); err != nil {
			return "", fmt.Errorf("hash password: %w", err)
		}
	}
	if n.RegistrationToken != "" {
		err = s.db.CreateUserWithToken(ctx, u, n.RegistrationToken, s.now().UnixMilli())
	} else {
		err = s.db.CreateUser(ctx, u)
	}
	switch {
	case errors.Is(err, storage.ErrExists):
		return "", mxerr.New("M_USER_IN_USE", "User ID already taken")
	case errors.Is(err, storage.ErrNotFound):
		return "", errTokenUsedUp
	case err != nil:
		return "", fmt.Errorf("create user: %w", err)
	}
	return userID, nil
}

// userTypes are the user_type values Synapse's shared-secret registration
// accepts. Axon keeps no user types; the value only enters the MAC.
var userTypes = []string{"support", "bot"}

// SharedSecretRequest is the body of POST /_synapse/admin/v1/register.
// Pointers distinguish absent fields, which Synapse reports by name.
type SharedSecretRequest struct {
	Nonce       *string
	Username    *string
	Password    *string
	Mac         *string
	Admin       bool
	UserType    string
	DisplayName string
	DeviceID    string
}

func (s *Service) sharedSecretEnabled() error {
	if s.cfg.RegistrationSharedSecret == "" {
		return mxerr.New("M_UNKNOWN", "Shared secret registration is not enabled").WithStatus(400)
	}
	return nil
}

// SharedSecretNonce issues a single-use nonce for shared-secret
// registration (GET /_synapse/admin/v1/register).
func (s *Service) SharedSecretNonce() (string, error) {
	if err := s.sharedSecretEnabled(); err != nil {
		return "", err
	}
	return s.nonces.New(), nil
}

// SharedSecretRegister creates an account for a holder of the
// registration shared secret, checking what Synapse checks in the order
// Synapse checks it, so that register_new_matrix_user and similar tools
// see the same answers.
func (s *Service) SharedSecretRegister(ctx context.Context, req SharedSecretRequest) (*Session, error) {
	if err := s.sharedSecretEnabled(); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return mxerr.New("M_UNKNOWN", format, args...).WithStatus(400)
	}
	if req.Nonce == nil {
		return nil, mxerr.BadJSON("nonce must be specified")
	}
	// Consumed before anything else is checked: a nonce buys one attempt.
	if !s.nonces.Consume(*req.Nonce) {
		return nil, bad("unrecognised nonce")
	}
	if req.Username == nil {
		return nil, mxerr.BadJSON("username must be specified")
	}
	if len(*req.Username) > 512 || containsNUL(*req.Username) {
		return nil, bad("Invalid username")
	}
	if req.Password == nil {
		return nil, mxerr.BadJSON("password must be specified")
	}
	if len(*req.Password) > maxPasswordLen || containsNUL(*req.Password) {
		return nil, bad("Invalid password")
	}
	if req.UserType != "" && !slices.Contains(userTypes, req.UserType) {
		return nil, bad("Invalid user type")
	}
	if req.Mac == nil {
		return nil, mxerr.BadJSON("mac must be specified")
	}
	if !auth.CheckRegistrationMAC(s.cfg.RegistrationSharedSecret, *req.Nonce, *req.Username, *req.Password, req.Admin, req.UserType, *req.Mac) {
		return nil, mxerr.Forbidden("HMAC incorrect")
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return nil, err
	}
	localpart := s.normaliseUsername(*req.Username)
	userID, err := s.CreateAccount(ctx, NewAccount{Localpart: localpart, Password: *req.Password, Admin: req.Admin, DisplayName: req.DisplayName})
	if err != nil {
		return nil, err
	}
	s.log.Info("registered user with the shared secret", "user", userID, "admin", req.Admin)
	return s.newSession(ctx, userID, req.DeviceID, "", false)
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
