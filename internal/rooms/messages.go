package rooms

import (
	"context"
	"slices"
	"sort"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// MessagesRequest is a page request of a room's history (/messages).
// Positions are stream positions: a page going backwards from p holds
// events at or below p, one going forwards events above p.
type MessagesRequest struct {
	RoomID   string
	User     string
	From     *int64 // nil: the newest event backwards, the oldest forwards
	To       int64  // 0: no bound
	Backward bool
	Limit    int
	Filter   *filter.RoomEventFilter
}

// MessagesPage is one page of history, already filtered for the user.
type MessagesPage struct {
	Events     []*Event
	Start, End int64
	HasEnd     bool
	// Members are the member events of the page's senders when the filter
	// asks for lazy-loaded members, else nil.
	Members []*Event
}

const maxStreamPos = int64(1) << 62

// Messages returns a page of a room's history as the user may see it.
func (s *Service) Messages(ctx context.Context, req MessagesRequest) (*MessagesPage, error) {
	if err := s.MayPaginate(ctx, req.RoomID, req.User); err != nil {
		// The spec's only refusal here is 403: an unknown room gets the
		// answer of a room the user is not in, so that /messages does not
		// tell which room IDs exist.
		if e, ok := mxerr.As(err); ok && e.Code == "M_NOT_FOUND" {
			return nil, mxerr.Forbidden("You are not in this room")
		}
		return nil, err
	}
	limit := req.Limit
	if req.Filter != nil && req.Filter.Limit != nil && *req.Filter.Limit < limit {
		limit = *req.Filter.Limit
	}
	from := int64(0)
	if req.From != nil {
		from = *req.From
	} else if req.Backward {
		from = s.db.Position()
	}
	var rows []*storage.Event
	var err error
	if req.Backward {
		rows, err = s.db.RoomEventsBackward(ctx, req.RoomID, from+1, req.To, limit)
	} else {
		upper := maxStreamPos
		if req.To != 0 {
			upper = req.To + 1
		}
		rows, err = s.db.RoomEventsForward(ctx, req.RoomID, from, upper, limit)
	}
	if err != nil {
		return nil, err
	}
	page := &MessagesPage{Start: from}
	if len(rows) == limit && limit > 0 {
		page.HasEnd = true
		page.End = rows[len(rows)-1].StreamPos
		if req.Backward {
			page.End--
		}
	}
	evs, err := s.Wrap(ctx, rows)
	if err != nil {
		return nil, err
	}
	ignored, err := s.IgnoredUsers(ctx, req.User)
	if err != nil {
		return nil, err
	}
	kept := evs[:0:0]
	for _, ev := range evs {
		if req.Filter.AllowsEvent(req.RoomID, ev.Type, ev.Sender, ev.PDU.Content) && !HiddenByIgnore(ev, ignored) {
			kept = append(kept, ev)
		}
	}
	if page.Events, err = s.FilterVisible(ctx, req.User, kept); err != nil {
		return nil, err
	}
	if req.Filter != nil && req.Filter.LazyLoadMembers && len(page.Events) > 0 {
		if page.Members, err = s.senderMembers(ctx, page.Events); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// senderMembers returns the member events of the senders of evs as of the
// newest of them: the page's own point in the room, which the user may
// see, not the current state (which may be after they left).
func (s *Service) senderMembers(ctx context.Context, evs []*Event) ([]*Event, error) {
	newest := evs[0]
	for _, ev := range evs {
		if ev.StreamPos > newest.StreamPos {
			newest = ev
		}
	}
	state, err := s.StateAt(ctx, newest.StateAfter)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, ev := range evs {
		if seen[ev.Sender] {
			continue
		}
		seen[ev.Sender] = true
		if id, ok := state[storage.StateKey{Type: "m.room.member", StateKey: ev.Sender}]; ok {
			ids = append(ids, id)
		}
	}
	return s.Events(ctx, ids)
}

// VisibleEvent loads an event of a room that user may see; anything else
// (unknown, another room's, hidden by history visibility) is M_NOT_FOUND.
func (s *Service) VisibleEvent(ctx context.Context, roomID, eventID, user string) (*Event, error) {
	ev, err := s.Event(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if ev.RoomID != roomID {
		return nil, mxerr.NotFound("Event not found")
	}
	ok, err := s.CanSee(ctx, user, ev)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mxerr.NotFound("Event not found")
	}
	return ev, nil
}

// EventContext is an event with the events around it (/context).
type EventContext struct {
	Event         *Event
	Before, After []*Event // before: newest first; after: oldest first
	Start, End    int64    // pagination positions outward from the window
	State         []*Event // room state at the last event of the window
}

// Context returns up to limit events around an event the user may see.
// Events of users the user ignores are left out of the window, and the
// event itself, when it is one of theirs, is not found. The filter (nil
// for none) thins the events around the event, not the event itself.
func (s *Service) Context(ctx context.Context, roomID, eventID, user string, limit int, f *filter.RoomEventFilter) (*EventContext, error) {
	if f != nil && f.Limit != nil && *f.Limit < limit {
		limit = *f.Limit
	}
	ev, err := s.VisibleEvent(ctx, roomID, eventID, user)
	if err != nil {
		return nil, err
	}
	if shown, err := s.WithoutIgnored(ctx, user, []*Event{ev}); err != nil {
		return nil, err
	} else if len(shown) == 0 {
		return nil, mxerr.NotFound("Event not found")
	}
	before := limit / 2
	bRows, err := s.db.RoomEventsBackward(ctx, roomID, ev.StreamPos, 0, before)
	if err != nil {
		return nil, err
	}
	aRows, err := s.db.RoomEventsForward(ctx, roomID, ev.StreamPos, maxStreamPos, limit-before)
	if err != nil {
		return nil, err
	}
	c := &EventContext{Event: ev, Start: ev.StreamPos - 1, End: ev.StreamPos}
	if len(bRows) > 0 {
		c.Start = bRows[len(bRows)-1].StreamPos - 1
	}
	if len(aRows) > 0 {
		c.End = aRows[len(aRows)-1].StreamPos
	}
	for _, part := range []struct {
		rows []*storage.Event
		into *[]*Event
	}{{bRows, &c.Before}, {aRows, &c.After}} {
		evs, err := s.Wrap(ctx, part.rows)
		if err != nil {
			return nil, err
		}
		if *part.into, err = s.FilterShown(ctx, user, evs); err != nil {
			return nil, err
		}
		*part.into = slices.DeleteFunc(*part.into, func(e *Event) bool {
			return !f.AllowsEvent(roomID, e.Type, e.Sender, e.PDU.Content)
		})
	}
	// The state is the room's at the last event of the window the user
	// may see, never at one hidden from them (after they left, say).
	lastGroup := ev.StateAfter
	if len(c.After) > 0 {
		lastGroup = c.After[len(c.After)-1].StateAfter
	}
	if c.State, err = s.StateEventsAt(ctx, lastGroup, nil); err != nil {
		return nil, err
	}
	sort.Slice(c.State, func(i, j int) bool { return c.State[i].StreamPos < c.State[j].StreamPos })
	return c, nil
}
