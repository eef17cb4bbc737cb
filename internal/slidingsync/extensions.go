package slidingsync

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
	"github.com/axon-matrix/axon/internal/threadsubs"
)

// maxToDevice bounds to-device messages per response.
const maxToDevice = 100

// scope returns the rooms an extension covers: the rooms of the named lists
// and the named subscriptions ("*" or absent means all of them).
func scope(e *Ext, want map[string]*roomReq) map[string]bool {
	all := func(names []string) bool {
		if names == nil {
			return true
		}
		for _, n := range names {
			if n == "*" {
				return true
			}
		}
		return false
	}
	allLists, allRooms := all(e.Lists), all(e.Rooms)
	lists := map[string]bool{}
	for _, n := range e.Lists {
		lists[n] = true
	}
	named := map[string]bool{}
	for _, n := range e.Rooms {
		named[n] = true
	}
	out := map[string]bool{}
	for roomID, rr := range want {
		if rr.subscribed && (allRooms || named[roomID]) {
			out[roomID] = true
			continue
		}
		for _, l := range rr.lists {
			if allLists || lists[l] {
				out[roomID] = true
			}
		}
	}
	return out
}

// newMember reports whether the client gets a joined room's ephemeral
// state for the first time: the room is new to the connection, or it had
// it only as an invite.
func (b *builder) newMember(roomID string) bool {
	sent, ok := b.prev.sent[roomID]
	return !ok || sent.invite
}

// joinedOnly keeps the rooms the user is joined to: receipts and typing of
// a room are for its members, not for someone invited or gone.
func (b *builder) joinedOnly(rooms map[string]bool) map[string]bool {
	for roomID := range rooms {
		if b.membership[roomID] != "join" {
			delete(rooms, roomID)
		}
	}
	return rooms
}

// extensions fills the extension responses and reports whether they carry
// nothing new.
func (b *builder) extensions(ctx context.Context, resp *Response, want map[string]*roomReq, next *connState) (bool, error) {
	empty := true
	x := &b.req.Extensions
	if x.ToDevice != nil && x.ToDevice.Enabled != nil && *x.ToDevice.Enabled {
		out, n, err := b.toDevice(ctx)
		if err != nil {
			return false, err
		}
		resp.Extensions["to_device"] = out
		empty = empty && n == 0
	}
	if x.E2EE.on() {
		out, n, err := b.e2ee(ctx)
		if err != nil {
			return false, err
		}
		resp.Extensions["e2ee"] = out
		empty = empty && n == 0
	}
	if x.AccountData.on() {
		out, n, err := b.accountData(ctx, scope(x.AccountData, want))
		if err != nil {
			return false, err
		}
		resp.Extensions["account_data"] = out
		empty = empty && n == 0
	}
	if x.Receipts.on() {
		out, n, err := b.receiptsExt(ctx, b.joinedOnly(scope(x.Receipts, want)))
		if err != nil {
			return false, err
		}
		resp.Extensions["receipts"] = out
		empty = empty && n == 0
	}
	if ts := x.ThreadSubscriptions; ts != nil && ts.Enabled != nil && *ts.Enabled && b.s.ThreadSubs != nil {
		limit := threadsubs.DefaultLimit
		if ts.Limit != nil {
			limit = *ts.Limit
		}
		page, err := b.s.ThreadSubs.Changes(ctx, b.user, b.since.Pos, b.to.Pos, limit, b.since.Pos == 0)
		if err != nil {
			return false, err
		}
		out := map[string]any{}
		if page.Subscribed != nil {
			out["subscribed"] = page.Subscribed
		}
		if page.Unsubscribed != nil {
			out["unsubscribed"] = page.Unsubscribed
		}
		if page.More != "" {
			out["prev_batch"] = page.More
		}
		resp.Extensions["io.element.msc4308.thread_subscriptions"] = out
		empty = empty && page.Len() == 0
	}
	if x.Typing.on() {
		rs := map[string]any{}
		for roomID := range b.joinedOnly(scope(x.Typing, want)) {
			users, ok := b.s.sync.Typing.Changed(roomID, b.since.Typing)
			if b.newMember(roomID) {
				users = b.s.sync.Typing.Now(roomID)
				ok = users != nil
			}
			if ok {
				if users == nil {
					users = []string{}
				}
				rs[roomID] = map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}}
			}
		}
		resp.Extensions["typing"] = map[string]any{"rooms": rs}
		empty = empty && len(rs) == 0
	}
	return empty, nil
}

