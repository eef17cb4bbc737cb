package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Purposes of a 3PID validation session: what /requestToken endpoint
// started it, and so what its proof of an address may be used for.
const (
	PurposeRegister = "register" // /register/email/requestToken
	PurposeAdd      = "add"      // /account/3pid/email/requestToken
	PurposePassword = "password" // /account/password/email/requestToken
)

// ThreepidSessions checks the homeserver's own 3PID validation sessions
// for the m.login.email.identity stage. *threepid.Service implements it;
// the interface keeps this package free of mail sending.
type ThreepidSessions interface {
	// ValidatedSession returns the 3PID that session sid (started for
	// purpose) proved, or a Matrix error if the credentials are wrong or
	// the address was not validated (yet).
	ValidatedSession(ctx context.Context, sid, clientSecret, purpose string) (storage.Threepid, error)
	// SessionUsed spends a session after the operation it authorised.
	SessionUsed(ctx context.Context, sid string)
}

// CanonicalEmail is the form email addresses are stored and looked up in:
// trimmed and lower-cased (as Synapse does), so that Alice@Example.org and
// alice@example.org are one address with one owner.
func CanonicalEmail(address string) string {
	return strings.ToLower(strings.TrimSpace(address))
}

// emailAuth reports whether the m.login.email.identity stage can be
// offered: email is configured and the validation service is wired.
func (s *Service) emailAuth() bool {
	return s.cfg.Email.Enabled() && s.Threepids != nil
}

// verifyEmailStage completes m.login.email.identity with a session started
// for purpose. For a password reset it identifies the account; for a
// registration the address must still be free.
func (s *Service) verifyEmailStage(ctx context.Context, a *AuthDict, purpose string, sess *uiaSession) error {
	creds := a.threepidCreds()
	if creds == nil || creds.SID == "" || creds.ClientSecret == "" {
		return mxerr.MissingParam("Missing threepid_creds with sid and client_secret")
	}
	// id_server is ignored: the homeserver validated the address itself.
	tp, err := s.Threepids.ValidatedSession(ctx, creds.SID, creds.ClientSecret, purpose)
	if err != nil {
		return err
	}
	owner, err := s.db.ThreepidOwner(ctx, tp.Medium, tp.Address)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("look up 3PID owner: %w", err)
	}
	switch purpose {
	case PurposeRegister:
		if owner != "" {
			return mxerr.New("M_THREEPID_IN_USE", "This email address is already in use")
		}
	case PurposePassword:
		if owner == "" {
			return mxerr.New("M_THREEPID_NOT_FOUND", "No account has this email address")
		}
		if sess.user != "" && sess.user != owner {
			return mxerr.Forbidden("The email address does not belong to the account making the request")
		}
		sess.user = owner
	}
	sess.threepid = &tp
	sess.threepidSID = creds.SID
	return nil
}

// threepidSessionUsed spends the validation session behind a completed
// email stage.
func (s *Service) threepidSessionUsed(ctx context.Context, sess uiaSession) {
	if sess.threepidSID != "" && s.Threepids != nil {
		s.Threepids.SessionUsed(ctx, sess.threepidSID)
	}
}
