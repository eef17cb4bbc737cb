package rooms

import (
	"context"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// checkNoticeInviteRejection refuses a user's rejection of the invite to
// their server notices room: the spec requires
// M_CANNOT_LEAVE_SERVER_NOTICE_ROOM there (clients must not expect to be
// able to), while leaving once joined stays allowed. cur is the user's
// membership before the change.
func (s *Service) checkNoticeInviteRejection(ctx context.Context, roomID, user, cur string) error {
	if cur != "invite" {
		return nil
	}
	owner, err := s.db.ServerNoticeRoomOwner(ctx, roomID)
	if err != nil {
		return err
	}
	if owner != user {
		return nil
	}
	// A deactivated account leaves every room, this one included.
	if u, err := s.db.GetUser(ctx, user); err == nil && u.Deactivated {
		return nil
	}
	return mxerr.New("M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", "You cannot reject this invite: join the room, and leave it then if you wish").WithStatus(403)
}
