// Package threepid manages third-party identifiers (3PIDs): the email
// addresses associated with accounts, and the validation sessions of the
// /requestToken endpoints through which a user proves control of one. The
// homeserver validates addresses itself, by sending a link through SMTP;
// it keeps no phone numbers (it cannot send text messages) and talks to
// no identity server.
package threepid

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/ratelimit"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/suspension"
)

// Media of 3PIDs.
const (
	MediumEmail  = "email"
	MediumMSISDN = "msisdn"
)

// Paths of the validation pages and of the submit_url, served by Axon
// under public_baseurl (see clientapi/threepid.go).
const (
	ValidatePath    = "/_axon/client/email/validate"
	SubmitTokenPath = "/_axon/client/email/submit_token"
)

const (
	// tokenTTL is how long the link of one message works.
	tokenTTL = time.Hour
	// sessionTTL is how long a session (and so a validated address) can
	// be used after its last message: enough to finish a registration
	// or a password reset started before a break.
	sessionTTL = 24 * time.Hour
	// maxNextLinkLen bounds the stored next_link.
	maxNextLinkLen = 2000
)

// Confirmer confirms the account password through user-interactive
// authentication; *account.Service implements it.
type Confirmer interface {
	ConfirmPassword(ctx context.Context, userID, op string, a *account.AuthDict) (finish func(), err error)
}

// Service manages 3PIDs and their validation.
type Service struct {
	db       *storage.DB
	cfg      *config.Config
	log      *slog.Logger
	mailer   Mailer // nil: the server sends no email
	accounts Confirmer
	now      func() time.Time
	// perAddress limits the messages sent to one address, whoever asks
	// for them, so the server cannot be used to flood a mailbox.
	perAddress *ratelimit.Limiter
}

// New creates the service. mailer is nil when email is not configured.
func New(db *storage.DB, cfg *config.Config, mailer Mailer, accounts Confirmer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{db: db, cfg: cfg, log: log, mailer: mailer, accounts: accounts, now: time.Now}
	if cfg.RateLimits {
		// Five messages at once, then one every five minutes.
		s.perAddress = ratelimit.New(1.0/300, 5)
	}
	if mailer != nil {
		if u, err := url.Parse(cfg.PublicBaseURL); err == nil && isLocal(u.Hostname()) {
			log.Warn("email is configured but public_baseurl is a local address: the links in validation emails will only work on this machine",
				"public_baseurl", cfg.PublicBaseURL)
		}
	}
	return s
}

func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// EmailEnabled reports whether email addresses can be validated, and so
// added (the m.3pid_changes capability).
func (s *Service) EmailEnabled() bool { return s.mailer != nil }

func threepidMediumNotSupported(medium string) error {
	if medium == MediumMSISDN {
		return mxerr.New("M_THREEPID_MEDIUM_NOT_SUPPORTED", "This homeserver cannot send text messages, so it does not support phone numbers")
	}
	if medium == MediumEmail {
		return mxerr.New("M_THREEPID_MEDIUM_NOT_SUPPORTED", "This homeserver is not configured to send email, so it does not support email addresses")
	}
	return mxerr.New("M_THREEPID_MEDIUM_NOT_SUPPORTED", "Unsupported medium %q", medium)
}

// TokenRequest is the body of a /requestToken endpoint plus which one
// (Purpose, Medium).
type TokenRequest struct {
	Purpose      string // account.PurposeRegister, PurposeAdd or PurposePassword
	Medium       string
	ClientSecret string
	Email        string
	SendAttempt  *int64
	NextLink     string
}

// TokenResponse is the answer of a /requestToken endpoint.
type TokenResponse struct {
	SID       string
	SubmitURL string
}

