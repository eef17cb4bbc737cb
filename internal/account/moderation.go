package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Account moderation (spec: "Account moderation"; admin API of v1.18).
// A locked account can do nothing but log out: every other request gets
// M_USER_LOCKED, a soft logout, from the HTTP edge. A suspended account
// keeps reading (sync, history, keys, receipts) but may not act: the room
// service refuses its events except leaving and redacting its own, and
// this service and the media service refuse profile changes and uploads.
// Both take effect on the next request: authentication reads the flags
// from the database every time.

// Restriction is what an administrator can put on an account.
type Restriction string

// The restrictions.
const (
	Lock    Restriction = "lock"
	Suspend Restriction = "suspend"
)

// Restricted answers GET /admin/lock|suspend/{userId}: whether a local
// account has the restriction. Only server admins may ask.
func (s *Service) Restricted(ctx context.Context, caller string, callerIsAdmin bool, target string, what Restriction) (bool, error) {
	u, err := s.moderationTarget(ctx, caller, callerIsAdmin, target)
	if err != nil {
		return false, err
	}
	return flagOf(u, what), nil
}

// SetRestricted answers PUT /admin/lock|suspend/{userId}. Admins may not
// restrict themselves or other admins (an admin can lock out every other
// admin otherwise); the command line can.
func (s *Service) SetRestricted(ctx context.Context, caller string, callerIsAdmin bool, target string, what Restriction, on bool) error {
	u, err := s.moderationTarget(ctx, caller, callerIsAdmin, target)
	if err != nil {
		return err
	}
	if u.UserID == caller {
		return mxerr.Forbidden("You may not %s your own account", what)
	}
	if err := s.setRestricted(ctx, u.UserID, what, on); err != nil {
		return err
	}
	s.log.Info("account restriction changed", "user", u.UserID, "restriction", string(what), "on", on, "by", caller)
	return nil
}

// OperatorSetRestricted sets a restriction for `axon user lock|suspend`:
// the operator has the database, so no admin checks apply.
func (s *Service) OperatorSetRestricted(ctx context.Context, userID string, what Restriction, on bool) error {
	u, err := s.db.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("No such user %s", userID)
	}
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	if u.Deactivated {
		return mxerr.New("M_USER_DEACTIVATED", "%s is deactivated", userID)
	}
	if err := s.setRestricted(ctx, userID, what, on); err != nil {
		return err
	}
	s.log.Info("account restriction changed", "user", userID, "restriction", string(what), "on", on, "by", "command line")
	return nil
}

func (s *Service) setRestricted(ctx context.Context, userID string, what Restriction, on bool) error {
	var err error
	switch what {
	case Lock:
		err = s.db.SetUserLocked(ctx, userID, on)
	case Suspend:
		err = s.db.SetUserSuspended(ctx, userID, on)
	default:
		return fmt.Errorf("unknown restriction %q", what)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("User not found")
	}
	if err != nil {
		return fmt.Errorf("%s account: %w", what, err)
	}
	return nil
}

func flagOf(u *storage.User, what Restriction) bool {
	if what == Lock {
		return u.Locked
	}
	return u.Suspended
}

// moderationTarget checks the caller is an admin, before anything about
// the target is looked up (so that others cannot probe which accounts
// exist), then finds the active local account and refuses other admins.
func (s *Service) moderationTarget(ctx context.Context, caller string, callerIsAdmin bool, target string) (*storage.User, error) {
	if !callerIsAdmin {
		return nil, mxerr.Forbidden("Requesting user is not a server administrator")
	}
	if !strings.HasPrefix(target, "@") || !strings.Contains(target, ":") {
		return nil, mxerr.InvalidParam("%q is not a user ID", target)
	}
	if !s.IsLocal(target) {
		return nil, mxerr.InvalidParam("User does not belong to the local server")
	}
	u, err := s.db.GetUser(ctx, target)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return nil, mxerr.NotFound("User not found")
	}
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if u.IsAdmin && u.UserID != caller {
		return nil, mxerr.Forbidden("The target user is a server administrator")
	}
	return u, nil
}
