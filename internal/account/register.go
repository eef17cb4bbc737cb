package account

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	// GuestAccessToken upgrades the guest account it belongs to instead of
	// creating an account; Username must then be the guest's localpart.
	GuestAccessToken string
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
		return s.registerGuest(ctx, req.DeviceDisplayName)
	default:
		return nil, mxerr.InvalidParam("Invalid kind %q", req.Kind)
	}
	op, err := s.registerOp()
	if err != nil {
		return nil, err
	}
	if req.GuestAccessToken != "" {
		return s.upgradeGuest(ctx, op, req)
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
	if err := s.checkNewPassword(req.Password); err != nil {
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
		// checkAvailable also skips names in an exclusive namespace.
		for range 5 {
			localpart = generateLocalpart()
			if err := s.checkAvailable(ctx, localpart); err == nil {
				break
			}
		}
	}
	userID, err := s.CreateAccount(ctx, NewAccount{Localpart: localpart, Password: req.Password, RegistrationToken: sess.regToken, Threepid: sess.threepid})
	if err := s.retryUsedUpToken(err, op, sess); err != nil {
		return nil, err
	}
	s.uia.remove(sess.id)
	s.threepidSessionUsed(ctx, sess)
	s.log.Info("registered user", "user", userID, "with_email", sess.threepid != nil)
	return s.registered(ctx, userID, req)
}

// retryUsedUpToken passes err on, except that a registration token used up
// by someone else while this client was between stages asks for the stage
// again.
func (s *Service) retryUsedUpToken(err error, op uiaOp, sess uiaSession) error {
	if errors.Is(err, errTokenUsedUp) {
		// Someone else took the token's last use while this client was
		// between stages: ask for the stage again.
		sess.completed = slices.DeleteFunc(sess.completed, func(st string) bool { return st == StageRegistrationToken })
		sess.regToken = ""
		s.uia.update(sess)
		return &AuthRequired{Flows: op.flows, Params: op.params, Session: sess.id, Completed: sess.completed,
			Err: mxerr.New("M_UNAUTHORIZED", "The registration token is no longer valid")}
	}
	return err
}