// RequestToken starts (or continues) the validation of an address: it
// sends a message with a link and a code, unless this client secret has
// already had a message for an equal or later send_attempt.
func (s *Service) RequestToken(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	if err := checkClientSecret(req.ClientSecret); err != nil {
		return nil, err
	}
	if req.Purpose == account.PurposeRegister && s.cfg.Registration == config.RegistrationDisabled {
		return nil, mxerr.Forbidden("Registration is disabled")
	}
	if req.Medium != MediumEmail || s.mailer == nil {
		return nil, threepidMediumNotSupported(req.Medium)
	}
	if req.Email == "" {
		return nil, mxerr.MissingParam("Missing email")
	}
	if req.SendAttempt == nil {
		return nil, mxerr.MissingParam("Missing send_attempt")
	}
	address, err := ValidateEmail(req.Email)
	if err != nil {
		return nil, err
	}
	if err := checkNextLink(req.NextLink); err != nil {
		return nil, err
	}
	owner, err := s.db.ThreepidOwner(ctx, MediumEmail, address)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("look up 3PID owner: %w", err)
	}
	// Telling whether an address is registered is what the spec asks
	// for here; hiding it on /register would gain nothing while the
	// password reset endpoint must answer M_THREEPID_NOT_FOUND.
	switch req.Purpose {
	case account.PurposeRegister, account.PurposeAdd:
		if owner != "" {
			return nil, mxerr.New("M_THREEPID_IN_USE", "This email address is already in use")
		}
	case account.PurposePassword:
		if owner == "" {
			return nil, mxerr.New("M_THREEPID_NOT_FOUND", "No account has this email address")
		}
	}

	now := s.now()
	secretHash := auth.HashToken(req.ClientSecret)
	sess, err := s.db.ThreepidSessionBySecret(ctx, secretHash, MediumEmail, address, req.Purpose, now.UnixMilli())
	switch {
	case err == nil:
		if *req.SendAttempt <= sess.SendAttempt {
			// A retry of a request already served: same session, no
			// second message.
			return s.tokenResponse(sess.SID), nil
		}
	case errors.Is(err, storage.ErrNotFound):
		sess = &storage.ThreepidSession{
			SID: auth.RandomString(24), ClientSecretHash: secretHash, Medium: MediumEmail, Address: address,
			Purpose: req.Purpose, NextLink: req.NextLink, CreatedTS: now.UnixMilli(),
		}
	default:
		return nil, fmt.Errorf("look up validation session: %w", err)
	}
	if ok, retry := s.perAddress.Allow(address); !ok {
		e := mxerr.New("M_LIMIT_EXCEEDED", "Too many emails were sent to this address; try again later")
		e.Extra = map[string]any{"retry_after_ms": retry.Milliseconds() + 1}
		return nil, e
	}
	sess.SendAttempt = *req.SendAttempt
	sess.ExpiresTS = now.Add(sessionTTL).UnixMilli()
	token := newToken()
	// Finished even if the client goes away: its retry with the same
	// send_attempt then gets this session instead of a second message.
	ctx = context.WithoutCancel(ctx)
	// Sent before the session is saved: if sending fails, a retry with
	// the same send_attempt must send again rather than be deduplicated.
	if err := s.mailer.Send(ctx, s.validationMessage(sess, req.ClientSecret, token)); err != nil {
		return nil, fmt.Errorf("send validation email (%s): %w", req.Purpose, err)
	}
	err = s.db.SaveThreepidSend(ctx, *sess, auth.HashToken(token), now.Add(tokenTTL).UnixMilli(), now.UnixMilli())
	if errors.Is(err, storage.ErrExists) {
		// A concurrent request created the session first; answer with
		// that one (the message just sent has a link that does not work,
		// and the other request's message has one that does).
		other, err := s.db.ThreepidSessionBySecret(ctx, secretHash, MediumEmail, address, req.Purpose, now.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("look up validation session: %w", err)
		}
		return s.tokenResponse(other.SID), nil
	}
	if err != nil {
		return nil, fmt.Errorf("save validation session: %w", err)
	}
	s.log.Info("sent email validation", "purpose", req.Purpose, "sid", sess.SID, "send_attempt", sess.SendAttempt)
	return s.tokenResponse(sess.SID), nil
}

func (s *Service) baseURL() string { return strings.TrimSuffix(s.cfg.PublicBaseURL, "/") }

func (s *Service) tokenResponse(sid string) *TokenResponse {
	return &TokenResponse{SID: sid, SubmitURL: s.baseURL() + SubmitTokenPath}
}

// ValidationLink is the link sent in a message.
func (s *Service) ValidationLink(sid, clientSecret, token string) string {
	q := url.Values{"sid": {sid}, "client_secret": {clientSecret}, "token": {token}}
	return s.baseURL() + ValidatePath + "?" + q.Encode()
}

