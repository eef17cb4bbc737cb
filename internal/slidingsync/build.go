package slidingsync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
)

// entry is a candidate room for the lists.
type entry struct {
	m     storage.Membership
	stamp int64
}

// roomReq is the merged configuration of one room in the response.
type roomReq struct {
	timelineLimit int
	// cfgs are the required_state of each rule the room matched; a state
	// entry is wanted if any of them wants it (their union), each applying
	// its own exclusions.
	cfgs []RequiredState
	lazy bool
	// lists are the names of the lists whose ranges hold the room.
	lists      []string
	subscribed bool
}

func (rr *roomReq) inList(name string) bool {
	return slices.Contains(rr.lists, name)
}

func (rr *roomReq) add(cfg RoomConfig) {
	rr.timelineLimit = max(rr.timelineLimit, min(max(cfg.TimelineLimit, 0), maxTimelineLimit))
	if len(cfg.RequiredState.Pairs) > 0 {
		rr.cfgs = append(rr.cfgs, cfg.RequiredState)
	}
	for _, p := range cfg.RequiredState.Pairs {
		if p == [2]string{"m.room.member", "$LAZY"} {
			rr.lazy = true
		}
	}
}

// wants reports whether the combined config asks for a state entry (lazy
// members aside).
func (rr *roomReq) wants(k storage.StateKey, me string) bool {
	match := func(p [2]string) bool {
		if p[0] != "*" && p[0] != k.Type {
			return false
		}
		switch p[1] {
		case "*":
			return true
		case "$ME":
			return k.StateKey == me
		case "$LAZY":
			return false
		}
		return p[1] == k.StateKey
	}
	for _, c := range rr.cfgs {
		in := false
		for _, p := range c.Pairs {
			if match(p) {
				in = true
				break
			}
		}
		if !in {
			continue
		}
		out := false
		for _, p := range c.Exclude {
			if match(p) {
				out = true
				break
			}
		}
		if !out {
			return true
		}
	}
	return false
}

