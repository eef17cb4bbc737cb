package sync

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	stdsync "sync"
	"time"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/presence"
	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// KeyCounts reports a device's one-time key counts and unused fallback key
// types; the E2EE key server plugs in here.
type KeyCounts func(ctx context.Context, user, device string) (map[string]int, []string)

// Service builds sync responses.
type Service struct {
	db       *storage.DB
	rooms    *rooms.Service
	Notifier *Notifier
	Typing   *Typing
	log      *slog.Logger

	// KeyCounts may be replaced by the key server.
	KeyCounts KeyCounts

	ackMu stdsync.Mutex
	acked map[string]int64
	// toDeviceChecked is, per device, the to-device stream position up to
	// which the device's queue was read and found complete, so idle syncs
	// skip the query.
	toDeviceChecked map[string]int64

	// counts caches unread counts (unread.go).
	counts *loadcache.Map[countsKey, countsEntry]
	// push evaluates users' push rules for the counts (unread.go).
	push *push.Evaluator
}

// New creates the sync service and subscribes it to room events.
func New(db *storage.DB, rs *rooms.Service, log *slog.Logger) *Service {
	n := NewNotifier(db)
	s := &Service{
		db: db, rooms: rs, Notifier: n, Typing: NewTyping(db.Feed()), log: log,
		KeyCounts: func(context.Context, string, string) (map[string]int, []string) {
			return map[string]int{"signed_curve25519": 0}, []string{}
		},
		acked: map[string]int64{}, toDeviceChecked: map[string]int64{},
		counts: loadcache.New[countsKey, countsEntry](maxCountsEntries),
		push:   push.NewEvaluator(rs, nil),
	}
	// Counts a change affects are dropped before the notifier wakes anyone
	// to read them: a redaction's room's, and a user's whose push rules or
	// ignore list changed (events it now hides stop counting).
	db.Feed().Subscribe(func(c storage.Change) {
		switch {
		case c.Kind == storage.KindEvent && c.Type == "m.room.redaction":
			s.invalidateCounts(c.Room)
		case c.Kind == storage.KindAccountData && c.Room == "" && (c.Type == push.AccountDataType || c.Type == rooms.IgnoredUsersType):
			s.invalidateUserCounts(c.Users[0])
		}
	})
	db.Feed().Subscribe(n.onChange)
	return s
}

// Request is a /sync request.
type Request struct {
	UserID    string
	DeviceID  string
	Since     string
	FullState bool
	// UseStateAfter asks for each room's state at the end of its timeline
	// (state_after) instead of at its start (state).
	UseStateAfter bool
	Filter        *filter.Filter
	Timeout       time.Duration
}

// Current returns the token for "now".
func (s *Service) Current() Token {
	return Token{Pos: s.db.Position(), Typing: s.Typing.Serial()}
}

// Sync answers a /sync request, long-polling up to req.Timeout when there is
// nothing new for the user.
func (s *Service) Sync(ctx context.Context, req Request) (*Response, error) {
	since, err := ParseToken(req.Since)
	if err != nil {
		return nil, err
	}
	if req.Filter == nil {
		req.Filter = &filter.Filter{}
	}
	deadline := time.Now().Add(req.Timeout)
	var timer *time.Timer
	for {
		wake := s.Notifier.Listen(req.UserID)
		resp, empty, err := s.build(ctx, req, since)
		if err != nil {
			return nil, err
		}
		remaining := time.Until(deadline)
		if !empty || req.Since == "" || req.FullState || remaining <= 0 {
			return resp, nil
		}
		if timer == nil {
			timer = time.NewTimer(remaining)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			return resp, nil
		case <-ctx.Done():
			return resp, nil
		}
	}
}