func (b *builder) toDevice(ctx context.Context) (map[string]any, int, error) {
	x := b.req.Extensions.ToDevice
	since, _ := strconv.ParseInt(x.Since, 10, 64)
	db := b.s.db
	if since > 0 {
		if err := db.AckToDevice(ctx, b.user, b.device, since); err != nil {
			return nil, 0, err
		}
	}
	limit := x.Limit
	if limit <= 0 || limit > maxToDevice {
		limit = maxToDevice
	}
	events := []rawEvent{}
	nextBatch := since
	if db.StreamPosition(storage.StreamToDevice) > since {
		msgs, err := db.ToDeviceFor(ctx, b.user, b.device, b.to.Pos, limit)
		if err != nil {
			return nil, 0, err
		}
		for _, m := range msgs {
			if m.StreamPos <= since {
				continue
			}
			events = append(events, rawEvent{Type: m.Type, Sender: m.Sender, Content: json.RawMessage(m.Content)})
			nextBatch = max(nextBatch, m.StreamPos)
		}
	}
	return map[string]any{"next_batch": strconv.FormatInt(nextBatch, 10), "events": events}, len(events), nil
}

func (b *builder) e2ee(ctx context.Context) (map[string]any, int, error) {
	otk, fallback := b.s.sync.KeyCounts(ctx, b.user, b.device)
	changed, left := []string{}, []string{}
	db := b.s.db
	if b.since.Pos > 0 && db.StreamPosition(storage.StreamDeviceLists) > b.since.Pos {
		users, err := db.DeviceListChangesAfter(ctx, b.since.Pos, b.to.Pos)
		if err != nil {
			return nil, 0, err
		}
		if len(users) > 0 {
			shared, err := b.sharedUsers(ctx)
			if err != nil {
				return nil, 0, err
			}
			for _, u := range users {
				if shared[u] {
					changed = append(changed, u)
				}
			}
		}
	}
	if b.since.Pos > 0 {
		joined, gone, err := b.memberChanges(ctx)
		if err != nil {
			return nil, 0, err
		}
		if len(joined)+len(gone) > 0 {
			shared, err := b.sharedUsers(ctx)
			if err != nil {
				return nil, 0, err
			}
			seen := map[string]bool{}
			for _, u := range changed {
				seen[u] = true
			}
			for u := range joined {
				if !seen[u] && shared[u] {
					seen[u] = true
					changed = append(changed, u)
				}
			}
			for u := range gone {
				if !seen[u] && !shared[u] {
					seen[u] = true
					left = append(left, u)
				}
			}
		}
	}
	sort.Strings(changed)
	sort.Strings(left)
	if fallback == nil {
		fallback = []string{}
	}
	out := map[string]any{
		"device_one_time_keys_count":       otk,
		"device_unused_fallback_key_types": fallback,
		"device_lists":                     map[string]any{"changed": changed, "left": left},
	}
	return out, len(changed) + len(left), nil
}

// memberChanges returns the users who joined, and who left, rooms the user
// is (or was, until since) in, since the last response: the users whose
// devices the client starts or may stop tracking. Only rooms whose newest
// event is after since are read, found from the in-memory activity, rather
// than every event since then. The user's own join or leave counts all the
// room's members.
func (b *builder) memberChanges(ctx context.Context) (map[string]bool, map[string]bool, error) {
	s := b.s
	var roomIDs []string
	s.mu.Lock()
	for _, m := range b.mems {
		switch m.Membership {
		case "join":
			if s.mu.latest[m.RoomID] > b.since.Pos {
				roomIDs = append(roomIDs, m.RoomID)
			}
		case "leave", "ban":
			if m.StreamPos > b.since.Pos {
				roomIDs = append(roomIDs, m.RoomID)
			}
		}
	}
	s.mu.Unlock()
	if len(roomIDs) == 0 {
		return nil, nil, nil
	}
	changes, err := s.db.MemberChangesIn(ctx, roomIDs, b.since.Pos, b.to.Pos)
	if err != nil {
		return nil, nil, err
	}
	joined, gone := map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		switch {
		case c.UserID == b.user && c.Membership == "join":
			for _, u := range s.sync.Notifier.RoomMembers(ctx, c.RoomID) {
				joined[u] = true
			}
		case c.UserID == b.user && (c.Membership == "leave" || c.Membership == "ban"):
			for _, u := range s.sync.Notifier.RoomMembers(ctx, c.RoomID) {
				gone[u] = true
			}
		case storage.SharesRoom(c.Membership):
			// Invitees (and knockers) share the room for device lists,
			// as in sharedUsers.
			joined[c.UserID] = true
			delete(gone, c.UserID)
		case c.Membership == "leave" || c.Membership == "ban":
			gone[c.UserID] = true
			delete(joined, c.UserID)
		}
	}
	delete(joined, b.user)
	delete(gone, b.user)
	return joined, gone, nil
}