// registered logs a new (or upgraded) account in unless inhibit_login.
func (s *Service) registered(ctx context.Context, userID string, req RegisterRequest) (*Registration, error) {
	var err error
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
	email := s.emailAuth()
	required := email && s.cfg.RegistrationRequiresEmail
	switch s.cfg.Registration {
	case config.RegistrationOpen:
		switch {
		case required:
			op.flows = []Flow{{Stages: []string{StageEmailIdentity}}}
		case email:
			// Optional: clients show an email field that may be left
			// empty (Element reads it so from these two flows).
			op.flows = []Flow{{Stages: []string{StageDummy}}, {Stages: []string{StageEmailIdentity}}}
		default:
			op.flows = []Flow{{Stages: []string{StageDummy}}}
		}
	case config.RegistrationToken:
		if required {
			op.flows = []Flow{{Stages: []string{StageRegistrationToken, StageEmailIdentity}}}
		} else {
			op.flows = []Flow{{Stages: []string{StageRegistrationToken}}}
		}
	default:
		return uiaOp{}, mxerr.Forbidden("Registration is disabled")
	}
	op.verify = func(ctx context.Context, stage string, a *AuthDict, sess *uiaSession) error {
		switch stage {
		case StageDummy:
			return nil
		case StageEmailIdentity:
			return s.verifyEmailStage(ctx, a, PurposeRegister, sess)
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
	if s.ReservedUser != nil && s.ReservedUser(userID) {
		return mxerr.New("M_EXCLUSIVE", "User ID is reserved (by an application service, or for server notices)").WithStatus(400)
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
	// Guest creates a guest account.
	Guest bool
	// Threepid, when set, is associated with the account in the same
	// transaction (an email address validated during registration).
	Threepid *storage.Threepid
}

var errTokenUsedUp = errors.New("registration token no longer valid")

// CreateAccount validates and creates an account; it is shared by
// registration, shared-secret registration and `axon user create`.
func (s *Service) CreateAccount(ctx context.Context, n NewAccount) (string, error) {
	userID, err := s.CheckLocalpart(n.Localpart)
	if err != nil {
		return "", err
	}
	if err := s.checkNewPassword(n.Password); err != nil {
		return "", err
	}
	u := storage.User{
		UserID: userID, Localpart: n.Localpart, IsAdmin: n.Admin,
		DisplayName: n.DisplayName, CreatedTS: s.now().UnixMilli(), IsGuest: n.Guest,
	}
	if u.DisplayName == "" {
		u.DisplayName = n.Localpart
	}
	if n.Threepid != nil {
		t := *n.Threepid
		t.AddedTS = u.CreatedTS
		u.Threepids = []storage.Threepid{t}
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
	case errors.Is(err, storage.ErrThreepidInUse):
		return "", mxerr.New("M_THREEPID_IN_USE", "This email address is already in use")
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

// guestLocalpartDigits is the length of generated guest localparts: wide
// enough that random picks practically never collide.
const guestLocalpartDigits = 12

// registerGuest creates a guest account (POST /register?kind=guest) when the
// server allows guests. Everything but the device's display name is ignored,
// as the spec says: the server picks the localpart and the device ID.
func (s *Service) registerGuest(ctx context.Context, deviceDisplayName string) (*Registration, error) {
	if !s.cfg.GuestAccess {
		return nil, mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
	}
	var userID string
	var err error
	for range 5 {
		localpart := randomDigits(guestLocalpartDigits)
		userID, err = s.CreateAccount(ctx, NewAccount{Localpart: localpart, Guest: true})
		if e, ok := mxerr.As(err); !ok || e.Code != "M_USER_IN_USE" {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("registered guest", "user", userID)
	sess, err := s.newSession(ctx, userID, "", deviceDisplayName, false)
	if err != nil {
		return nil, err
	}
	return &Registration{UserID: userID, Session: sess}, nil
}

// upgradeGuest turns the guest account of req.GuestAccessToken into a full
// account through the ordinary registration authentication. The user ID
// stays; the spec has the client repeat the guest's localpart as username.
func (s *Service) upgradeGuest(ctx context.Context, op uiaOp, req RegisterRequest) (*Registration, error) {
	owner, err := s.Authenticate(ctx, req.GuestAccessToken)
	if err != nil {
		return nil, err
	}
	if !owner.IsGuest {
		return nil, mxerr.Forbidden("guest_access_token does not belong to a guest account")
	}
	if req.Username == "" {
		return nil, mxerr.MissingParam("username is required to upgrade a guest account")
	}
	if userID, err := s.CheckLocalpart(s.normaliseUsername(req.Username)); err != nil {
		return nil, err
	} else if userID != owner.UserID {
		return nil, mxerr.New("M_INVALID_USERNAME", "username must be the guest account's localpart")
	}
	if err := s.checkNewPassword(req.Password); err != nil {
		return nil, err
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return nil, err
	}
	sess, err := s.interactiveAuth(ctx, op, req.Auth)
	if err != nil {
		return nil, err
	}
	hash := ""
	if req.Password != "" {
		if hash, err = s.hasher.Hash(req.Password); err != nil {
			return nil, fmt.Errorf("hash password: %w", err)
		}
	}
	err = s.db.UpgradeGuest(ctx, owner.UserID, hash, sess.regToken, s.now().UnixMilli())
	switch {
	case errors.Is(err, storage.ErrTokenUsedUp):
		err = errTokenUsedUp
	case errors.Is(err, storage.ErrNotFound):
		// Upgraded meanwhile by another request.
		s.uia.remove(sess.id)
		return nil, mxerr.New("M_USER_IN_USE", "The guest account was already upgraded")
	}
	if err := s.retryUsedUpToken(err, op, sess); err != nil {
		return nil, err
	}
	s.uia.remove(sess.id)
	if sess.threepid != nil {
		// The guest row exists already, so the address is added after
		// the upgrade rather than with it; it was free a moment ago.
		t := *sess.threepid
		t.UserID, t.AddedTS = owner.UserID, s.now().UnixMilli()
		if err := s.db.AddThreepidFromSession(ctx, t, sess.threepidSID); err != nil {
			s.log.Warn("adding the email address of an upgraded guest", "user", owner.UserID, "err", err)
		}
	}
	s.log.Info("upgraded guest account", "user", owner.UserID)
	return s.registered(ctx, owner.UserID, req)
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0' + byte(rand.IntN(10))
	}
	return string(b)
}