// build assembles one response from since to now and reports whether it
// holds nothing for the client.
func (s *Service) build(ctx context.Context, req Request, since Token) (*Response, bool, error) {
	to := Token{Pos: s.db.Position(), Typing: s.Typing.Serial(), ToDevice: since.ToDevice}
	resp := &Response{
		Rooms: RoomsSection{Join: map[string]*JoinedRoom{}, Invite: map[string]*InvitedRoom{},
			Leave: map[string]*LeftRoom{}, Knock: map[string]*KnockedRoom{}},
		Presence: EventList{Events: []any{}}, AccountData: EventList{Events: []any{}}, ToDevice: EventList{Events: []any{}},
		DeviceLists: DeviceLists{Changed: []string{}, Left: []string{}},
	}
	b := &builder{s: s, req: req, since: since, to: to, resp: resp, f: req.Filter,
		viewer: rooms.Viewer{UserID: req.UserID, DeviceID: req.DeviceID}}
	var err error
	if b.ignored, err = s.rooms.IgnoredUsers(ctx, req.UserID); err != nil {
		return nil, false, err
	}
	if err := b.rooms(ctx); err != nil {
		return nil, false, err
	}
	if err := b.accountData(ctx); err != nil {
		return nil, false, err
	}
	if err := b.toDevice(ctx); err != nil {
		return nil, false, err
	}
	if err := b.presence(ctx); err != nil {
		return nil, false, err
	}
	if err := b.deviceLists(ctx); err != nil {
		return nil, false, err
	}
	resp.DeviceOneTimeKeysCount, resp.UnusedFallbackKeyTypes = s.KeyCounts(ctx, req.UserID, req.DeviceID)
	resp.NextBatch = b.to.String()
	empty := len(resp.Rooms.Join) == 0 && len(resp.Rooms.Invite) == 0 && len(resp.Rooms.Leave) == 0 && len(resp.Rooms.Knock) == 0 &&
		len(resp.AccountData.Events) == 0 && len(resp.ToDevice.Events) == 0 && len(resp.Presence.Events) == 0 &&
		len(resp.DeviceLists.Changed) == 0 && len(resp.DeviceLists.Left) == 0
	return resp, empty, nil
}

type builder struct {
	s      *Service
	req    Request
	since  Token
	to     Token
	resp   *Response
	f      *filter.Filter
	viewer rooms.Viewer
	// joined is the set of rooms the user is joined to now.
	joined map[string]bool
	// newMembers are users seen joining the user's rooms in this batch.
	newMembers map[string]bool
	// goneMembers are users who may no longer share a room with the user:
	// they left one of its rooms, or were in a room the user left.
	goneMembers map[string]bool
	// roomData holds the room account data changed in this batch (all of
	// it for rooms sent whole), loaded once per response.
	roomData    map[string][]storage.AccountData
	allRoomData map[string][]storage.AccountData
	// ignored are the users in the user's m.ignored_user_list: their
	// non-state events and their invites are left out.
	ignored map[string]bool
	// invitesBlocked caches blocksInvites.
	invitesBlocked *bool
}

// maxScan bounds the events an incremental sync reads in one range scan;
// past it, the sync falls back to per-room queries.
const maxScan = 1000

