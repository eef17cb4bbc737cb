package slidingsync

import (
	"context"
	"encoding/json"
	"slices"
	"sort"

	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
)

// room builds one room's entry: whole when the connection has not sent it
// (or sent it only as an invite), with more history when the client asked
// for a longer timeline, else what changed since it was last sent. It
// returns nil when nothing changed.
func (b *builder) room(ctx context.Context, m storage.Membership, rr *roomReq) (*Room, roomSent, error) {
	roomID := m.RoomID
	sent, wasSent := b.prev.sent[roomID]
	reqKey := b.stateKeyOf(rr)
	isInvite := m.Membership == "invite" || m.Membership == "knock"
	now := roomSent{timelineLimit: rr.timelineLimit, requiredState: reqKey, upto: b.to.Pos, invite: isInvite}
	// A room the client has only seen as an invite has none of its real
	// state or timeline yet: once joined it is sent as new.
	initial := !wasSent || (sent.invite && !isInvite)
	expanded := !initial && rr.timelineLimit > sent.timelineLimit
	stateChanged := !initial && stateExpanded(sent.requiredState, reqKey)
	isDM := b.direct[roomID]
	now.dm = isDM
	// An m.direct change resends the room with its new is_dm (the MSC).
	dmChanged := !initial && sent.dm != isDM

	// latest is the newest event the user can see: for a room they left,
	// their leave (later activity there is not theirs to learn of).
	s := b.s
	latest := m.StreamPos
	if m.Membership == "join" {
		s.mu.Lock()
		latest = max(latest, s.mu.latest[roomID])
		s.mu.Unlock()
	}

	if isInvite {
		if !initial && m.StreamPos <= sent.upto && !dmChanged {
			return nil, now, nil
		}
		room := b.inviteRoom(ctx, m, initial, rr)
		if dmChanged && room.IsDM == nil {
			room.IsDM = &isDM
		}
		return room, now, nil
	}

	// upto is where the user's view of the room ends: now, or their leave.
	upto := b.to.Pos
	if m.Membership != "join" {
		upto = m.StreamPos
	}
	if !initial && !expanded && !stateChanged && !dmChanged && latest <= sent.upto && !b.ownReceipts[roomID] {
		// Nothing new: the client still holds what was sent before (a
		// timeline that long, contiguous).
		now.upto, now.timelineLimit = sent.upto, sent.timelineLimit
		return nil, now, nil
	}
	// A room the user has left is shown as it was when they left: its
	// state then, no later names, members or counts. One they never joined
	// (an invite rejected or withdrawn, a ban from outside) shows only the
	// user's own membership event.
	var leftState storage.StateMap
	if m.Membership != "join" {
		ev, err := s.rooms.Event(ctx, m.EventID)
		if err != nil {
			return nil, now, err
		}
		// The rooms service's one rule: state as of the end of their last
		// stay, none for a user who never joined (or forgot the room).
		reach, err := s.rooms.ReachOf(ctx, roomID, b.user)
		if err != nil {
			return nil, now, err
		}
		if reach.Departure == nil {
			return b.membershipOnlyRoom(ctx, m, ev, initial || sent.invite, rr), now, nil
		}
		if leftState, err = s.rooms.StateAt(ctx, reach.Departure.StateAfter); err != nil {
			return nil, now, err
		}
	}
	bump := m.StreamPos
	if m.Membership == "join" {
		// For other memberships the stamp is the membership itself.
		if p, err := s.bumpOf(ctx, roomID); err != nil {
			return nil, now, err
		} else if p > 0 {
			bump = p
		}
	}
	room := &Room{Initial: initial, BumpStamp: bump}
	if isDM || dmChanged {
		room.IsDM = &isDM
	}
	if expanded {
		if b.req.V4 {
			room.ExpandedTimeline = true
		} else {
			room.UnstableExpandedTimeline = true
		}
	}
	if b.req.V4 {
		room.Membership = m.Membership
		room.Lists = slices.Sorted(slices.Values(rr.lists))
	}
	after := int64(0)
	if !initial && !expanded {
		after = sent.upto
	}
	limit := rr.timelineLimit
	var tl []*rooms.Event
	if limit > 0 && after < upto {
		rows, err := s.db.RoomEventsBackward(ctx, roomID, upto+1, after, limit+1)
		if err != nil {
			return nil, now, err
		}
		if len(rows) > limit {
			room.Limited = true
			rows = rows[:limit]
		}
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
		if tl, err = s.rooms.Wrap(ctx, rows); err != nil {
			return nil, now, err
		}
		if tl, err = s.rooms.FilterShown(ctx, b.user, tl); err != nil {
			return nil, now, err
		}
	} else if limit == 0 && after < upto && latest > after {
		room.Limited = true
	}
	if expanded && len(tl) > 0 && tl[0].StreamPos <= sent.upto {
		// The timeline now starts before what the client holds: it must
		// take it as a new chunk (matrix-js-sdk only de-duplicates and
		// orders the older events of a limited timeline).
		room.Limited = true
	}
	if !initial && !expanded && !room.Limited {
		// No gap: the client's contiguous timeline only grew.
		now.timelineLimit = max(now.timelineLimit, sent.timelineLimit)
	}
	// Live events are those after the connection's previous response, also
	// in a room new to the connection (one an @mention has just moved into
	// the window: the client should notify for it but not for the history).
	live := 0
	if b.since.Pos > 0 {
		for _, ev := range tl {
			if ev.StreamPos > b.since.Pos {
				live++
			}
		}
	}
	room.NumLive = &live
	room.Timeline = s.rooms.FormatAll(ctx, tl, b.viewer, rooms.FormatOpts{OmitRoomID: true})
	startPos := upto + 1
	if len(tl) > 0 {
		startPos = tl[0].StreamPos
	}
	b.tlStart[roomID] = startPos
	room.PrevBatch = sync.Token{Pos: startPos - 1}.String()

	// Which state to send: all the required state when the room or its
	// required_state is new, else what changed since it was last sent.
	full := initial || stateChanged
	look := full || room.Limited || expanded
	// State already sent is not resent: what changed since the room was
	// last sent (even when the timeline reaches further back).
	stateAfter := int64(0)
	if !initial {
		stateAfter = sent.upto
	}
	memberChange := initial
	nameChange := initial
	for _, ev := range tl {
		if ev.IsState() && ev.StreamPos > stateAfter {
			switch ev.Type {
			case "m.room.member":
				memberChange = true
			case "m.room.name", "m.room.avatar":
				nameChange = true
			}
		}
	}
	state, err := b.requiredState(ctx, roomID, rr, tl, upto, stateAfter, look || memberChange || nameChange, full, leftState)
	if err != nil {
		return nil, now, err
	}
	for _, ev := range state {
		switch ev.Type {
		case "m.room.member":
			if ev.StreamPos > stateAfter {
				memberChange = true
			}
		case "m.room.name", "m.room.avatar":
			if ev.StreamPos > stateAfter {
				nameChange = true
			}
		}
	}
	room.RequiredState = s.rooms.FormatAll(ctx, state, b.viewer, rooms.FormatOpts{OmitRoomID: true})
	if nameChange || memberChange {
		b.nameAndHeroes(ctx, roomID, room, memberChange && leftState == nil, !initial, leftState)
	}
	if memberChange && leftState == nil {
		byM, err := s.rooms.MembersByMembership(ctx, roomID)
		if err == nil {
			jc, ic := len(byM["join"]), len(byM["invite"])
			room.JoinedCount, room.InvitedCount = &jc, &ic
		}
	}
	if m.Membership == "join" {
		counts, err := s.sync.UnreadCounts(ctx, roomID, b.user, b.to.Pos)
		if err != nil {
			return nil, now, err
		}
		room.NotificationCount, room.HighlightCount = counts.NotificationCount, counts.HighlightCount
	}
	return room, now, nil
}

