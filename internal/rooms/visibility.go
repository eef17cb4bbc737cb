package rooms

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// This file is the one rule of what a user may read of a room, which every
// read path (state, members, history, context, relations, threads, search,
// thread summaries, /initialSync, sliding sync) asks rather than deciding
// for itself. The spec's module (client-server-api/modules/history_visibility.md):
// after a user has left a room they may see what they could see before
// they left, and nothing received after; which events they could see is
// decided by history_visibility at each event. A user who never joined sees
// none of the room's state, and forgetting a room is as if one never
// joined it.

// Reach is how far one user may read into one room.
type Reach struct {
	// Membership is the user's current membership ("" for none).
	Membership string
	// Live: the user may read the room as it is now (joined, or the room
	// is world-readable).
	Live bool
	// Departure is the member event (leave, kick or ban) that ended the
	// user's last stay in the room, if they have ever been joined and have
	// not forgotten the room; nil otherwise.
	Departure *Event
	// JoinedUntil is the stream position before which the user was joined
	// at some later point: every position while they are joined now, up to
	// their departure after they left, 0 if they never joined (or forgot
	// the room). Shared history is open to a user who joined after it.
	JoinedUntil int64
	// Forgotten: the user left and forgot the room.
	Forgotten bool
}

// ReachOf returns how far user may read into roomID.
func (s *Service) ReachOf(ctx context.Context, roomID, user string) (*Reach, error) {
	me, err := s.CurrentStateEvent(ctx, roomID, "m.room.member", user)
	if err != nil {
		return nil, err
	}
	hv, err := s.CurrentStateEvent(ctx, roomID, "m.room.history_visibility", "")
	if err != nil {
		return nil, err
	}
	r := &Reach{}
	if me != nil {
		r.Membership = membershipOf(me)
	}
	r.Live = r.Membership == "join" || visibilityOf(hv) == "world_readable"
	if me == nil {
		return r, nil
	}
	if r.Membership == "leave" || r.Membership == "ban" {
		if r.Forgotten, err = s.db.RoomForgotten(ctx, user, roomID); err != nil {
			return nil, err
		}
		if r.Forgotten {
			return r, nil
		}
	}
	if r.Membership == "join" {
		r.JoinedUntil = maxStreamPos
		return r, nil
	}
	// Out of the room: walk the user's member events back to their latest
	// join; the event after it ended that stay.
	for child := me; child.Replaces != ""; {
		prev, err := s.Event(ctx, child.Replaces)
		if err != nil {
			return nil, err
		}
		if membershipOf(prev) == "join" {
			r.Departure, r.JoinedUntil = child, child.StreamPos
			break
		}
		child = prev
	}
	return r, nil
}

// JoinedSince returns where user's current stay in a room began (the join
// that started it; a run of joins, profile changes, is one stay), or 0
// when they are not joined.
func (s *Service) JoinedSince(ctx context.Context, roomID, user string) (int64, error) {
	ev, err := s.CurrentStateEvent(ctx, roomID, "m.room.member", user)
	if err != nil || ev == nil || membershipOf(ev) != "join" {
		return 0, err
	}
	for ev.Replaces != "" {
		prev, err := s.Event(ctx, ev.Replaces)
		if err != nil {
			return 0, err
		}
		if membershipOf(prev) != "join" {
			break
		}
		ev = prev
	}
	return ev.StreamPos, nil
}

