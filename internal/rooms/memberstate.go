package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Membership reaches a room two ways: through the membership endpoints
// (join, invite, knock, leave, kick, ban, unban), which build their event
// with sendMember, and as a raw m.room.member state event (PUT
// /rooms/{room}/state/m.room.member/{user}, an application service, a
// profile change). The authorisation rules cannot tell the two apart, and
// some of the endpoints' checks are not in them: the restricted-join
// condition (the rules only check the authoriser's signature, which this
// server puts on every event it builds), guest access, and who may be
// invited. checkMemberState gives every member event that did not come
// from sendMember those same checks, so there is one rule whatever path a
// client takes.

// checkMemberState applies the membership endpoints' checks to a member
// event sent as raw state, and sets join_authorised_via_users_server as
// the join endpoint would: it is the server's to choose, never the client's.
func (s *Service) checkMemberState(ctx context.Context, req *SendRequest) error {
	var content map[string]json.RawMessage
	if err := json.Unmarshal(req.Content, &content); err != nil || content == nil {
		return nil // not an object: the content checks refuse it with the right error
	}
	var membership string
	_ = json.Unmarshal(content["membership"], &membership) // a wrong type is refused by the content checks
	target, sender := *req.StateKey, req.Sender
	guest, err := s.isGuest(ctx, sender)
	if err != nil {
		return err
	}
	cur, err := s.Membership(ctx, req.RoomID, target)
	if err != nil {
		return err
	}
	_, clientVia := content["join_authorised_via_users_server"]
	delete(content, "join_authorised_via_users_server")
	var via string
	switch membership {
	case "join":
		if sender != target || cur == "join" {
			break // another user's join is refused by the rules; join to join is a profile change
		}
		if guest {
			if err := s.checkGuestCanJoin(ctx, req.RoomID); err != nil {
				return err
			}
		}
		if cur != "invite" {
			if via, err = s.restrictedAuthoriser(ctx, req.RoomID, target); err != nil {
				return err
			}
		}
	case "invite":
		if guest {
			return errGuestMembership
		}
		if err := s.checkInviteTarget(ctx, target); err != nil {
			return err
		}
	case "leave":
		if guest && target != sender {
			return errGuestMembership
		}
		if target == sender {
			if err := s.checkNoticeInviteRejection(ctx, req.RoomID, target, cur); err != nil {
				return err
			}
		}
	default:
		// Guests may only join and leave (the spec's guest access module
		// lists no knock, ban or other membership endpoint for them).
		if guest {
			return errGuestMembership
		}
	}
	if !clientVia && via == "" {
		return nil
	}
	if via != "" {
		b, _ := json.Marshal(via)
		content["join_authorised_via_users_server"] = b
	}
	b, err := json.Marshal(content)
	if err != nil {
		return mxerr.BadJSON("Content is not valid JSON: %v", err)
	}
	req.Content = b
	return nil
}

var errGuestMembership = mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guests may only join and leave rooms")

// isGuest says whether user is a local guest account.
func (s *Service) isGuest(ctx context.Context, user string) (bool, error) {
	u, err := s.db.GetUser(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.IsGuest, nil
}