func (b *builder) rooms(ctx context.Context) error {
	memberships, err := b.s.rooms.UserMemberships(ctx, b.req.UserID)
	if err != nil {
		return err
	}
	b.joined = map[string]bool{}
	b.newMembers = map[string]bool{}
	b.goneMembers = map[string]bool{}
	current := map[string]storage.Membership{}
	for _, m := range memberships {
		current[m.RoomID] = m
		if m.Membership == "join" {
			b.joined[m.RoomID] = true
		}
	}
	rf := &b.f.Room
	allowRoom := func(roomID string) bool { return filter.AllowsRoom(rf.Rooms, rf.NotRooms, roomID) }

	if b.since.Pos == 0 {
		forgotten := map[string]bool{}
		if rf.IncludeLeave {
			fr, err := b.s.db.ForgottenRooms(ctx, b.req.UserID)
			if err != nil {
				return err
			}
			for _, r := range fr {
				forgotten[r] = true
			}
		}
		for _, m := range memberships {
			if !allowRoom(m.RoomID) {
				continue
			}
			switch m.Membership {
			case "join":
				if err := b.joinedRoom(ctx, m.RoomID, nil, true); err != nil {
					return err
				}
			case "invite", "knock":
				b.strippedRoom(ctx, m)
			case "leave", "ban":
				if rf.IncludeLeave && !forgotten[m.RoomID] {
					if err := b.leftRoom(ctx, m, nil); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}

	// Incremental: what happened in (since, to]?
	byRoom := map[string][]*rooms.Event{}
	var myMember map[string]*rooms.Event
	if b.s.db.StreamPosition(storage.StreamEvents) > b.since.Pos {
		rows, err := b.s.db.EventsAfter(ctx, b.since.Pos, b.to.Pos, maxScan+1)
		if err != nil {
			return err
		}
		myMember = map[string]*rooms.Event{}
		if len(rows) > maxScan {
			// Too far behind for one scan: ask per room instead.
			rows = nil
			mine, err := b.s.db.MemberEventsFor(ctx, b.req.UserID, b.since.Pos, b.to.Pos)
			if err != nil {
				return err
			}
			rows = append(rows, mine...)
			for roomID := range b.joined {
				limit := b.f.Room.Timeline.LimitOr(10)
				rr, err := b.s.db.RoomEventsBackward(ctx, roomID, b.to.Pos+1, b.since.Pos, limit+1)
				if err != nil {
					return err
				}
				for i := len(rr) - 1; i >= 0; i-- {
					rows = append(rows, rr[i])
				}
			}
		}
		evs, err := b.s.rooms.Wrap(ctx, rows)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, ev := range evs {
			if seen[ev.EventID] {
				continue
			}
			seen[ev.EventID] = true
			if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == b.req.UserID {
				myMember[ev.RoomID] = ev
			}
			byRoom[ev.RoomID] = append(byRoom[ev.RoomID], ev)
		}
		for _, list := range byRoom {
			sort.Slice(list, func(i, j int) bool { return list[i].StreamPos < list[j].StreamPos })
		}
	}

	// Rooms whose receipts or typing changed are included for their
	// ephemeral events and (for the user's own receipts) new counts.
	touched := map[string]bool{}
	if b.s.db.StreamPosition(storage.StreamReceipts) > b.since.Pos {
		rs, err := b.s.db.ReceiptsAfter(ctx, b.since.Pos, b.to.Pos)
		if err != nil {
			return err
		}
		for _, r := range rs {
			touched[r.RoomID] = true
		}
	}
	if b.to.Typing != b.since.Typing {
		for roomID := range b.joined {
			if _, ok := b.s.Typing.Changed(roomID, b.since.Typing); ok {
				touched[roomID] = true
			}
		}
	}
	if b.s.db.StreamPosition(storage.StreamAccountData) > b.since.Pos {
		ads, err := b.s.db.AccountDataAfter(ctx, b.req.UserID, b.since.Pos, b.to.Pos)
		if err != nil {
			return err
		}
		for _, a := range ads {
			if a.RoomID != "" {
				touched[a.RoomID] = true
			}
			// New push rules can change every room's counts: send them all.
			if a.RoomID == "" && a.Type == push.AccountDataType {
				for roomID := range b.joined {
					touched[roomID] = true
				}
			}
		}
	}

	for roomID, mev := range myMember {
		if !allowRoom(roomID) {
			continue
		}
		cur := current[roomID]
		switch cur.Membership {
		case "join":
			// A join in this batch (not a profile change) sends the room whole.
			fresh := b.prevMembership(ctx, mev) != "join"
			if err := b.joinedRoom(ctx, roomID, byRoom[roomID], fresh || b.req.FullState); err != nil {
				return err
			}
		case "invite", "knock":
			b.strippedRoom(ctx, cur)
		case "leave", "ban":
			if err := b.leftRoom(ctx, cur, byRoom[roomID]); err != nil {
				return err
			}
		}
	}
	for roomID := range b.joined {
		if _, done := myMember[roomID]; done || !allowRoom(roomID) {
			continue
		}
		if len(byRoom[roomID]) > 0 || touched[roomID] || b.req.FullState {
			if err := b.joinedRoom(ctx, roomID, byRoom[roomID], b.req.FullState); err != nil {
				return err
			}
		}
	}
	return nil
}

// prevMembership is the user's membership before a member event.
func (b *builder) prevMembership(ctx context.Context, ev *rooms.Event) string {
	before, err := b.s.rooms.StateAt(ctx, ev.StateBefore)
	if err != nil {
		return ""
	}
	id, ok := before[storage.StateKey{Type: "m.room.member", StateKey: *ev.StateKey}]
	if !ok {
		return ""
	}
	prev, err := b.s.rooms.Event(ctx, id)
	if err != nil {
		return ""
	}
	return rooms.MembershipOf(prev)
}

func (b *builder) format(ctx context.Context, evs []*rooms.Event) []rooms.ClientEvent {
	return b.s.rooms.FormatAll(ctx, evs, b.viewer, rooms.FormatOpts{OmitRoomID: true})
}

// timeline picks the timeline events: the new ones in an incremental sync,
// or the latest ones up to the limit when the room is sent whole.
func (b *builder) timeline(ctx context.Context, roomID string, newEvents []*rooms.Event, full bool, upto int64) ([]*rooms.Event, bool, error) {
	tf := &b.f.Room.Timeline
	limit := tf.LimitOr(10)
	var evs []*rooms.Event
	limited := false
	if full {
		rows, err := b.s.db.RoomEventsBackward(ctx, roomID, upto+1, 0, limit+1)
		if err != nil {
			return nil, false, err
		}
		if len(rows) > limit {
			limited = true
			rows = rows[:limit]
		}
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
		if evs, err = b.s.rooms.Wrap(ctx, rows); err != nil {
			return nil, false, err
		}
	} else {
		for _, ev := range newEvents {
			if ev.StreamPos <= upto {
				evs = append(evs, ev)
			}
		}
		if len(evs) > limit {
			limited = true
			evs = evs[len(evs)-limit:]
		}
	}
	out := evs[:0:0]
	for _, ev := range evs {
		if tf.AllowsEvent(roomID, ev.Type, ev.Sender, ev.PDU.Content) && !rooms.HiddenByIgnore(ev, b.ignored) {
			out = append(out, ev)
		}
	}
	out, err := b.s.rooms.FilterVisible(ctx, b.req.UserID, out)
	return out, limited, err
}

func (b *builder) joinedRoom(ctx context.Context, roomID string, newEvents []*rooms.Event, full bool) error {
	jr := &JoinedRoom{Ephemeral: EventList{Events: []any{}}, AccountData: EventList{Events: []any{}}}
	tl, limited, err := b.timeline(ctx, roomID, newEvents, full, b.to.Pos)
	if err != nil {
		return err
	}
	jr.Timeline = Timeline{Events: b.format(ctx, tl), Limited: limited}
	if jr.Timeline.Events == nil {
		jr.Timeline.Events = []rooms.ClientEvent{}
	}
	startPos := b.to.Pos + 1
	if len(tl) > 0 {
		startPos = tl[0].StreamPos
	}
	jr.Timeline.PrevBatch = Token{Pos: startPos - 1, Typing: b.to.Typing, ToDevice: b.to.ToDevice}.String()

	var state []*rooms.Event
	if b.req.UseStateAfter {
		end, err := b.stateAtEnd(ctx, roomID, newEvents, full)
		if err != nil {
			return err
		}
		if end != nil {
			if state, err = b.stateAfter(ctx, roomID, end, tl, newEvents, b.to.Pos, full, limited); err != nil {
				return err
			}
		}
		jr.StateAfter = b.stateSection(ctx, state)
	} else {
		state, err = b.stateBefore(ctx, roomID, tl, full, limited, 0)
		if err != nil {
			return err
		}
		jr.State = b.stateSection(ctx, state)
	}

	memberChange := full
	for _, ev := range append(append([]*rooms.Event{}, tl...), state...) {
		if ev.Type == "m.room.member" {
			memberChange = true
			if ev.StreamPos > b.since.Pos && ev.StateKey != nil {
				switch m := rooms.MembershipOf(ev); {
				case storage.SharesRoom(m):
					// An invited (or knocking) user shares the room for
					// device lists too, as in sharedUsers: clients
					// encrypt for invitees when history is visible to them.
					b.newMembers[*ev.StateKey] = true
				case m == "leave" || m == "ban":
					b.goneMembers[*ev.StateKey] = true
				}
			}
		}
	}
	if full && b.since.Pos > 0 {
		// A room sent whole in an incremental sync was (re)joined: its
		// members may be newly sharing a room with the user.
		for _, u := range b.s.Notifier.RoomMembers(ctx, roomID) {
			b.newMembers[u] = true
		}
	}
	if memberChange {
		jr.Summary = b.summary(ctx, roomID)
	}
	if err := b.ephemeral(ctx, roomID, jr, full); err != nil {
		return err
	}
	if err := b.roomAccountData(ctx, roomID, &jr.AccountData, full); err != nil {
		return err
	}
	counts, threads, err := b.s.unreadCounts(ctx, roomID, b.req.UserID, b.f.Room.Timeline.UnreadThreadNotifications, b.to.Pos)
	if err != nil {
		return err
	}
	jr.UnreadNotifications = counts
	if b.f.Room.Timeline.UnreadThreadNotifications {
		jr.UnreadThreadNotifications = threads
	}
	b.resp.Rooms.Join[roomID] = jr
	return nil
}

// stateBefore returns the state section: the whole state before the
// timeline when the room is sent whole, else the state that changed in a
// gap a limited timeline skipped.
//
// With an empty timeline (a filter's limit 0) the state is where the
// timeline would end: endGroup's state (a left room's state right after
// the leave, never what changed after it) or, when endGroup is 0, the
// room's current state.
func (b *builder) stateBefore(ctx context.Context, roomID string, tl []*rooms.Event, full, limited bool, endGroup int64) ([]*rooms.Event, error) {
	sf := &b.f.Room.State
	var group int64
	switch {
	case len(tl) > 0:
		group = tl[0].StateBefore
	case endGroup != 0:
		group = endGroup
	default:
		cur, err := b.s.rooms.CurrentState(ctx, roomID)
		if err != nil {
			return nil, err
		}
		return b.stateFromMap(ctx, roomID, cur, tl, full, limited, sf, false)
	}
	m, err := b.s.rooms.StateAt(ctx, group)
	if err != nil {
		return nil, err
	}
	return b.stateFromMap(ctx, roomID, m, tl, full, limited, sf, false)
}

// stateSection formats state events as a (never null) state section.
func (b *builder) stateSection(ctx context.Context, state []*rooms.Event) *StateSection {
	sec := &StateSection{Events: b.format(ctx, state)}
	if sec.Events == nil {
		sec.Events = []rooms.ClientEvent{}
	}
	return sec
}

// stateAtEnd is a joined room's state at the end of its timeline, which
// holds the room's events up to b.to: the state after the newest of them
// (a cached state group, not copied), or the current state for a room sent
// whole. nil means no state changed: an incremental sync without events.
func (b *builder) stateAtEnd(ctx context.Context, roomID string, newEvents []*rooms.Event, full bool) (storage.StateMap, error) {
	if !full {
		for i := len(newEvents) - 1; i >= 0; i-- {
			if newEvents[i].StreamPos <= b.to.Pos {
				return b.s.rooms.StateAt(ctx, newEvents[i].StateAfter)
			}
		}
		return nil, nil
	}
	// Events stored after b.to may show here already; the next sync sends
	// them again, which a client applying state_after takes in its stride.
	return b.s.rooms.CurrentState(ctx, roomID)
}

// stateAfter returns the state_after section from m, the room's state at
// the end of the timeline: all of it when the room is sent whole, else the
// state events in it that are newer than the token, state events of the
// timeline included (clients take state only from state_after then).
// newEvents are all the room's events after the token, up to upto.
func (b *builder) stateAfter(ctx context.Context, roomID string, m storage.StateMap, tl, newEvents []*rooms.Event, upto int64,
	full, limited bool) ([]*rooms.Event, error) {
	sf := &b.f.Room.State
	if !full && !limited && !sf.LazyLoadMembers {
		// Every event since the token is at hand: the changes are those
		// of its state events that are still in the state. Cheap: no
		// state event of the room is read.
		var out []*rooms.Event
		for _, ev := range newEvents {
			if ev.StateKey != nil && ev.StreamPos <= upto && m[storage.StateKey{Type: ev.Type, StateKey: *ev.StateKey}] == ev.EventID &&
				sf.AllowsEvent(roomID, ev.Type, ev.Sender, ev.PDU.Content) {
				out = append(out, ev)
			}
		}
		return out, nil
	}
	return b.stateFromMap(ctx, roomID, m, tl, full, true, sf, true)
}

// stateFromMap picks the state section's events from m. With after
// (state_after), events of the timeline are kept.
func (b *builder) stateFromMap(ctx context.Context, roomID string, m storage.StateMap, tl []*rooms.Event, full, limited bool,
	sf *filter.RoomEventFilter, after bool) ([]*rooms.Event, error) {
	if !full && !limited && !sf.LazyLoadMembers {
		return nil, nil
	}
	senders := map[string]bool{b.req.UserID: true}
	for _, ev := range tl {
		senders[ev.Sender] = true
	}
	inTimeline := map[string]bool{}
	for _, ev := range tl {
		inTimeline[ev.EventID] = true
	}
	ids := make([]string, 0, len(m))
	for k, v := range m {
		if inTimeline[v] && !after {
			continue
		}
		// state_after also keeps the timeline's member events (a kick, say):
		// clients do not take state from the timeline then.
		if k.Type == "m.room.member" && sf.LazyLoadMembers && !senders[k.StateKey] && !(after && inTimeline[v]) {
			continue
		}
		ids = append(ids, v)
	}
	evs, err := b.s.rooms.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := evs[:0]
	for _, ev := range evs {
		if !sf.AllowsEvent(roomID, ev.Type, ev.Sender, ev.PDU.Content) {
			continue
		}
		// In an incremental sync, only state that changed since the token,
		// plus lazily-loaded members of the timeline's senders.
		if !full && ev.StreamPos <= b.since.Pos && !(sf.LazyLoadMembers && ev.Type == "m.room.member" && len(tl) > 0) {
			continue
		}
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamPos < out[j].StreamPos })
	return out, nil
}

func (b *builder) summary(ctx context.Context, roomID string) *Summary {
	byMembership, _ := b.s.rooms.MembersByMembership(ctx, roomID)
	joined, invited := byMembership["join"], byMembership["invite"]
	jc, ic := len(joined), len(invited)
	sum := &Summary{JoinedCount: &jc, InvitedCount: &ic}
	cands := append(append([]string{}, joined...), invited...)
	sort.Strings(cands)
	for _, u := range cands {
		if u != b.req.UserID && len(sum.Heroes) < 5 {
			sum.Heroes = append(sum.Heroes, u)
		}
	}
	if len(sum.Heroes) == 0 {
		left := append(byMembership["leave"], byMembership["ban"]...)
		sort.Strings(left)
		for _, u := range left {
			if u != b.req.UserID && len(sum.Heroes) < 5 {
				sum.Heroes = append(sum.Heroes, u)
			}
		}
	}
	return sum
}

func (b *builder) ephemeral(ctx context.Context, roomID string, jr *JoinedRoom, full bool) error {
	ef := &b.f.Room.Ephemeral
	if !filter.AllowsRoom(ef.Rooms, ef.NotRooms, roomID) {
		return nil
	}
	if ef.EventFilter.Allows("m.typing", "") {
		users, ok := b.s.Typing.Changed(roomID, b.since.Typing)
		if full {
			users = b.s.Typing.Now(roomID)
			ok = users != nil
		}
		if ok {
			if users == nil {
				users = []string{}
			}
			jr.Ephemeral.Events = append(jr.Ephemeral.Events, map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
		}
	}
	if !ef.EventFilter.Allows("m.receipt", "") {
		return nil
	}
	var rs []storage.Receipt
	var err error
	if full {
		rs, err = b.s.db.RoomReceipts(ctx, roomID)
	} else if b.s.db.StreamPosition(storage.StreamReceipts) > b.since.Pos {
		all, e := b.s.db.ReceiptsAfter(ctx, b.since.Pos, b.to.Pos)
		err = e
		for _, r := range all {
			if r.RoomID == roomID {
				rs = append(rs, r)
			}
		}
	}
	if err != nil {
		return err
	}
	if c := ReceiptContent(rs, b.req.UserID); c != nil {
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, map[string]any{"type": "m.receipt", "content": c})
	}
	return nil
}

// ReceiptContent builds m.receipt content; private receipts are shown only
// to their owner.
func ReceiptContent(rs []storage.Receipt, viewer string) map[string]map[string]map[string]any {
	out := map[string]map[string]map[string]any{}
	for _, r := range rs {
		if r.Type == "m.read.private" && r.UserID != viewer {
			continue
		}
		if out[r.EventID] == nil {
			out[r.EventID] = map[string]map[string]any{}
		}
		if out[r.EventID][r.Type] == nil {
			out[r.EventID][r.Type] = map[string]any{}
		}
		// A user's unthreaded and threaded receipts on one event clash in
		// this shape: the unthreaded one wins, whichever is newer
		// (MSC4102): it says more, and thread-unaware clients need it.
		if prev, ok := out[r.EventID][r.Type][r.UserID].(map[string]any); ok && prev["thread_id"] == nil && r.ThreadID != "" {
			continue
		}
		data := map[string]any{"ts": r.TS}
		if r.ThreadID != "" {
			data["thread_id"] = r.ThreadID
		}
		out[r.EventID][r.Type][r.UserID] = data
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// loadRoomData reads the user's account data changed after from, grouped by room.
func (b *builder) loadRoomData(ctx context.Context, from int64) (map[string][]storage.AccountData, error) {
	out := map[string][]storage.AccountData{}
	if from > 0 && b.s.db.StreamPosition(storage.StreamAccountData) <= from {
		return out, nil
	}
	ads, err := b.s.db.AccountDataAfter(ctx, b.req.UserID, from, b.to.Pos)
	if err != nil {
		return nil, err
	}
	for _, a := range ads {
		out[a.RoomID] = append(out[a.RoomID], a)
	}
	return out, nil
}

func (b *builder) roomAccountData(ctx context.Context, roomID string, into *EventList, full bool) error {
	var err error
	cache := &b.roomData
	from := b.since.Pos
	if full {
		cache, from = &b.allRoomData, 0
	}
	if *cache == nil {
		if *cache, err = b.loadRoomData(ctx, from); err != nil {
			return err
		}
	}
	af := &b.f.Room.AccountData
	for _, a := range (*cache)[roomID] {
		if af.AllowsEvent(roomID, a.Type, "", nil) {
			into.Events = append(into.Events, rawEvent{Type: a.Type, Content: json.RawMessage(a.Content)})
		}
	}
	return nil
}

// blocksInvites reports whether the user blocks invites, which are then
// not shown (spec: invite permission); read once per response, and only
// for responses with an invite.
func (b *builder) blocksInvites(ctx context.Context) bool {
	if b.invitesBlocked == nil {
		blocked, err := b.s.rooms.InvitesBlocked(ctx, b.req.UserID)
		if err != nil {
			b.s.log.Warn("invite permission", "err", err)
		}
		b.invitesBlocked = &blocked
	}
	return *b.invitesBlocked
}

func (b *builder) strippedRoom(ctx context.Context, m storage.Membership) {
	ev, err := b.s.rooms.Event(ctx, m.EventID)
	if err != nil || (m.Membership == "invite" && (b.ignored[ev.Sender] || b.blocksInvites(ctx))) {
		return
	}
	state := b.s.rooms.InviteState(ctx, m.RoomID, ev.StateBefore, b.req.UserID)
	own := rooms.StrippedState{Content: json.RawMessage(ev.PDU.Content), Sender: ev.Sender, StateKey: *ev.StateKey, Type: ev.Type}
	filtered := state[:0]
	for _, st := range state {
		if !(st.Type == "m.room.member" && st.StateKey == b.req.UserID) {
			filtered = append(filtered, st)
		}
	}
	filtered = append(filtered, own)
	if m.Membership == "invite" {
		ir := &InvitedRoom{}
		ir.InviteState.Events = filtered
		b.resp.Rooms.Invite[m.RoomID] = ir
	} else {
		kr := &KnockedRoom{}
		kr.KnockState.Events = filtered
		b.resp.Rooms.Knock[m.RoomID] = kr
	}
}

func (b *builder) leftRoom(ctx context.Context, m storage.Membership, newEvents []*rooms.Event) error {
	leave, err := b.s.rooms.Event(ctx, m.EventID)
	if err != nil {
		return err
	}
	full := b.since.Pos == 0 || newEvents == nil
	tl, limited, err := b.timeline(ctx, m.RoomID, newEvents, full, leave.StreamPos)
	if err != nil {
		return err
	}
	lr := &LeftRoom{AccountData: EventList{Events: []any{}}}
	lr.Timeline = Timeline{Events: b.format(ctx, tl), Limited: limited}
	if lr.Timeline.Events == nil {
		lr.Timeline.Events = []rooms.ClientEvent{}
	}
	start := leave.StreamPos + 1
	if len(tl) > 0 {
		start = tl[0].StreamPos
	}
	lr.Timeline.PrevBatch = Token{Pos: start - 1}.String()
	if b.req.UseStateAfter {
		// The timeline ends with the user's leave (or ban): the state
		// section is the room's state right after it.
		after, err := b.s.rooms.StateAt(ctx, leave.StateAfter)
		if err != nil {
			return err
		}
		state, err := b.stateAfter(ctx, m.RoomID, after, tl, newEvents, leave.StreamPos, full, limited)
		if err != nil {
			return err
		}
		lr.StateAfter = b.stateSection(ctx, state)
	} else {
		state, err := b.stateBefore(ctx, m.RoomID, tl, full, limited, leave.StateAfter)
		if err != nil {
			return err
		}
		lr.State = b.stateSection(ctx, state)
	}
	b.resp.Rooms.Leave[m.RoomID] = lr
	if b.since.Pos > 0 {
		for _, u := range b.s.Notifier.RoomMembers(ctx, m.RoomID) {
			b.goneMembers[u] = true
		}
	}
	return nil
}

func (b *builder) accountData(ctx context.Context) error {
	if b.since.Pos != 0 && b.s.db.StreamPosition(storage.StreamAccountData) <= b.since.Pos {
		return nil
	}
	ads, err := b.s.db.AccountDataAfter(ctx, b.req.UserID, b.since.Pos, b.to.Pos)
	if err != nil {
		return err
	}
	pushRules := false
	for _, a := range ads {
		if a.RoomID == "" && b.f.AccountData.Allows(a.Type, "") {
			b.resp.AccountData.Events = append(b.resp.AccountData.Events, rawEvent{Type: a.Type, Content: json.RawMessage(a.Content)})
			pushRules = pushRules || a.Type == push.AccountDataType
		}
	}
	// Clients read their push rules from the initial sync; a user who never
	// changed one has the server defaults, stored nowhere.
	if b.since.Pos == 0 && !pushRules && b.f.AccountData.Allows(push.AccountDataType, "") {
		if c, err := json.Marshal(b.s.DefaultPushRules(b.req.UserID)); err == nil {
			b.resp.AccountData.Events = append(b.resp.AccountData.Events, rawEvent{Type: push.AccountDataType, Content: c})
		}
	}
	return nil
}

// maxToDevice bounds to-device messages per response; the rest follow.
const maxToDevice = 100

func (b *builder) toDevice(ctx context.Context) error {
	key := b.req.UserID + "\x00" + b.req.DeviceID
	if b.since.ToDevice > 0 {
		b.s.ackMu.Lock()
		done := b.s.acked[key] >= b.since.ToDevice
		b.s.ackMu.Unlock()
		if !done {
			if err := b.s.db.AckToDevice(ctx, b.req.UserID, b.req.DeviceID, b.since.ToDevice); err != nil {
				return err
			}
			b.s.ackMu.Lock()
			b.s.acked[key] = b.since.ToDevice
			b.s.ackMu.Unlock()
		}
	}
	streamPos := b.s.db.StreamPosition(storage.StreamToDevice)
	b.s.ackMu.Lock()
	checked := b.s.toDeviceChecked[key]
	b.s.ackMu.Unlock()
	if streamPos <= b.since.ToDevice || streamPos <= checked {
		return nil
	}
	msgs, err := b.s.db.ToDeviceFor(ctx, b.req.UserID, b.req.DeviceID, b.to.Pos, maxToDevice)
	if err != nil {
		return err
	}
	if len(msgs) < maxToDevice && len(msgs) == 0 {
		// Nothing queued up to here: later syncs need not look again
		// until the stream moves.
		b.s.ackMu.Lock()
		b.s.toDeviceChecked[key] = min(streamPos, b.to.Pos)
		b.s.ackMu.Unlock()
	}
	for _, m := range msgs {
		if m.StreamPos <= b.since.ToDevice {
			continue
		}
		b.resp.ToDevice.Events = append(b.resp.ToDevice.Events, rawEvent{Type: m.Type, Content: json.RawMessage(m.Content), Sender: m.Sender})
		b.to.ToDevice = m.StreamPos
	}
	return nil
}

// sharedUsers returns the users sharing a room the user is joined to: its
// joined, invited and knocking members (the notifier's member set). These
// are the users whose device lists the client tracks (Synapse counts
// invitees too: clients encrypt for them when history is visible to them).
func (b *builder) sharedUsers(ctx context.Context) map[string]bool {
	out := map[string]bool{b.req.UserID: true}
	for roomID := range b.joined {
		for _, u := range b.s.Notifier.RoomMembers(ctx, roomID) {
			out[u] = true
		}
	}
	return out
}

func (b *builder) presence(ctx context.Context) error {
	var ps []storage.Presence
	if b.s.db.StreamPosition(storage.StreamPresence) > b.since.Pos {
		var err error
		if ps, err = b.s.db.PresenceAfter(ctx, b.since.Pos, b.to.Pos); err != nil {
			return err
		}
	}
	sent := map[string]bool{}
	if len(ps) > 0 {
		shared := b.sharedUsers(ctx)
		for _, p := range ps {
			if !shared[p.UserID] {
				continue
			}
			sent[p.UserID] = true
			b.addPresence(p)
		}
	}
	// Users who came to share a room with the user in this batch bring
	// their current presence, set before since as it may be: the client
	// has none for them yet (as Synapse does for newly joined members and
	// the members of newly joined rooms).
	var fresh []string
	for u := range b.newMembers {
		if u != b.req.UserID && !sent[u] {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	sort.Strings(fresh)
	more, err := b.s.db.PresenceOf(ctx, fresh)
	if err != nil {
		return err
	}
	sort.Slice(more, func(i, j int) bool { return more[i].UserID < more[j].UserID })
	for _, p := range more {
		b.addPresence(p)
	}
	return nil
}

func (b *builder) addPresence(p storage.Presence) {
	if !b.f.Presence.Allows("m.presence", p.UserID) {
		return
	}
	b.resp.Presence.Events = append(b.resp.Presence.Events, map[string]any{
		"type": "m.presence", "sender": p.UserID, "content": presence.Content(p),
	})
}

func (b *builder) deviceLists(ctx context.Context) error {
	if b.since.Pos == 0 {
		return nil
	}
	changed := map[string]bool{}
	for u := range b.newMembers {
		if u != b.req.UserID {
			changed[u] = true
		}
	}
	var shared map[string]bool
	if b.s.db.StreamPosition(storage.StreamDeviceLists) > b.since.Pos {
		users, err := b.s.db.DeviceListChangesAfter(ctx, b.since.Pos, b.to.Pos)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			shared = b.sharedUsers(ctx)
			for _, u := range users {
				if shared[u] {
					changed[u] = true
				}
			}
		}
	}
	// Left: users who shared a room before and share none now.
	if len(b.goneMembers) > 0 {
		if shared == nil {
			shared = b.sharedUsers(ctx)
		}
		for u := range b.goneMembers {
			if !shared[u] {
				b.resp.DeviceLists.Left = append(b.resp.DeviceLists.Left, u)
				delete(changed, u)
			}
		}
		sort.Strings(b.resp.DeviceLists.Left)
	}
	for u := range changed {
		b.resp.DeviceLists.Changed = append(b.resp.DeviceLists.Changed, u)
	}
	sort.Strings(b.resp.DeviceLists.Changed)
	return nil
}
