package sync

// The spec's older ways to follow rooms, still used for room previews
// (peeking into world-readable rooms without joining) and by old clients:
// GET /events (the event stream, or one room's with room_id),
// GET /events/{eventId}, GET /initialSync and GET /rooms/{roomId}/initialSync.
// They are built from the same parts as /sync: the room service's history
// and visibility rules, the notifier's wake-ups, and the /sync builder's
// account data and presence sections.

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// maxStreamEvents bounds the events of one /events response; the rest come
// with the next request from its end token.
const maxStreamEvents = 100

// EventsRequest is GET /events: the user's event stream, or with RoomID a
// peek at one room the user may read (a world-readable one, or one they
// are in).
type EventsRequest struct {
	UserID, DeviceID string
	RoomID           string
	From             string // "" streams from now
	Timeout          time.Duration
}

// EventsPage is an /events response.
type EventsPage struct {
	Start string              `json:"start"`
	End   string              `json:"end"`
	Chunk []rooms.ClientEvent `json:"chunk"`
}

// Events answers GET /events, waiting up to req.Timeout for an event when
// there is none yet.
func (s *Service) Events(ctx context.Context, req EventsRequest) (*EventsPage, error) {
	from := s.Current()
	if req.From != "" {
		var err error
		if from, err = ParseToken(req.From); err != nil {
			return nil, err
		}
	}
	if req.RoomID != "" {
		if err := s.mayPeek(ctx, req.RoomID, req.UserID); err != nil {
			return nil, err
		}
	}
	viewer := rooms.Viewer{UserID: req.UserID, DeviceID: req.DeviceID}
	deadline := time.Now().Add(req.Timeout)
	var timer *time.Timer
	for {
		var wake <-chan struct{}
		if req.RoomID != "" {
			wake = s.Notifier.ListenRoom(req.RoomID)
		} else {
			wake = s.Notifier.Listen(req.UserID)
		}
		to := s.db.Position()
		evs, end, err := s.streamEvents(ctx, req, from.Pos, to)
		if err != nil {
			return nil, err
		}
		remaining := time.Until(deadline)
		if len(evs) > 0 || remaining <= 0 {
			next := from
			next.Pos = end
			return &EventsPage{Start: from.String(), End: next.String(), Chunk: s.rooms.FormatAll(ctx, evs, viewer, rooms.FormatOpts{})}, nil
		}
		// Nothing visible happened up to "to": later waits start there.
		from.Pos = to
		if timer == nil {
			timer = time.NewTimer(remaining)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// mayPeek checks that user may follow a room's events: members, and anyone
// while the room is world-readable. Others get M_FORBIDDEN, unknown rooms
// included, so that peeks do not reveal which private rooms exist.
func (s *Service) mayPeek(ctx context.Context, roomID, user string) error {
	ok, err := s.rooms.CanReadRoom(ctx, roomID, user)
	if err != nil {
		if e, isMx := mxerr.As(err); isMx && e.Code == "M_NOT_FOUND" {
			return mxerr.Forbidden("You may not peek into this room")
		}
		return err
	}
	if !ok {
		return mxerr.Forbidden("You may not peek into this room")
	}
	return nil
}

// streamEvents returns the events in (from, to] the request may see, oldest
// first, and the position the next request continues from.
func (s *Service) streamEvents(ctx context.Context, req EventsRequest, from, to int64) ([]*rooms.Event, int64, error) {
	roomIDs := []string{req.RoomID}
	if req.RoomID == "" {
		ms, err := s.rooms.UserMemberships(ctx, req.UserID)
		if err != nil {
			return nil, 0, err
		}
		roomIDs = roomIDs[:0]
		for _, m := range ms {
			// Joined rooms, and rooms whose membership changed in the
			// window (an invite, a leave): visibility decides the rest.
			if m.Membership == "join" || m.StreamPos > from {
				roomIDs = append(roomIDs, m.RoomID)
			}
		}
	}
	var rows []*storage.Event
	for _, roomID := range roomIDs {
		rs, err := s.db.RoomEventsForward(ctx, roomID, from, to+1, maxStreamEvents+1)
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, rs...)
	}
	slices.SortFunc(rows, func(a, b *storage.Event) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	end := to
	if len(rows) > maxStreamEvents {
		rows = rows[:maxStreamEvents]
		end = rows[len(rows)-1].StreamPos
	}
	evs, err := s.rooms.Wrap(ctx, rows)
	if err != nil {
		return nil, 0, err
	}
	ignored, err := s.rooms.IgnoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, 0, err
	}
	byRoom := map[string][]*rooms.Event{}
	for _, ev := range evs {
		if !rooms.HiddenByIgnore(ev, ignored) {
			byRoom[ev.RoomID] = append(byRoom[ev.RoomID], ev)
		}
	}
	out := evs[:0:0]
	for _, roomEvs := range byRoom {
		visible, err := s.rooms.FilterVisible(ctx, req.UserID, roomEvs)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, visible...)
	}
	slices.SortFunc(out, func(a, b *rooms.Event) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	return out, end, nil
}

// Event answers GET /events/{eventId}: an event of any room, if user may
// see it; anything else is M_NOT_FOUND.
func (s *Service) Event(ctx context.Context, eventID, user, device string) (*rooms.ClientEvent, error) {
	ev, err := s.rooms.Event(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if ev, err = s.rooms.VisibleEvent(ctx, ev.RoomID, eventID, user); err != nil {
		return nil, err
	}
	ce := s.rooms.Format(ctx, ev, rooms.Viewer{UserID: user, DeviceID: device}, rooms.FormatOpts{})
	return &ce, nil
}

// PaginationChunk is a room's recent messages with /messages tokens.
type PaginationChunk struct {
	Start string              `json:"start,omitempty"`
	End   string              `json:"end"`
	Chunk []rooms.ClientEvent `json:"chunk"`
}

// RoomSnapshot is one room of /initialSync, or /rooms/{roomId}/initialSync.
type RoomSnapshot struct {
	RoomID      string              `json:"room_id"`
	Membership  string              `json:"membership,omitempty"`
	Invite      *rooms.ClientEvent  `json:"invite,omitempty"`
	Messages    *PaginationChunk    `json:"messages,omitempty"`
	State       []rooms.ClientEvent `json:"state,omitempty"`
	Visibility  string              `json:"visibility,omitempty"`
	AccountData []any               `json:"account_data,omitempty"`
}

// RoomInitialSyncResponse is the body of GET /rooms/{roomId}/initialSync:
// a room snapshot with the presence of the room's members.
type RoomInitialSyncResponse struct {
	RoomSnapshot
	Presence []any `json:"presence"`
}

// InitialSyncResponse is the body of GET /initialSync.
type InitialSyncResponse struct {
	End         string         `json:"end"`
	Presence    []any          `json:"presence"`
	Rooms       []RoomSnapshot `json:"rooms"`
	AccountData []any          `json:"account_data"`
}

// DefaultInitialSyncLimit is the messages per room when no limit is given.
const DefaultInitialSyncLimit = 10

// InitialSyncRequest is GET /initialSync.
type InitialSyncRequest struct {
	UserID, DeviceID string
	Limit            int
	Archived         bool
}

// legacyBuilder is a /sync builder for a whole-account snapshot at to, so
// that the legacy endpoints reuse its account data and presence sections.
func (s *Service) legacyBuilder(ctx context.Context, user, device string, to int64, joined map[string]bool) (*builder, error) {
	b := &builder{s: s, req: Request{UserID: user, DeviceID: device}, to: Token{Pos: to}, f: &filter.Filter{},
		viewer: rooms.Viewer{UserID: user, DeviceID: device}, joined: joined,
		resp: &Response{Presence: EventList{Events: []any{}}, AccountData: EventList{Events: []any{}}}}
	var err error
	b.ignored, err = s.rooms.IgnoredUsers(ctx, user)
	return b, err
}

// InitialSync answers GET /initialSync: every room the user is joined or
// invited to (and, when archived, has left) with its recent messages and
// state, the account data and the presence of the users the user shares a
// room with.
func (s *Service) InitialSync(ctx context.Context, req InitialSyncRequest) (*InitialSyncResponse, error) {
	now := s.Current()
	ms, err := s.rooms.UserMemberships(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	joined := map[string]bool{}
	for _, m := range ms {
		if m.Membership == "join" {
			joined[m.RoomID] = true
		}
	}
	b, err := s.legacyBuilder(ctx, req.UserID, req.DeviceID, now.Pos, joined)
	if err != nil {
		return nil, err
	}
	if err := b.accountData(ctx); err != nil {
		return nil, err
	}
	if err := b.presence(ctx); err != nil {
		return nil, err
	}
	resp := &InitialSyncResponse{End: now.String(), Presence: b.resp.Presence.Events, Rooms: []RoomSnapshot{}, AccountData: b.resp.AccountData.Events}
	slices.SortFunc(ms, func(a, b storage.Membership) int { return cmp.Compare(b.StreamPos, a.StreamPos) })
	for _, m := range ms {
		switch m.Membership {
		case "join":
		case "invite":
			ev, err := s.rooms.Event(ctx, m.EventID)
			if err != nil {
				return nil, err
			}
			if b.ignored[ev.Sender] || b.blocksInvites(ctx) {
				continue
			}
			ce := s.rooms.Format(ctx, ev, b.viewer, rooms.FormatOpts{})
			resp.Rooms = append(resp.Rooms, RoomSnapshot{RoomID: m.RoomID, Membership: "invite", Invite: &ce})
			continue
		case "leave", "ban":
			if !req.Archived {
				continue
			}
		default: // knocks have no place in this response
			continue
		}
		snap, err := s.roomSnapshot(ctx, b, m.RoomID, m.Membership, req.Limit)
		if err != nil {
			return nil, err
		}
		resp.Rooms = append(resp.Rooms, *snap)
	}
	return resp, nil
}

// RoomInitialSync answers GET /rooms/{roomId}/initialSync: the room's state
// and recent messages, for members and, in world-readable rooms, for
// anyone (a room preview). A user who left sees the room as they left it.
func (s *Service) RoomInitialSync(ctx context.Context, roomID, user, device string, limit int) (*RoomInitialSyncResponse, error) {
	membership, err := s.rooms.Membership(ctx, roomID, user)
	if err != nil {
		if e, ok := mxerr.As(err); ok && e.Code == "M_NOT_FOUND" {
			return nil, mxerr.Forbidden("You are not in this room")
		}
		return nil, err
	}
	b, err := s.legacyBuilder(ctx, user, device, s.db.Position(), map[string]bool{roomID: true})
	if err != nil {
		return nil, err
	}
	snap, err := s.roomSnapshot(ctx, b, roomID, membership, limit)
	if err != nil {
		return nil, err
	}
	if err := b.presence(ctx); err != nil {
		return nil, err
	}
	return &RoomInitialSyncResponse{RoomSnapshot: *snap, Presence: b.resp.Presence.Events}, nil
}

// roomSnapshot describes one room as user may see it: up to now for members
// and readers of world-readable rooms, up to their departure for users who
// left (or were banned). Anyone else is refused.
func (s *Service) roomSnapshot(ctx context.Context, b *builder, roomID, membership string, limit int) (*RoomSnapshot, error) {
	user := b.req.UserID
	upto := b.to.Pos
	state, leftAt, err := s.rooms.ReadableState(ctx, roomID, user)
	if e, ok := mxerr.As(err); ok && e.Code == "M_FORBIDDEN" && (membership == "leave" || membership == "ban") {
		// Never joined (an invite rejected, a ban from outside) or
		// forgotten: the user's own membership and nothing of the room.
		state, err = nil, nil
		leftAt = -1
	}
	if err != nil {
		return nil, err
	}
	if leftAt != 0 {
		// Events after their departure are hidden from them anyway; the
		// page ends at their latest membership so it shows it.
		ev, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", user)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			return nil, mxerr.Forbidden("You are not in this room")
		}
		upto = ev.StreamPos
	}
	snap := &RoomSnapshot{RoomID: roomID, Visibility: "private"}
	switch membership {
	case "join", "invite", "leave", "ban":
		snap.Membership = membership
	}
	page, err := s.rooms.Messages(ctx, rooms.MessagesRequest{RoomID: roomID, User: user, From: &upto, Backward: true, Limit: limit})
	if err != nil {
		return nil, err
	}
	slices.Reverse(page.Events)
	snap.Messages = &PaginationChunk{End: Token{Pos: upto}.String(), Chunk: s.rooms.FormatAll(ctx, page.Events, b.viewer, rooms.FormatOpts{})}
	if page.HasEnd {
		snap.Messages.Start = Token{Pos: page.End}.String()
	}
	ids := make([]string, 0, len(state))
	for _, id := range state {
		ids = append(ids, id)
	}
	evs, err := s.rooms.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(evs, func(a, b *rooms.Event) int { return cmp.Compare(a.StreamPos, b.StreamPos) })
	snap.State = s.rooms.FormatAll(ctx, evs, b.viewer, rooms.FormatOpts{NoAggregations: true})
	if published, err := s.db.IsRoomPublished(ctx, roomID); err != nil {
		return nil, err
	} else if published {
		snap.Visibility = "public"
	}
	var ad EventList
	if err := b.roomAccountData(ctx, roomID, &ad, true); err != nil {
		return nil, err
	}
	snap.AccountData = ad.Events
	return snap, nil
}
