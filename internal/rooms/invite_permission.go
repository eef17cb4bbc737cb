package rooms

import (
	"context"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// InvitePermissionType is the global account data entry in which a user
// blocks every invite (spec v1.18, modules/invite_permission.md).
const InvitePermissionType = "m.invite_permission_config"

// InvitesBlocked reports whether user has blocked all invites: their
// m.invite_permission_config has default_action "block". Any other or
// missing value lets invites through, as the spec says. Invites are rare,
// so this reads storage each time instead of caching.
func (s *Service) InvitesBlocked(ctx context.Context, user string) (bool, error) {
	raw, err := s.db.GetAccountData(ctx, user, "", InvitePermissionType)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("invite permission: %w", err)
	}
	return gjson.GetBytes(raw, "default_action").Str == "block", nil
}

// ErrInviteBlocked is the error for an invite to a user who blocks them.
func ErrInviteBlocked(target string) error {
	return mxerr.New("M_INVITE_BLOCKED", "%s does not accept invites", target).WithStatus(403)
}

// checkInvitePermission refuses an invite event to a local user who
// blocks invites. Every invite a client asks for (POST /invite, PUT
// /state/m.room.member) passes through Send and so through here.
func (s *Service) checkInvitePermission(ctx context.Context, req SendRequest) error {
	if req.Type != "m.room.member" || req.StateKey == nil || *req.StateKey == req.Sender ||
		gjson.GetBytes(req.Content, "membership").Str != "invite" || id.UserID(*req.StateKey).Homeserver() != s.serverName {
		return nil
	}
	blocked, err := s.InvitesBlocked(ctx, *req.StateKey)
	if err != nil {
		return err
	}
	if blocked {
		return ErrInviteBlocked(*req.StateKey)
	}
	return nil
}