// sharedUsers returns the users sharing a room the user is joined to: its
// joined, invited and knocking members, as /sync counts them.
func (b *builder) sharedUsers(ctx context.Context) (map[string]bool, error) {
	mems, err := b.s.rooms.UserMemberships(ctx, b.user)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{b.user: true}
	for _, m := range mems {
		if m.Membership != "join" {
			continue
		}
		for _, u := range b.s.sync.Notifier.RoomMembers(ctx, m.RoomID) {
			out[u] = true
		}
	}
	return out, nil
}

func (b *builder) accountData(ctx context.Context, roomsInScope map[string]bool) (map[string]any, int, error) {
	global := []rawEvent{}
	perRoom := map[string][]rawEvent{}
	db := b.s.db
	n := 0
	if b.since.Pos == 0 || db.StreamPosition(storage.StreamAccountData) > b.since.Pos {
		ads, err := db.AccountDataAfter(ctx, b.user, b.since.Pos, b.to.Pos)
		if err != nil {
			return nil, 0, err
		}
		hasRules := false
		for _, a := range ads {
			ev := rawEvent{Type: a.Type, Content: json.RawMessage(a.Content)}
			if a.RoomID == "" {
				global = append(global, ev)
				hasRules = hasRules || a.Type == push.AccountDataType
				n++
			} else if roomsInScope[a.RoomID] {
				perRoom[a.RoomID] = append(perRoom[a.RoomID], ev)
				n++
			}
		}
		if b.since.Pos == 0 && !hasRules {
			if c, err := json.Marshal(b.s.sync.DefaultPushRules(b.user)); err == nil {
				global = append(global, rawEvent{Type: push.AccountDataType, Content: c})
			}
		}
	}
	// Rooms new to the connection get their room account data whole.
	var fresh []string
	for roomID := range roomsInScope {
		if _, ok := b.prev.sent[roomID]; !ok && b.since.Pos > 0 {
			fresh = append(fresh, roomID)
		}
	}
	if len(fresh) > 0 {
		ads, err := db.AccountDataAfter(ctx, b.user, 0, b.to.Pos)
		if err != nil {
			return nil, 0, err
		}
		isFresh := map[string]bool{}
		for _, r := range fresh {
			isFresh[r] = true
		}
		for _, a := range ads {
			if isFresh[a.RoomID] && a.StreamPos <= b.since.Pos {
				perRoom[a.RoomID] = append(perRoom[a.RoomID], rawEvent{Type: a.Type, Content: json.RawMessage(a.Content)})
				n++
			}
		}
	}
	return map[string]any{"global": global, "rooms": perRoom}, n, nil
}

func (b *builder) receiptsExt(ctx context.Context, roomsInScope map[string]bool) (map[string]any, int, error) {
	out := map[string]any{}
	byRoom := map[string][]storage.Receipt{}
	for _, r := range b.receipts {
		if roomsInScope[r.RoomID] {
			byRoom[r.RoomID] = append(byRoom[r.RoomID], r)
		}
	}
	for roomID := range roomsInScope {
		if !b.newMember(roomID) {
			continue
		}
		// New to the connection: the user's own receipts and those on the
		// events sent (as Synapse does), not every member's.
		from, ok := b.tlStart[roomID]
		if !ok {
			from = b.to.Pos + 1
		}
		rs, err := b.s.db.RoomReceiptsFrom(ctx, roomID, b.user, from)
		if err != nil {
			return nil, 0, err
		}
		byRoom[roomID] = rs
	}
	for roomID, rs := range byRoom {
		if c := sync.ReceiptContent(rs, b.user); c != nil {
			out[roomID] = map[string]any{"type": "m.receipt", "content": c}
		}
	}
	return map[string]any{"rooms": out}, len(out), nil
}