// stateKey is a canonical form of the combined required_state, kept per
// room on the connection to tell when the client asks for more state.
func (rr *roomReq) stateKey() string {
	seen := map[string]bool{}
	var keys []string
	for _, c := range rr.cfgs {
		prefix := "+"
		if len(c.Exclude) > 0 {
			// A config with exclusions is kept whole: its entries only
			// mean something together.
			var parts []string
			for _, p := range c.Pairs {
				parts = append(parts, "+"+p[0]+"\x00"+p[1])
			}
			for _, p := range c.Exclude {
				parts = append(parts, "-"+p[0]+"\x00"+p[1])
			}
			sort.Strings(parts)
			prefix = "=" + strings.Join(parts, "\x02")
			if !seen[prefix] {
				seen[prefix] = true
				keys = append(keys, prefix)
			}
			continue
		}
		for _, p := range c.Pairs {
			k := prefix + p[0] + "\x00" + p[1]
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x01")
}

// stateExpanded reports whether the required_state now covers entries the
// one last sent (old, a stateKey) did not: only then is state resent.
func stateExpanded(old, now string) bool {
	if old == now {
		return false
	}
	had := map[string]bool{}
	for _, k := range strings.Split(old, "\x01") {
		had[k] = true
	}
	if had["+*\x00*"] {
		return false
	}
	for _, k := range strings.Split(now, "\x01") {
		if k != "" && !had[k] {
			return true
		}
	}
	return false
}

type builder struct {
	s      *Service
	user   string
	device string
	req    *Request
	prev   *connState
	since  sync.Token
	to     sync.Token
	viewer rooms.Viewer
	direct map[string]bool
	// mems are the user's memberships (every room, any membership).
	mems []storage.Membership
	// membership is the user's membership per room.
	membership map[string]string
	// ownReceipts are rooms where the user's receipts changed (new counts).
	ownReceipts map[string]bool
	receipts    []storage.Receipt
	// tlStart is the stream position of the first timeline event sent per
	// room (receipts for rooms new to the connection start there).
	tlStart map[string]int64
	// listKeys memoizes the required_state key of rooms matched by one
	// list only (most rooms when a window covers thousands).
	listKeys map[string]string
}

// stateKeyOf is rr.stateKey(), computed once per list for rooms only that
// list holds.
func (b *builder) stateKeyOf(rr *roomReq) string {
	if rr.subscribed || len(rr.lists) != 1 {
		return rr.stateKey()
	}
	k, ok := b.listKeys[rr.lists[0]]
	if !ok {
		k = rr.stateKey()
		b.listKeys[rr.lists[0]] = k
	}
	return k
}

func (s *Service) build(ctx context.Context, user, device string, req *Request, prev *connState) (*Response, *connState, bool, error) {
	s.builds.Add(1)
	b := &builder{s: s, user: user, device: device, req: req, prev: prev,
		to:     sync.Token{Pos: s.db.Position(), Typing: s.sync.Typing.Serial()},
		viewer: rooms.Viewer{UserID: user, DeviceID: device}, tlStart: map[string]int64{}, listKeys: map[string]string{}}
	if prev != nil {
		b.since = prev.token
	} else {
		prev = &connState{sent: map[string]roomSent{}}
		b.prev = prev
	}
	next := &connState{token: b.to, sent: make(map[string]roomSent, len(prev.sent)), counts: map[string]int{}}
	for k, v := range prev.sent {
		next.sent[k] = v
	}
	resp := &Response{Lists: map[string]ListResult{}, Rooms: map[string]*Room{}, Extensions: map[string]any{}}

	mems, err := s.rooms.UserMemberships(ctx, user)
	if err != nil {
		return nil, nil, false, err
	}
	// Invites from users the user ignores are not shown (rooms/ignored.go).
	if mems, err = s.rooms.WithoutIgnoredInvites(ctx, user, mems); err != nil {
		return nil, nil, false, err
	}
	b.mems = mems
	removed, err := s.removedRooms(ctx, user)
	if err != nil {
		return nil, nil, false, err
	}
	byRoom := make(map[string]storage.Membership, len(mems))
	b.membership = make(map[string]string, len(mems))
	var cands []entry
	ids := make([]string, 0, len(mems))
	for _, m := range mems {
		byRoom[m.RoomID] = m
		b.membership[m.RoomID] = m.Membership
		switch m.Membership {
		case "join", "invite", "knock":
		default:
			// Rooms the user was kicked or banned from stay listed (the
			// MSC), so a client that was away learns of it, except bans
			// from rooms they never had; a room the user left is listed
			// once, in the response after the leave.
			if seen, ok := removed[m.RoomID]; ok {
				if !seen {
					continue
				}
				break
			}
			if b.since.Pos == 0 || m.StreamPos <= b.since.Pos || m.StreamPos > b.to.Pos {
				continue
			}
		}
		cands = append(cands, entry{m: m})
		ids = append(ids, m.RoomID)
	}
	if err := s.ensureActivity(ctx, user, ids); err != nil {
		return nil, nil, false, err
	}
	// Only lists need the rooms in order; a connection without any (Element
	// X's encryption sync) skips sorting every room on each wake-up.
	if len(req.Lists) > 0 {
		cands = s.inLastOrder(user, cands)
		s.mu.Lock()
		for i := range cands {
			e := &cands[i]
			if e.m.Membership == "join" {
				// Lists follow the newest event of any kind (the MSC: rooms are
				// not ordered by bump_stamp), so any change to a room brings it
				// into a [0,N] window where the client sees it; clients sort
				// their own display by bump_stamp.
				e.stamp = max(s.mu.latest[e.m.RoomID], e.m.StreamPos)
			} else {
				e.stamp = e.m.StreamPos
			}
		}
		s.mu.Unlock()
		slices.SortFunc(cands, func(x, y entry) int {
			if c := cmp.Compare(y.stamp, x.stamp); c != 0 {
				return c
			}
			return strings.Compare(x.m.RoomID, y.m.RoomID)
		})
		s.rememberOrder(user, cands)
	}

	needMeta, needDirect := false, true
	for _, l := range req.Lists {
		if f := l.Filters; f != nil && (f.IsEncrypted != nil || f.RoomTypes != nil || f.NotRoomTypes != nil) {
			needMeta = true
		}
	}
	if needMeta {
		if err := s.ensureMeta(ctx, user); err != nil {
			return nil, nil, false, err
		}
	}
	if needDirect && (len(req.Lists) > 0 || len(req.RoomSubscriptions) > 0) {
		if b.direct, err = b.directRooms(ctx); err != nil {
			return nil, nil, false, err
		}
	}

	want := map[string]*roomReq{}
	get := func(roomID string) *roomReq {
		rr := want[roomID]
		if rr == nil {
			rr = &roomReq{}
			want[roomID] = rr
		}
		return rr
	}
	var spaceChildren map[string]map[string]bool
	countsChanged := false
	for name, l := range req.Lists {
		var filtered []entry
		if l.Filters != nil && len(l.Filters.Spaces) > 0 {
			if spaceChildren == nil {
				spaceChildren = map[string]map[string]bool{}
			}
			b.spaceChildren(ctx, l.Filters.Spaces, byRoom, spaceChildren)
		}
		for _, e := range cands {
			if b.matches(e, l.Filters, spaceChildren) {
				filtered = append(filtered, e)
			}
		}
		resp.Lists[name] = ListResult{Count: len(filtered)}
		next.counts[name] = len(filtered)
		if old, ok := prev.counts[name]; !ok || old != len(filtered) {
			countsChanged = true
		}
		ranges := l.Ranges
		if len(l.Range) == 2 {
			ranges = append(ranges[:len(ranges):len(ranges)], l.Range)
		} else if l.Ranges == nil && l.Range == nil {
			// The MSC: a list without a range covers every matching room.
			ranges = [][]int{{0, len(filtered) - 1}}
		}
		for _, r := range ranges {
			if len(r) != 2 || r[0] < 0 || r[1] < r[0] {
				continue
			}
			for i := r[0]; i <= r[1] && i < len(filtered); i++ {
				rr := get(filtered[i].m.RoomID)
				if rr.inList(name) {
					continue // overlapping ranges of one list
				}
				rr.add(l.RoomConfig)
				rr.lists = append(rr.lists, name)
			}
		}
	}
	for roomID, cfg := range req.RoomSubscriptions {
		if _, ok := byRoom[roomID]; !ok {
			continue
		}
		rr := get(roomID)
		rr.add(cfg)
		rr.subscribed = true
	}

	if b.since.Pos > 0 && s.db.StreamPosition(storage.StreamReceipts) > b.since.Pos {
		if b.receipts, err = s.db.ReceiptsAfter(ctx, b.since.Pos, b.to.Pos); err != nil {
			return nil, nil, false, err
		}
		b.ownReceipts = map[string]bool{}
		for _, r := range b.receipts {
			if r.UserID == user {
				b.ownReceipts[r.RoomID] = true
			}
		}
	}

	for roomID, rr := range want {
		room, sent, err := b.room(ctx, byRoom[roomID], rr)
		if err != nil {
			return nil, nil, false, err
		}
		next.sent[roomID] = sent
		if room != nil {
			resp.Rooms[roomID] = room
		}
	}
	// Rooms left long ago are forgotten by the connection.
	for roomID := range next.sent {
		if m, ok := byRoom[roomID]; !ok || (m.Membership != "join" && m.Membership != "invite" && m.Membership != "knock" && want[roomID] == nil) {
			delete(next.sent, roomID)
		}
	}

	extEmpty, err := b.extensions(ctx, resp, want, next)
	if err != nil {
		return nil, nil, false, err
	}
	empty := len(resp.Rooms) == 0 && !countsChanged && extEmpty
	return resp, next, empty, nil
}

// matches applies a list's filters.
func (b *builder) matches(e entry, f *Filters, spaceChildren map[string]map[string]bool) bool {
	if f == nil {
		return true
	}
	roomID := e.m.RoomID
	isInvite := f.IsInvite
	if isInvite == nil {
		isInvite = f.IsInvited
	}
	if isInvite != nil && *isInvite != (e.m.Membership == "invite") {
		return false
	}
	if f.IsDM != nil && *f.IsDM != b.direct[roomID] {
		return false
	}
	if f.IsEncrypted != nil || f.RoomTypes != nil || f.NotRoomTypes != nil {
		meta := b.s.metaOf(roomID)
		if f.IsEncrypted != nil && *f.IsEncrypted != meta.encrypted {
			return false
		}
		typeIn := func(list []*string) bool {
			for _, t := range list {
				if (t == nil && meta.roomType == nil) || (t != nil && meta.roomType != nil && *t == *meta.roomType) {
					return true
				}
			}
			return false
		}
		if f.RoomTypes != nil && !typeIn(f.RoomTypes) {
			return false
		}
		if f.NotRoomTypes != nil && typeIn(f.NotRoomTypes) {
			return false
		}
	}
	if len(f.Spaces) > 0 {
		ok := false
		for _, sp := range f.Spaces {
			if spaceChildren[sp][roomID] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// spaceChildren adds to out the m.space.child state of the spaces not read
// yet. Only spaces the user is joined to count (the MSC): others stay empty,
// so a list cannot probe the children of a space the user cannot see.
func (b *builder) spaceChildren(ctx context.Context, spaces []string, byRoom map[string]storage.Membership, out map[string]map[string]bool) {
	for _, sp := range spaces {
		if _, done := out[sp]; done {
			continue
		}
		out[sp] = map[string]bool{}
		if m, ok := byRoom[sp]; !ok || m.Membership != "join" {
			continue
		}
		st, err := b.s.rooms.CurrentState(ctx, sp)
		if err != nil {
			continue
		}
		for k := range st {
			if k.Type == "m.space.child" {
				ev, err := b.s.rooms.CurrentStateEvent(ctx, sp, k.Type, k.StateKey)
				if err == nil && ev != nil && len(ev.PDU.Content) > 2 {
					var c struct {
						Via []string `json:"via"`
					}
					if json.Unmarshal(ev.PDU.Content, &c) == nil && len(c.Via) > 0 {
						out[sp][k.StateKey] = true
					}
				}
			}
		}
	}
}

// directRooms reads the user's m.direct account data.
func (b *builder) directRooms(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	raw, err := b.s.db.GetAccountData(ctx, b.user, "", "m.direct")
	if errors.Is(err, storage.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var c map[string][]string
	if json.Unmarshal(raw, &c) == nil {
		for _, rs := range c {
			for _, r := range rs {
				out[r] = true
			}
		}
	}
	return out, nil
}

// inLastOrder puts the candidates in the order of the user's previous
// request, so sorting them again (most stamps unchanged) is close to linear
// rather than a full sort of every room on every request.
func (s *Service) inLastOrder(user string, cands []entry) []entry {
	s.orderMu.Lock()
	last := s.order[user]
	s.orderMu.Unlock()
	if len(last) == 0 {
		return cands
	}
	at := make(map[string]int, len(cands))
	for i, e := range cands {
		at[e.m.RoomID] = i
	}
	out := make([]entry, 0, len(cands))
	for _, roomID := range last {
		if i, ok := at[roomID]; ok {
			out = append(out, cands[i])
			delete(at, roomID)
		}
	}
	for _, e := range cands {
		if _, ok := at[e.m.RoomID]; ok {
			out = append(out, e)
		}
	}
	return out
}

// rememberOrder keeps the user's sorted room order for the next request.
func (s *Service) rememberOrder(user string, cands []entry) {
	ids := make([]string, len(cands))
	for i, e := range cands {
		ids[i] = e.m.RoomID
	}
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	if _, ok := s.order[user]; !ok && len(s.order) >= maxConns {
		s.order = map[string][]string{}
	}
	s.order[user] = ids
}