func (s *Service) validationMessage(sess *storage.ThreepidSession, clientSecret, token string) Message {
	server := s.cfg.ServerName
	var subject, what string
	switch sess.Purpose {
	case account.PurposeRegister:
		subject = "Confirm your email address for " + server
		what = "register an account on the Matrix server " + server + " with this email address"
	case account.PurposePassword:
		subject = "Reset your password on " + server
		what = "reset the password of your account on the Matrix server " + server
	default:
		subject = "Confirm your email address for " + server
		what = "add this email address to an account on the Matrix server " + server
	}
	text := "Hello,\n\n" +
		"Someone, hopefully you, asked to " + what + ".\n\n" +
		"To confirm, open this link and press the button on the page:\n\n" +
		s.ValidationLink(sess.SID, clientSecret, token) + "\n\n" +
		"or enter this code in your Matrix app if it asks for one: " + formatToken(token) + "\n\n" +
		"The link works for one hour. If you did not ask for this, ignore this email: nothing changes\n" +
		"unless the link is opened.\n"
	return Message{To: sess.Address, Subject: subject, Text: text}
}

// Pending describes a validation waiting for confirmation, for the page
// the link opens.
type Pending struct {
	Address string
	Purpose string
}

// CheckToken verifies a link's parameters without validating anything, so
// that opening the link (which mail scanners do on their own) only shows
// a page; confirming it is a POST (SubmitToken).
func (s *Service) CheckToken(ctx context.Context, sid, clientSecret, token string) (*Pending, error) {
	sess, err := s.checkToken(ctx, sid, clientSecret, token)
	if err != nil {
		return nil, err
	}
	return &Pending{Address: sess.Address, Purpose: sess.Purpose}, nil
}

// SubmitToken validates the session's address when the token is right
// and returns the session's next_link ("" if none).
func (s *Service) SubmitToken(ctx context.Context, sid, clientSecret, token string) (string, error) {
	sess, err := s.checkToken(ctx, sid, clientSecret, token)
	if err != nil {
		return "", err
	}
	err = s.db.MarkThreepidValidated(ctx, sess.SID, s.now().UnixMilli())
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.New("M_SESSION_EXPIRED", "The validation session has expired or was already used")
	}
	if err != nil {
		return "", fmt.Errorf("mark session validated: %w", err)
	}
	s.log.Info("email address validated", "purpose", sess.Purpose, "sid", sess.SID)
	return sess.NextLink, nil
}

func (s *Service) checkToken(ctx context.Context, sid, clientSecret, token string) (*storage.ThreepidSession, error) {
	if sid == "" || clientSecret == "" || token == "" {
		return nil, mxerr.MissingParam("sid, client_secret and token are required")
	}
	if err := checkClientSecret(clientSecret); err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	sess, err := s.session(ctx, sid, clientSecret, 0)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, mxerr.InvalidParam("Unknown validation session")
	}
	if sess.ExpiresTS <= now {
		return nil, mxerr.New("M_SESSION_EXPIRED", "The validation session has expired")
	}
	ok, err := s.db.ThreepidTokenValid(ctx, sid, auth.HashToken(normaliseToken(token)), now)
	if err != nil {
		return nil, fmt.Errorf("check validation token: %w", err)
	}
	if !ok {
		return nil, mxerr.New("M_TOKEN_INCORRECT", "The token is incorrect or has expired")
	}
	return sess, nil
}

// session returns the session sid if clientSecret is its secret, nil if
// there is no such session. now 0 returns expired sessions too.
func (s *Service) session(ctx context.Context, sid, clientSecret string, now int64) (*storage.ThreepidSession, error) {
	sess, err := s.db.GetThreepidSession(ctx, sid, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up validation session: %w", err)
	}
	if !auth.EqualConstantTime(sess.ClientSecretHash, auth.HashToken(clientSecret)) {
		return nil, nil
	}
	return sess, nil
}

// ValidatedSession implements account.ThreepidSessions.
func (s *Service) ValidatedSession(ctx context.Context, sid, clientSecret, purpose string) (storage.Threepid, error) {
	sess, err := s.session(ctx, sid, clientSecret, s.now().UnixMilli())
	if err != nil {
		return storage.Threepid{}, err
	}
	if sess == nil || sess.Purpose != purpose {
		return storage.Threepid{}, mxerr.New("M_THREEPID_AUTH_FAILED", "Unknown or expired validation session").WithStatus(403)
	}
	if sess.ValidatedTS == 0 {
		return storage.Threepid{}, mxerr.New("M_THREEPID_AUTH_FAILED", "The email address has not been validated yet: open the link in the email first").WithStatus(403)
	}
	return storage.Threepid{Medium: sess.Medium, Address: sess.Address, ValidatedTS: sess.ValidatedTS}, nil
}

