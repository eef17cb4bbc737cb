package rooms

import (
	"context"
	"sort"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// MembersRequest asks for a room's member events (GET /members).
type MembersRequest struct {
	RoomID, User string
	// At, if set, asks for the members as of that stream position.
	At *int64
	// Membership keeps only that membership; NotMembership drops one.
	Membership, NotMembership string
}

// Members returns the member events the user may see, oldest first.
func (s *Service) Members(ctx context.Context, req MembersRequest) ([]*Event, error) {
	for _, m := range []string{req.Membership, req.NotMembership} {
		switch m {
		case "", "join", "invite", "knock", "leave", "ban":
		default:
			return nil, mxerr.InvalidParam("Unknown membership %q", m)
		}
	}
	state, leftAt, err := s.ReadableState(ctx, req.RoomID, req.User)
	if err != nil {
		return nil, err
	}
	// A user who left may look back to before they left, never after:
	// positions past their leave answer with the state at the leave.
	if req.At != nil && (leftAt == 0 || *req.At < leftAt) {
		rows, err := s.db.RoomEventsBackward(ctx, req.RoomID, *req.At+1, 0, 1)
		if err != nil {
			return nil, err
		}
		// No event at or before the position: the room did not exist
		// yet (a fresh room's prev_batch), so it had no members.
		state = nil
		if len(rows) > 0 {
			if state, err = s.StateAt(ctx, rows[0].StateAfter); err != nil {
				return nil, err
			}
		}
	}
	evs, err := s.MemberEvents(ctx, state)
	if err != nil {
		return nil, err
	}
	out := evs[:0]
	for _, ev := range evs {
		m := membershipOf(ev)
		if (req.Membership != "" && m != req.Membership) || (req.NotMembership != "" && m == req.NotMembership) {
			continue
		}
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamPos < out[j].StreamPos })
	return out, nil
}

// JoinedRooms lists the rooms the user is joined to, sorted.
func (s *Service) JoinedRooms(ctx context.Context, user string) ([]string, error) {
	ms, err := s.UserMemberships(ctx, user)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range ms {
		if m.Membership == "join" {
			out = append(out, m.RoomID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Forget hides a room the user has left from their room lists for good.
// It is refused while they are still in it (joined, invited or knocking).
func (s *Service) Forget(ctx context.Context, roomID, user string) error {
	m, err := s.Membership(ctx, roomID, user)
	if err != nil {
		return err
	}
	if m == "join" || m == "invite" || m == "knock" {
		return mxerr.Unknown("You must leave the room before forgetting it").WithStatus(400)
	}
	return s.db.ForgetRoom(ctx, user, roomID)
}