// visibilityOf is the history visibility an m.room.history_visibility
// event sets (nil: none); unknown values count as shared.
func visibilityOf(ev *Event) string {
	if ev == nil {
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

// historyVisibility returns the history visibility in a state map.
func (s *Service) historyVisibility(ctx context.Context, state storage.StateMap) string {
	evID, ok := state[storage.StateKey{Type: "m.room.history_visibility"}]
	if !ok {
		return "shared"
	}
	ev, err := s.Event(ctx, evID)
	if err != nil {
		return "shared"
	}
	return visibilityOf(ev)
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

// seesUnder is the spec's rule for one event, given the history
// visibility and the user's membership in the state before it.
func (r *Reach) seesUnder(vis, at string, pos int64) bool {
	switch {
	case vis == "world_readable":
		return true
	case r.Forgotten:
		return false
	case at == "join":
		return true
	case vis == "shared" && pos < r.JoinedUntil:
		return true
	case vis == "invited" && at == "invite":
		return true
	}
	return false
}

// FilterVisible returns the events of one room that user may see under the
// room's history visibility rules, in the same order.
func (s *Service) FilterVisible(ctx context.Context, user string, evs []*Event) ([]*Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	r, err := s.ReachOf(ctx, evs[0].RoomID, user)
	if err != nil {
		return nil, err
	}
	out := evs[:0:0]
	for _, ev := range evs {
		ok, err := s.visible(ctx, user, r, ev)
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
	r, err := s.ReachOf(ctx, ev.RoomID, user)
	if err != nil {
		return false, err
	}
	return s.visible(ctx, user, r, ev)
}

func (s *Service) visible(ctx context.Context, user string, r *Reach, ev *Event) (bool, error) {
	// The user's own membership changes are theirs to see.
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == user {
		return true, nil
	}
	before, err := s.StateAt(ctx, ev.StateBefore)
	if err != nil {
		return false, err
	}
	return r.seesUnder(s.historyVisibility(ctx, before), s.membershipIn(ctx, before, user), ev.StreamPos), nil
}

// CanReadRoom reports whether user may read the room's current state and
// recent history: joined members, and anyone for world-readable rooms.
func (s *Service) CanReadRoom(ctx context.Context, roomID, user string) (bool, error) {
	r, err := s.ReachOf(ctx, roomID, user)
	if err != nil {
		return false, err
	}
	return r.Live, nil
}

// ReadableState returns the room state the user may see: the current
// state while they may read the room (member, or history open to them),
// else the state just after the leave, kick or ban that ended their last
// stay (so it shows their departure). Anyone else, who never joined the
// room or forgot it, is M_FORBIDDEN. leftAt is the stream position of that
// departure (0 when the current state was returned), so callers can keep
// later reads to it.
func (s *Service) ReadableState(ctx context.Context, roomID, user string) (state storage.StateMap, leftAt int64, err error) {
	r, err := s.ReachOf(ctx, roomID, user)
	if err != nil {
		return nil, 0, err
	}
	if r.Live {
		state, err = s.CurrentState(ctx, roomID)
		return state, 0, err
	}
	if r.Departure != nil && (r.Membership == "leave" || r.Membership == "ban") {
		state, err = s.StateAt(ctx, r.Departure.StateAfter)
		return state, r.Departure.StreamPos, err
	}
	return nil, 0, mxerr.Forbidden("You are not allowed to see this room's state")
}

// MayPaginate checks that the user has or had access to the room at all;
// per-event visibility is applied to the results of history requests. A
// forgotten room is refused as if the user had never been in it.
func (s *Service) MayPaginate(ctx context.Context, roomID, user string) error {
	r, err := s.ReachOf(ctx, roomID, user)
	if err != nil {
		return err
	}
	if r.Live || (r.Membership != "" && !r.Forgotten) {
		return nil
	}
	return mxerr.Forbidden("You are not in this room")
}

// VisibleRanges returns the stream ranges (From, To] of a room's events that
// user may see, by the rule visible applies to each event, for counting
// without reading every event (search counts). It reads the user's member
// events and the history visibility changes, not the room's history; what
// is returned to clients is still checked event by event.
func (s *Service) VisibleRanges(ctx context.Context, roomID, user string) ([]storage.PosRange, error) {
	r, err := s.ReachOf(ctx, roomID, user)
	if err != nil {
		return nil, err
	}
	var changes []*Event
	for _, start := range []struct{ typ, key string }{{"m.room.member", user}, {"m.room.history_visibility", ""}} {
		ev, err := s.CurrentStateEvent(ctx, roomID, start.typ, start.key)
		if err != nil {
			return nil, err
		}
		for ev != nil {
			changes = append(changes, ev)
			if ev.Replaces == "" {
				break
			}
			if ev, err = s.Event(ctx, ev.Replaces); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].StreamPos < changes[j].StreamPos })
	var out []storage.PosRange
	add := func(from, to int64) {
		if to <= from {
			return
		}
		if n := len(out); n > 0 && out[n-1].To == from {
			out[n-1].To = to
			return
		}
		out = append(out, storage.PosRange{From: from, To: to})
	}
	// Each piece (from, to] has one membership and one visibility: those
	// set by the changes at or before from.
	vis, at, from := "shared", "", int64(0)
	piece := func(to int64) {
		switch {
		case r.seesUnder(vis, at, to):
			add(from, to)
		case !r.Forgotten && vis == "shared" && from+1 < r.JoinedUntil:
			add(from, min(to, r.JoinedUntil-1))
		}
	}
	for _, ev := range changes {
		piece(ev.StreamPos)
		if ev.Type == "m.room.member" {
			at = membershipOf(ev)
		} else {
			vis = visibilityOf(ev)
		}
		from = ev.StreamPos
	}
	piece(maxStreamPos)
	return out, nil
}