// SessionUsed implements account.ThreepidSessions: a session proves an
// address for one operation.
func (s *Service) SessionUsed(ctx context.Context, sid string) {
	if err := s.db.DeleteThreepidSession(context.WithoutCancel(ctx), sid); err != nil {
		s.log.Warn("deleting used validation session", "sid", sid, "err", err)
	}
}

// List returns the user's 3PIDs.
func (s *Service) List(ctx context.Context, userID string) ([]storage.Threepid, error) {
	ts, err := s.db.UserThreepids(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list 3PIDs: %w", err)
	}
	return ts, nil
}

// Add associates the address validated by session sid with the user,
// after the account password has been confirmed.
func (s *Service) Add(ctx context.Context, userID, sid, clientSecret string, a *account.AuthDict) error {
	// Suspended accounts may not change their contact addresses: the spec
	// allows adding or changing one only where the server keeps a changelog
	// of them, which Axon does not (Delete refuses for the same reason).
	if err := suspension.Refuse(ctx, s.db, userID); err != nil {
		return err
	}
	if sid == "" {
		return mxerr.MissingParam("Missing sid")
	}
	if clientSecret == "" {
		return mxerr.MissingParam("Missing client_secret")
	}
	if err := checkClientSecret(clientSecret); err != nil {
		return err
	}
	// The session is checked before authentication, so that a client
	// whose user has not opened the link yet learns it without asking
	// for the password first (Element shows "verify your email" on
	// M_THREEPID_AUTH_FAILED).
	tp, err := s.ValidatedSession(ctx, sid, clientSecret, account.PurposeAdd)
	if err != nil {
		return err
	}
	if err := s.checkFree(ctx, tp); err != nil {
		return err
	}
	finish, err := s.accounts.ConfirmPassword(ctx, userID, "3pid_add", a)
	if err != nil {
		return err
	}
	tp.UserID, tp.AddedTS = userID, s.now().UnixMilli()
	err = s.db.AddThreepidFromSession(ctx, tp, sid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return mxerr.New("M_THREEPID_AUTH_FAILED", "The validation session was used meanwhile").WithStatus(403)
	case errors.Is(err, storage.ErrThreepidInUse):
		return mxerr.New("M_THREEPID_IN_USE", "This email address is already in use")
	case err != nil:
		return fmt.Errorf("add 3PID: %w", err)
	}
	finish()
	s.log.Info("3PID added", "user", userID, "medium", tp.Medium)
	return nil
}

func (s *Service) checkFree(ctx context.Context, tp storage.Threepid) error {
	_, err := s.db.ThreepidOwner(ctx, tp.Medium, tp.Address)
	if err == nil {
		return mxerr.New("M_THREEPID_IN_USE", "This email address is already in use")
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("look up 3PID owner: %w", err)
	}
	return nil
}

// unbindNoSupport is the id_server_unbind_result of a homeserver that
// binds nothing to identity servers and so knows of none to unbind from.
const unbindNoSupport = "no-support"

// Delete removes a 3PID from the user's account. Nothing was bound to an
// identity server, so the unbind result is always "no-support".
func (s *Service) Delete(ctx context.Context, userID, medium, address string) (string, error) {
	if err := suspension.Refuse(ctx, s.db, userID); err != nil {
		return "", err
	}
	medium, address, err := checkThreepid(medium, address)
	if err != nil {
		return "", err
	}
	err = s.db.DeleteThreepid(ctx, userID, medium, address)
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.New("M_THREEPID_NOT_FOUND", "This third-party identifier is not on your account")
	}
	if err != nil {
		return "", fmt.Errorf("delete 3PID: %w", err)
	}
	s.log.Info("3PID deleted", "user", userID, "medium", medium)
	return unbindNoSupport, nil
}