// requiredState returns the state events the room config asks for: all of
// them (full), or those that changed after "after" plus lazily loaded
// members of the timeline's senders and membership targets.
func (b *builder) requiredState(ctx context.Context, roomID string, rr *roomReq, tl []*rooms.Event, upto, after int64, look, full bool, leftState storage.StateMap) ([]*rooms.Event, error) {
	if (len(rr.cfgs) == 0 && !rr.lazy) || (!look && len(tl) == 0) {
		return nil, nil
	}
	st := leftState
	var err error
	if st != nil {
		// The state when the user left.
	} else if len(tl) > 0 && upto == tl[len(tl)-1].StreamPos {
		st, err = b.s.rooms.StateAt(ctx, tl[len(tl)-1].StateAfter)
	} else {
		st, err = b.s.rooms.CurrentState(ctx, roomID)
	}
	if err != nil {
		return nil, err
	}
	lazyUsers := map[string]bool{}
	if rr.lazy {
		for _, ev := range tl {
			lazyUsers[ev.Sender] = true
			if ev.Type == "m.room.member" && ev.StateKey != nil {
				lazyUsers[*ev.StateKey] = true
			}
		}
	}
	var ids []string
	lazyIDs := map[string]bool{}
	for k, id := range st {
		isLazy := k.Type == "m.room.member" && lazyUsers[k.StateKey]
		if !isLazy && !rr.wants(k, b.user) {
			continue
		}
		// State events of the timeline are sent here too: matrix-js-sdk
		// takes room state only from required_state (as Synapse sends it).
		ids = append(ids, id)
		if isLazy {
			lazyIDs[id] = true
		}
	}
	evs, err := b.s.rooms.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := evs[:0]
	for _, ev := range evs {
		if full || ev.StreamPos > after || lazyIDs[ev.EventID] {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StreamPos < out[j].StreamPos })
	return out, nil
}

