package rooms

import (
	"context"
	"encoding/json"

	"github.com/axon-matrix/axon/internal/storage"
)

// HistoryVisibility returns the history visibility in a state map.
func (s *Service) historyVisibility(ctx context.Context, state storage.StateMap) string {
	evID, ok := state[storage.StateKey{Type: "m.room.history_visibility"}]
	if !ok {
		return "shared"
	}
	ev, err := s.Event(ctx, evID)
	if err != nil {
		return "shared"
	}
	var c struct {
		HistoryVisibility string `json:"history_visibility"`
	}
	json.Unmarshal(ev.PDU.Content, &c)
	switch c.HistoryVisibility {
	case "world_readable", "shared", "invited", "joined":
		return c.HistoryVisibility
	}
	return "shared"
}

func (s *Service) membershipIn(ctx context.Context, state storage.StateMap, user string) string {
	evID, ok := state[storage.StateKey{Type: "m.room.member", StateKey: user}]
	if !ok {
		return ""
	}
	ev, err := s.Event(ctx, evID)
	if err != nil {
		return ""
	}
	return membershipOf(ev)
}

// MembershipBefore returns user's membership in the state the event was
// sent in ("" if never a member): whether they were in the room when it
// arrived, whatever member events (a display-name change, a leave and a
// rejoin) came after.
func (s *Service) MembershipBefore(ctx context.Context, ev *Event, user string) (string, error) {
	before, err := s.StateAt(ctx, ev.StateBefore)
	if err != nil {
		return "", err
	}
	return s.membershipIn(ctx, before, user), nil
}

// FilterVisible returns the events of one room that user may see under the
// room's history visibility rules, in the same order.
func (s *Service) FilterVisible(ctx context.Context, user string, evs []*Event) ([]*Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	roomID := evs[0].RoomID
	current, err := s.Membership(ctx, roomID, user)
	if err != nil {
		return nil, err
	}
	out := evs[:0:0]
	for _, ev := range evs {
		ok, err := s.visible(ctx, user, current, ev)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// CanSee reports whether user may see one event.
func (s *Service) CanSee(ctx context.Context, user string, ev *Event) (bool, error) {
	current, err := s.Membership(ctx, ev.RoomID, user)
	if err != nil {
		return false, err
	}
	return s.visible(ctx, user, current, ev)
}

func (s *Service) visible(ctx context.Context, user, current string, ev *Event) (bool, error) {
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == user {
		return true, nil
	}
	before, err := s.StateAt(ctx, ev.StateBefore)
	if err != nil {
		return false, err
	}
	vis := s.historyVisibility(ctx, before)
	if vis == "world_readable" {
		return true, nil
	}
	at := s.membershipIn(ctx, before, user)
	switch {
	case at == "join":
		return true, nil
	case vis == "shared" && current == "join":
		return true, nil
	case vis == "invited" && at == "invite":
		return true, nil
	}
	return false, nil
}

// CanReadRoom reports whether user may read the room's current state and
// recent history: joined members, and anyone for world-readable rooms.
func (s *Service) CanReadRoom(ctx context.Context, roomID, user string) (bool, error) {
	state, err := s.CurrentState(ctx, roomID)
	if err != nil {
		return false, err
	}
	if s.membershipIn(ctx, state, user) == "join" {
		return true, nil
	}
	return s.historyVisibility(ctx, state) == "world_readable", nil
}