// Unbind answers /account/3pid/unbind: the server talks to no identity
// server, so it cannot unbind anything.
func (s *Service) Unbind(ctx context.Context, medium, address string) (string, error) {
	if _, _, err := checkThreepid(medium, address); err != nil {
		return "", err
	}
	return unbindNoSupport, nil
}

// BindRequest is the body of /account/3pid/bind (and the three_pid_creds
// of the deprecated POST /account/3pid).
type BindRequest struct {
	ClientSecret, IDServer, IDAccessToken, SID string
	// Legacy (POST /account/3pid) treats id_access_token as optional, as
	// the spec allows for r0.5-era clients.
	Legacy bool
}

// Bind answers /account/3pid/bind: binding means asking an identity server
// to publish the association, and this server trusts no identity server.
func (s *Service) Bind(ctx context.Context, req BindRequest) error {
	switch {
	case req.SID == "":
		return mxerr.MissingParam("Missing sid")
	case req.ClientSecret == "":
		return mxerr.MissingParam("Missing client_secret")
	case req.IDServer == "":
		return mxerr.MissingParam("Missing id_server")
	case req.IDAccessToken == "" && !req.Legacy:
		return mxerr.MissingParam("Missing id_access_token")
	}
	if err := checkClientSecret(req.ClientSecret); err != nil {
		return err
	}
	return mxerr.New("M_SERVER_NOT_TRUSTED", "This homeserver does not bind third-party identifiers to identity servers; "+
		"email addresses are added with /account/3pid/add")
}

// InviteRequest is the third-party form of /rooms/{roomId}/invite: an
// invitation to whoever an identity server says owns an address.
type InviteRequest struct {
	IDServer, IDAccessToken, Medium, Address string
}

// Invite answers a third-party invite. Such an invite is an
// m.room.third_party_invite event signed with the identity server's keys
// after it stored the invitation, and this server trusts no identity server.
// Resolving the address against local accounts instead would tell the
// inviter which account owns an address its owner added for recovery, not
// to be found by.
func (s *Service) Invite(ctx context.Context, req InviteRequest) error {
	switch {
	case req.IDServer == "":
		return mxerr.MissingParam("Missing id_server")
	case req.IDAccessToken == "":
		return mxerr.MissingParam("Missing id_access_token")
	}
	if _, _, err := checkThreepid(req.Medium, req.Address); err != nil {
		return err
	}
	return mxerr.New("M_SERVER_NOT_TRUSTED", "This homeserver does not use identity servers, so it cannot invite by "+
		"email address or phone number; invite by Matrix user ID")
}

func checkThreepid(medium, address string) (string, string, error) {
	if medium == "" {
		return "", "", mxerr.MissingParam("Missing medium")
	}
	if address == "" {
		return "", "", mxerr.MissingParam("Missing address")
	}
	switch medium {
	case MediumEmail:
		return medium, account.CanonicalEmail(address), nil
	case MediumMSISDN:
		return medium, address, nil
	}
	return "", "", mxerr.InvalidParam("medium must be email or msisdn")
}

// checkClientSecret applies the spec's grammar: [0-9a-zA-Z.=_-], 1 to
// 255 characters.
func checkClientSecret(secret string) error {
	if secret == "" {
		return mxerr.MissingParam("Missing client_secret")
	}
	if len(secret) > 255 {
		return mxerr.InvalidParam("client_secret may not be longer than 255 characters")
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '=' || c == '_' || c == '-') {
			return mxerr.InvalidParam("client_secret may only contain 0-9, a-z, A-Z, '.', '=', '_' and '-'")
		}
	}
	return nil
}

// checkNextLink accepts an absolute http(s) URL: the page redirects the
// browser there after validation.
func checkNextLink(link string) error {
	if link == "" {
		return nil
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(link) > maxNextLinkLen {
		return mxerr.InvalidParam("next_link must be an absolute http:// or https:// URL")
	}
	return nil
}

// newToken makes the secret of one message: 16 characters of base32
// (80 bits), short enough to type when a client asks for a code and far
// too many to guess.
func newToken() string { return rand.Text()[:16] }

// normaliseToken undoes the grouping and case of a typed code.
func normaliseToken(t string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(t))
}

// formatToken groups a code in fours for reading.
func formatToken(t string) string {
	var b strings.Builder
	for i := 0; i < len(t); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(t[i:min(i+4, len(t))])
	}
	return b.String()
}