// nameAndHeroes fills name and avatar (from the state at the user's leave
// for a room they left; a removed avatar is null when the client had one),
// and heroes for a room without a name.
func (b *builder) nameAndHeroes(ctx context.Context, roomID string, room *Room, withHeroes, update bool, leftState storage.StateMap) {
	s := b.s
	stateEvent := func(typ string) *rooms.Event {
		if leftState != nil {
			id, ok := leftState[storage.StateKey{Type: typ}]
			if !ok {
				return nil
			}
			ev, err := s.rooms.Event(ctx, id)
			if err != nil {
				return nil
			}
			return ev
		}
		ev, err := s.rooms.CurrentStateEvent(ctx, roomID, typ, "")
		if err != nil {
			return nil
		}
		return ev
	}
	if ev := stateEvent("m.room.name"); ev != nil {
		var c struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(ev.PDU.Content, &c)
		room.Name = c.Name
	}
	if ev := stateEvent("m.room.avatar"); ev != nil {
		var c struct {
			URL string `json:"url"`
		}
		_ = json.Unmarshal(ev.PDU.Content, &c)
		if c.URL != "" {
			room.Avatar, _ = json.Marshal(c.URL)
		} else if update {
			room.Avatar = json.RawMessage("null")
		}
	}
	if room.Name != "" || !withHeroes {
		return
	}
	byM, err := s.rooms.MembersByMembership(ctx, roomID)
	if err != nil {
		return
	}
	cands := append(append([]string{}, byM["join"]...), byM["invite"]...)
	if len(cands) <= 1 {
		cands = append(cands, byM["leave"]...)
		cands = append(cands, byM["ban"]...)
	}
	sort.Strings(cands)
	for _, u := range cands {
		if u == b.user || len(room.Heroes) >= 5 {
			continue
		}
		h := Hero{UserID: u}
		if ev, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", u); err == nil && ev != nil {
			var c struct {
				DisplayName string `json:"displayname"`
				AvatarURL   string `json:"avatar_url"`
			}
			_ = json.Unmarshal(ev.PDU.Content, &c)
			h.DisplayName, h.AvatarURL = c.DisplayName, c.AvatarURL
		}
		room.Heroes = append(room.Heroes, h)
	}
}

// membershipOnlyRoom is a room the user never joined and no longer is
// invited to: only their own membership event, in the timeline and as
// state, so clients (which take state from required_state) see the leave.
func (b *builder) membershipOnlyRoom(ctx context.Context, m storage.Membership, ev *rooms.Event, initial bool, rr *roomReq) *Room {
	room := &Room{Initial: initial, BumpStamp: m.StreamPos}
	if b.req.V4 {
		room.Membership = m.Membership
		room.Lists = slices.Sorted(slices.Values(rr.lists))
	}
	evs := b.s.rooms.FormatAll(ctx, []*rooms.Event{ev}, b.viewer, rooms.FormatOpts{OmitRoomID: true})
	room.Timeline, room.RequiredState = evs, evs
	live := 0
	if b.since.Pos > 0 && ev.StreamPos > b.since.Pos {
		live = 1
	}
	room.NumLive = &live
	return room
}

func ptrTo(v bool) *bool { return &v }

// inviteRoom is an invited (or knocked) room: its stripped state.
func (b *builder) inviteRoom(ctx context.Context, m storage.Membership, initial bool, rr *roomReq) *Room {
	room := &Room{Initial: initial, BumpStamp: m.StreamPos}
	if b.direct[m.RoomID] {
		room.IsDM = ptrTo(true)
	}
	if b.req.V4 {
		room.Membership = m.Membership
		room.Lists = slices.Sorted(slices.Values(rr.lists))
	}
	ev, err := b.s.rooms.Event(ctx, m.EventID)
	if err != nil {
		return room
	}
	state := b.s.rooms.InviteState(ctx, m.RoomID, ev.StateBefore, b.user)
	out := make([]rooms.StrippedState, 0, len(state)+1)
	for _, st := range state {
		if st.Type == "m.room.member" && st.StateKey == b.user {
			continue
		}
		out = append(out, st)
		switch st.Type {
		case "m.room.name":
			var c struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(st.Content, &c)
			room.Name = c.Name
		case "m.room.avatar":
			var c struct {
				URL string `json:"url"`
			}
			_ = json.Unmarshal(st.Content, &c)
			if c.URL != "" {
				room.Avatar, _ = json.Marshal(c.URL)
			}
		}
	}
	out = append(out, rooms.StrippedState{Content: json.RawMessage(ev.PDU.Content), Sender: ev.Sender, StateKey: *ev.StateKey, Type: ev.Type})
	if b.req.V4 {
		room.StrippedState = out
	} else {
		room.InviteState = out
	}
	var c struct {
		IsDirect bool `json:"is_direct"`
	}
	if json.Unmarshal(ev.PDU.Content, &c) == nil && c.IsDirect {
		room.IsDM = ptrTo(true)
	}
	if room.Name == "" {
		room.Heroes = []Hero{{UserID: ev.Sender}}
	}
	return room
}
