package appservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	stdsync "sync"
	"time"

	"github.com/axon-matrix/axon/internal/presence"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Transactions. Each service with a URL has one worker goroutine, which
// alternates between two steps:
//
//   - deliver the oldest queued transaction (PUT
//     /_matrix/app/v1/transactions/{txnId}), retrying it with exponential
//     back-off, same ID and same body, until the service accepts it;
//   - with nothing queued, read the streams after the worker's cursors
//     (events; with receive_ephemeral also receipts, presence and to-device
//     messages; with MSC3202 device list changes), add the typing and key
//     count changes noted in memory, keep what the service is interested in,
//     and store that as the next transaction, moving the cursors in the same
//     database transaction.
//
// The streams are the durable log, so a service that is down makes the
// worker stop reading, not lose events, and a restart resumes from the
// stored queue and cursors. New events wake the workers; nothing polls.

// Batch limits: events per transaction, and stream rows read per step.
const (
	maxTxnEvents = 100
	scanBatch    = 500
)

// cursorSaveInterval bounds how often cursor moves that produced no
// transaction are written: a busy server must not cost a write per event
// per service. Losing such a move only means reading those events again.
const cursorSaveInterval = 10 * time.Second

type worker struct {
	s    *Service
	reg  *Registration
	wake chan struct{}

	cur   storage.AppServiceCursors
	dirty bool
	saved time.Time
	// delivered is the last transaction the service accepted, deleted
	// is the last one deleted from the queue: deletion waits for the next
	// write (or for the worker to go idle). After a crash in between, the
	// service gets the delivered one again under its ID, which the spec
	// makes a no-op for it.
	delivered, deleted int64

	// pendingMu guards typing and counts.
	pendingMu stdsync.Mutex
	// typing holds the latest typing users of rooms that changed since the
	// last transaction (memory only: typing is ephemeral anyway).
	typing map[string][]string
	// counts are the devices of the service's users whose key counts
	// changed since the last transaction (MSC3202; memory only, like
	// typing: what a restart loses is made good by queueAllCounts).
	counts map[[2]string]bool
}

// Kick wakes every worker (new events or receipts).
func (s *Service) Kick() {
	if s == nil {
		return
	}
	for _, w := range s.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// TypingChanged queues a room's typing users for the services that
// receive ephemeral data, and wakes them.
func (s *Service) TypingChanged(roomID string, users []string) {
	if s == nil {
		return
	}
	for _, w := range s.workers {
		if !w.reg.ReceiveEphemeral {
			continue
		}
		w.pendingMu.Lock()
		if w.typing == nil {
			w.typing = map[string][]string{}
		}
		w.typing[roomID] = users
		w.pendingMu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// untakeTyping puts back typing states a failed step took, unless a newer
// state of the room arrived meanwhile.
func (w *worker) untakeTyping(t map[string][]string) {
	if len(t) == 0 {
		return
	}
	w.pendingMu.Lock()
	defer w.pendingMu.Unlock()
	if w.typing == nil {
		w.typing = map[string][]string{}
	}
	for roomID, users := range t {
		if _, newer := w.typing[roomID]; !newer {
			w.typing[roomID] = users
		}
	}
}

// KeyCountsChanged queues a device whose key counts changed for the
// services with MSC3202 that own its user, and wakes them.
func (s *Service) KeyCountsChanged(user, device string) {
	if s == nil {
		return
	}
	for _, w := range s.workers {
		if !w.reg.MSC3202 || !w.reg.InUserNamespace(user) {
			continue
		}
		w.pendingMu.Lock()
		if w.counts == nil {
			w.counts = map[[2]string]bool{}
		}
		w.counts[[2]string{user, device}] = true
		w.pendingMu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *worker) takeCounts() map[[2]string]bool {
	w.pendingMu.Lock()
	defer w.pendingMu.Unlock()
	c := w.counts
	w.counts = nil
	return c
}

func (w *worker) untakeCounts(c map[[2]string]bool) {
	if len(c) == 0 {
		return
	}
	w.pendingMu.Lock()
	defer w.pendingMu.Unlock()
	if w.counts == nil {
		w.counts = map[[2]string]bool{}
	}
	for k := range c {
		w.counts[k] = true
	}
}

func (w *worker) takeTyping() map[string][]string {
	w.pendingMu.Lock()
	defer w.pendingMu.Unlock()
	t := w.typing
	w.typing = nil
	return t
}

// Start loads the workers' cursors (a service seen for the first time
// starts at the current positions: history is not replayed) and runs them
// until ctx ends; Wait waits for them.
func (s *Service) Start(ctx context.Context) error {
	// The senders follow the change feed from here: subscribed after every
	// cache (server.New builds them first), so a sender woken by a change
	// reads fresh counts.
	if len(s.workers) > 0 {
		s.db.Feed().Subscribe(s.onChange)
	}
	for _, w := range s.workers {
		c, ok, err := s.db.AppServiceState(ctx, w.reg.ID)
		if err != nil {
			return fmt.Errorf("appservice %s: state: %w", w.reg.ID, err)
		}
		if !ok {
			c = storage.AppServiceCursors{Events: s.db.StreamPosition(storage.StreamEvents),
				Receipts: s.db.StreamPosition(storage.StreamReceipts), Presence: s.db.StreamPosition(storage.StreamPresence),
				ToDevice: s.db.StreamPosition(storage.StreamToDevice), DeviceLists: s.db.StreamPosition(storage.StreamDeviceLists)}
			if err := s.db.SaveAppServiceCursors(ctx, w.reg.ID, c); err != nil {
				return fmt.Errorf("appservice %s: state: %w", w.reg.ID, err)
			}
		}
		w.cur, w.saved = c, time.Now()
		if w.reg.MSC3202 {
			if err := w.queueAllCounts(ctx); err != nil {
				return fmt.Errorf("appservice %s: key counts: %w", w.reg.ID, err)
			}
		}
		s.wg.Add(1)
		go w.run(ctx)
	}
	return nil
}

// queueAllCounts queues the key counts of every device of the service's
// users that has keys: counts only travel when they change, and changes
// made while the server was down (or before a crash lost the ones noted
// in memory) would otherwise never reach the service.
func (w *worker) queueAllCounts(ctx context.Context) error {
	devices, err := w.s.db.KeyedDevices(ctx)
	if err != nil {
		return err
	}
	w.pendingMu.Lock()
	defer w.pendingMu.Unlock()
	for _, d := range devices {
		if !w.reg.InUserNamespace(d[0]) {
			continue
		}
		if w.counts == nil {
			w.counts = map[[2]string]bool{}
		}
		w.counts[d] = true
	}
	if len(w.counts) > 0 {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Wait returns once the started workers have stopped.
func (s *Service) Wait() { s.wg.Wait() }

func (w *worker) run(ctx context.Context) {
	defer w.s.wg.Done()
	defer w.saveCursors(context.WithoutCancel(ctx), true)
	attempts := 0
	var next *storage.AppServiceTxn // the transaction to send, when known
	for ctx.Err() == nil {
		txn := next
		if txn == nil {
			var err error
			if txn, err = w.s.db.OldestAppServiceTxn(ctx, w.reg.ID, w.delivered); err != nil {
				w.logErr("read queue", err)
				w.sleep(ctx, 5*time.Second)
				continue
			}
		}
		if txn == nil {
			built, err := w.build(ctx)
			if err != nil {
				w.logErr("build transaction", err)
				w.sleep(ctx, 5*time.Second)
				continue
			}
			if built != nil {
				next = built
				continue
			}
			w.deleteDelivered(ctx)
			w.saveCursors(ctx, false)
			w.idle(ctx)
			continue
		}
		next = txn
		if err := w.send(ctx, txn); err != nil {
			if ctx.Err() != nil {
				return
			}
			delay := w.backoff(attempts)
			attempts++
			w.s.log.Info("appservice transaction failed, will retry", "appservice", w.reg.ID, "txn", txn.ID,
				"attempt", attempts, "in", delay, "err", err)
			w.sleep(ctx, delay)
			continue
		}
		attempts = 0
		w.delivered, next = txn.ID, nil
	}
}

// deleteDelivered removes delivered transactions no later write took
// with it.
func (w *worker) deleteDelivered(ctx context.Context) {
	if w.delivered <= w.deleted {
		return
	}
	if err := w.s.db.DeleteAppServiceTxns(ctx, w.reg.ID, w.delivered); err != nil {
		w.logErr("delete delivered transactions", err)
		return
	}
	w.deleted = w.delivered
}

func (w *worker) logErr(what string, err error) {
	if err != nil {
		w.s.log.Error("appservice: "+what, "appservice", w.reg.ID, "err", err)
	}
}

func (w *worker) backoff(attempts int) time.Duration {
	w.s.mu.Lock()
	base, maxDelay := w.s.baseBackoff, w.s.maxBackoff
	w.s.mu.Unlock()
	d := base << min(attempts, 30)
	if d <= 0 || d > maxDelay {
		d = maxDelay
	}
	return d
}

// sleep waits for d or the end of ctx; wake-ups do not shorten a back-off.
func (w *worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// batchDelay is how long a woken worker lets more events arrive before it
// builds a transaction: on a busy server, one transaction (one write, one
// request) then carries the events of a few milliseconds instead of one.
const batchDelay = 10 * time.Millisecond

// idle waits for new events (or for the pending cursor save).
func (w *worker) idle(ctx context.Context) {
	wait := time.Hour
	if w.dirty {
		wait = cursorSaveInterval
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
		w.sleep(ctx, batchDelay)
	case <-t.C:
	}
}

func (w *worker) saveCursors(ctx context.Context, force bool) {
	if force {
		w.deleteDelivered(ctx)
	}
	if !w.dirty || (!force && time.Since(w.saved) < cursorSaveInterval) {
		return
	}
	if err := w.s.db.SaveAppServiceCursors(ctx, w.reg.ID, w.cur); err != nil {
		w.logErr("save cursors", err)
		return
	}
	w.dirty, w.saved = false, time.Now()
}

// txnBody is the body of PUT /_matrix/app/v1/transactions/{txnId}.
type txnBody struct {
	Events    []rooms.ClientEvent `json:"events"`
	Ephemeral []map[string]any    `json:"ephemeral,omitempty"`
	// ToDevice is MSC2409's to-device part (MSC4203), under the name
	// mautrix-based bridges read first.
	ToDevice []map[string]any `json:"to_device,omitempty"`
	// The same two lists under MSC2409's unstable names, for the services
	// that asked with its unstable switch (Registration.MSC2409Names).
	MSC2409Ephemeral []map[string]any `json:"de.sorunome.msc2409.ephemeral,omitempty"`
	MSC2409ToDevice  []map[string]any `json:"de.sorunome.msc2409.to_device,omitempty"`
	// MSC3202, under its unstable names.
	DeviceLists  *deviceLists                         `json:"org.matrix.msc3202.device_lists,omitempty"`
	OTKCounts    map[string]map[string]map[string]int `json:"org.matrix.msc3202.device_one_time_keys_count,omitempty"`
	FallbackKeys map[string]map[string][]string       `json:"org.matrix.msc3202.device_unused_fallback_key_types,omitempty"`
}

// deviceLists is MSC3202's device_lists: users whose devices changed.
type deviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

// maxTxnToDevice bounds the to-device messages per transaction.
const maxTxnToDevice = 100

// build reads the streams after the cursors and queues a transaction with
// what concerns the service; it returns the transaction, or nil when there
// was nothing for the service.
func (w *worker) build(ctx context.Context) (queued *storage.AppServiceTxn, err error) {
	db := w.s.db
	evUpto := db.StreamPosition(storage.StreamEvents)
	rcUpto := db.StreamPosition(storage.StreamReceipts)
	prUpto := db.StreamPosition(storage.StreamPresence)
	tdUpto := db.StreamPosition(storage.StreamToDevice)
	dlUpto := db.StreamPosition(storage.StreamDeviceLists)
	typing, counts := w.takeTyping(), w.takeCounts()
	defer func() {
		if err != nil { // for the next attempt
			w.untakeTyping(typing)
			w.untakeCounts(counts)
		}
	}()
	if w.cur.Events >= evUpto && len(typing) == 0 && len(counts) == 0 &&
		(!w.reg.ReceiveEphemeral || (w.cur.Receipts >= rcUpto && w.cur.Presence >= prUpto && w.cur.ToDevice >= tdUpto)) &&
		(!w.reg.MSC3202 || w.cur.DeviceLists >= dlUpto) {
		return nil, nil
	}
	interest := map[string]bool{} // by room, for this step
	body := txnBody{Events: []rooms.ClientEvent{}}
	var leaves, joins []storage.MemberChange // MSC3202: users who left or joined rooms
	evCur := w.cur.Events
	for evCur < evUpto && len(body.Events) < maxTxnEvents {
		rows, err := db.EventsAfter(ctx, evCur, evUpto, scanBatch)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			evCur = evUpto
			break
		}
		evs, err := w.s.rooms.Wrap(ctx, rows)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if len(body.Events) == maxTxnEvents {
				break
			}
			evCur = ev.StreamPos
			if w.reg.MSC3202 && ev.Type == "m.room.member" && ev.StateKey != nil {
				switch m := rooms.MembershipOf(ev); {
				case m == "leave" || m == "ban":
					leaves = append(leaves, storage.MemberChange{RoomID: ev.RoomID, UserID: *ev.StateKey, Membership: m})
				case storage.SharesRoom(m):
					// Invitees and knockers share the room for device
					// lists, as in /sync.
					if w.isNewMembership(ctx, ev, m) {
						joins = append(joins, storage.MemberChange{RoomID: ev.RoomID, UserID: *ev.StateKey, Membership: m})
					}
				}
			}
			ok, err := w.interested(ctx, ev, interest)
			if err != nil {
				return nil, err
			}
			if ok {
				body.Events = append(body.Events, w.s.rooms.Format(ctx, ev, rooms.Viewer{}, rooms.FormatOpts{NoAggregations: true}))
			}
		}
		if len(rows) < scanBatch && len(body.Events) < maxTxnEvents {
			evCur = evUpto
		}
	}
	next := storage.AppServiceCursors{Events: evCur, Receipts: rcUpto, Presence: prUpto, ToDevice: tdUpto, DeviceLists: dlUpto}
	if w.reg.MSC3202 {
		if err := w.msc3202(ctx, dlUpto, counts, leaves, joins, interest, &body); err != nil {
			return nil, err
		}
	}
	var consumed []int64
	if w.reg.ReceiveEphemeral && w.cur.ToDevice < tdUpto {
		if next.ToDevice, consumed, err = w.toDevice(ctx, tdUpto, &body); err != nil {
			return nil, err
		}
	}
	if w.reg.ReceiveEphemeral && w.cur.Receipts < rcUpto {
		receipts, err := db.ReceiptsAfter(ctx, w.cur.Receipts, rcUpto)
		if err != nil {
			return nil, err
		}
		edus, err := w.receiptEDUs(ctx, receipts, interest)
		if err != nil {
			return nil, err
		}
		body.Ephemeral = append(body.Ephemeral, edus...)
	}
	if w.reg.ReceiveEphemeral && w.cur.Presence < prUpto {
		updates, err := db.PresenceAfter(ctx, w.cur.Presence, prUpto)
		if err != nil {
			return nil, err
		}
		edus, err := w.presenceEDUs(ctx, updates, interest)
		if err != nil {
			return nil, err
		}
		body.Ephemeral = append(body.Ephemeral, edus...)
	}
	typingRooms := make([]string, 0, len(typing))
	for roomID := range typing {
		typingRooms = append(typingRooms, roomID)
	}
	sort.Strings(typingRooms)
	for _, roomID := range typingRooms {
		ok, err := w.roomInterest(ctx, roomID, interest)
		if err != nil {
			return nil, err
		}
		if ok {
			body.Ephemeral = append(body.Ephemeral, map[string]any{"type": "m.typing", "room_id": roomID,
				"content": map[string]any{"user_ids": typing[roomID]}})
		}
	}
	if len(body.Events) == 0 && len(body.Ephemeral) == 0 && len(body.ToDevice) == 0 &&
		body.DeviceLists == nil && len(body.OTKCounts) == 0 {
		next.LastTxn = w.cur.LastTxn
		w.cur, w.dirty = next, true
		return nil, nil
	}
	if w.reg.MSC2409Names {
		body.MSC2409Ephemeral, body.MSC2409ToDevice = body.Ephemeral, body.ToDevice
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	now := w.s.now().UnixMilli()
	if next.LastTxn, err = db.AddAppServiceTxn(ctx, w.reg.ID, b, next, now, consumed, w.delivered); err != nil {
		return nil, err
	}
	w.cur, w.dirty, w.saved, w.deleted = next, false, time.Now(), w.delivered
	return &storage.AppServiceTxn{ID: next.LastTxn, Body: b, CreatedTS: now}, nil
}

// interested applies the spec's rules to an event: its sender or state key
// is in the users namespaces, or its room is interesting.
func (w *worker) interested(ctx context.Context, ev *rooms.Event, cache map[string]bool) (bool, error) {
	if w.reg.InUserNamespace(ev.Sender) || (ev.StateKey != nil && w.reg.InUserNamespace(*ev.StateKey)) {
		return true, nil
	}
	return w.roomInterest(ctx, ev.RoomID, cache)
}

// roomInterest: the room ID or one of its aliases is in the namespaces, or
// a joined member is one of the service's users. Answers are cached for
// one build step.
func (w *worker) roomInterest(ctx context.Context, roomID string, cache map[string]bool) (bool, error) {
	if v, ok := cache[roomID]; ok {
		return v, nil
	}
	v, err := w.roomInterestUncached(ctx, roomID)
	if err != nil {
		return false, err
	}
	cache[roomID] = v
	return v, nil
}

func (w *worker) roomInterestUncached(ctx context.Context, roomID string) (bool, error) {
	if w.reg.InRoomNamespace(roomID) {
		return true, nil
	}
	if len(w.reg.Aliases) > 0 {
		aliases, err := w.s.db.RoomAliases(ctx, roomID)
		if err != nil {
			return false, err
		}
		for _, a := range aliases {
			if w.reg.InAliasNamespace(a) {
				return true, nil
			}
		}
	}
	members, err := w.s.rooms.MembersByMembership(ctx, roomID)
	if err != nil {
		return false, err
	}
	for _, u := range members["join"] {
		if w.reg.InUserNamespace(u) {
			return true, nil
		}
	}
	return false, nil
}

// receiptEDUs turns receipts in interesting rooms into m.receipt events
// with a room_id, one per room. Private receipts go only to the service
// that owns their user.
func (w *worker) receiptEDUs(ctx context.Context, receipts []storage.Receipt, cache map[string]bool) ([]map[string]any, error) {
	var out []map[string]any
	byRoom := map[string]map[string]map[string]map[string]any{}
	var order []string
	for _, r := range receipts {
		if r.Type == "m.read.private" && !w.reg.InUserNamespace(r.UserID) {
			continue
		}
		if r.Type != "m.read" && r.Type != "m.read.private" {
			continue
		}
		ok, err := w.roomInterest(ctx, r.RoomID, cache)
		if err != nil {
			return nil, err
		}
		if !ok && !w.reg.InUserNamespace(r.UserID) {
			continue
		}
		content := byRoom[r.RoomID]
		if content == nil {
			content = map[string]map[string]map[string]any{}
			byRoom[r.RoomID] = content
			order = append(order, r.RoomID)
		}
		if content[r.EventID] == nil {
			content[r.EventID] = map[string]map[string]any{}
		}
		if content[r.EventID][r.Type] == nil {
			content[r.EventID][r.Type] = map[string]any{}
		}
		rec := map[string]any{"ts": r.TS}
		if r.ThreadID != "" {
			rec["thread_id"] = r.ThreadID
		}
		content[r.EventID][r.Type][r.UserID] = rec
	}
	for _, roomID := range order {
		out = append(out, map[string]any{"type": "m.receipt", "room_id": roomID, "content": byRoom[roomID]})
	}
	return out, nil
}

// toDevice adds the to-device messages for the service's users' devices
// after the cursor (up to upto, at most maxTxnToDevice) to body. It returns
// the new cursor and the messages to delete with the transaction's commit:
// those of users in an exclusive namespace, whose devices only the service
// reads (MSC2409's suggestion); others stay for a client that syncs them.
func (w *worker) toDevice(ctx context.Context, upto int64, body *txnBody) (int64, []int64, error) {
	rows, err := w.s.db.ToDeviceAfter(ctx, w.cur.ToDevice, upto, maxTxnToDevice)
	if err != nil {
		return 0, nil, err
	}
	cur := upto
	if len(rows) == maxTxnToDevice {
		cur = rows[len(rows)-1].StreamPos
	}
	var consumed []int64
	for _, m := range rows {
		if !w.reg.InUserNamespace(m.UserID) {
			continue
		}
		body.ToDevice = append(body.ToDevice, map[string]any{"type": m.Type, "sender": m.Sender,
			"content": json.RawMessage(m.Content), "to_user_id": m.UserID, "to_device_id": m.DeviceID})
		if w.reg.ExclusiveUser(m.UserID) {
			consumed = append(consumed, m.StreamPos)
		}
	}
	return cur, consumed, nil
}

// presenceEDUs turns presence updates into m.presence events for the users
// the service cares about: its own, and those in a room it is interested
// in.
func (w *worker) presenceEDUs(ctx context.Context, updates []storage.Presence, cache map[string]bool) ([]map[string]any, error) {
	var out []map[string]any
	for _, p := range updates {
		ok, err := w.userInterest(ctx, p.UserID, cache)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, map[string]any{"type": "m.presence", "sender": p.UserID, "content": presence.Content(p)})
		}
	}
	return out, nil
}

// userInterest: the user is one of the service's, or shares a room the
// service is interested in: is joined to, invited to or knocking on it, as
// /sync and /keys/changes count sharing a room (clients encrypt for
// invitees too).
func (w *worker) userInterest(ctx context.Context, userID string, cache map[string]bool) (bool, error) {
	if w.reg.InUserNamespace(userID) {
		return true, nil
	}
	rooms, err := w.s.db.RoomsSharedBy(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, roomID := range rooms {
		if ok, err := w.roomInterest(ctx, roomID, cache); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// msc3202 adds the device list changes of the users the service cares
// about, the users it no longer shares a room with, and the key counts of
// its users' devices that changed.
func (w *worker) msc3202(ctx context.Context, upto int64, counts map[[2]string]bool, leaves, joins []storage.MemberChange, cache map[string]bool, body *txnBody) error {
	changed, err := w.joinedUsers(ctx, joins, cache)
	if err != nil {
		return err
	}
	if w.cur.DeviceLists < upto {
		users, err := w.s.db.DeviceListChangesAfter(ctx, w.cur.DeviceLists, upto)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, u := range changed {
			seen[u] = true
		}
		for _, u := range users {
			if seen[u] {
				continue
			}
			ok, err := w.userInterest(ctx, u, cache)
			if err != nil {
				return err
			}
			if ok {
				changed = append(changed, u)
				seen[u] = true
			}
		}
	}
	sort.Strings(changed)
	left, err := w.leftUsers(ctx, leaves, cache)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		gone := map[string]bool{}
		for _, u := range left {
			gone[u] = true
		}
		kept := changed[:0]
		for _, u := range changed {
			if !gone[u] {
				kept = append(kept, u)
			}
		}
		changed = kept
	}
	if len(changed) > 0 || len(left) > 0 {
		if changed == nil {
			changed = []string{}
		}
		if left == nil {
			left = []string{}
		}
		body.DeviceLists = &deviceLists{Changed: changed, Left: left}
	}
	if len(counts) == 0 || w.s.KeyCounts == nil {
		return nil
	}
	body.OTKCounts = map[string]map[string]map[string]int{}
	body.FallbackKeys = map[string]map[string][]string{}
	for k := range counts {
		user, device := k[0], k[1]
		otks, fallback := w.s.KeyCounts(ctx, user, device)
		if body.OTKCounts[user] == nil {
			body.OTKCounts[user] = map[string]map[string]int{}
			body.FallbackKeys[user] = map[string][]string{}
		}
		body.OTKCounts[user][device] = otks
		body.FallbackKeys[user][device] = fallback
	}
	return nil
}

// isNewMembership tells a membership m from a repeat of it (a profile
// change replacing a join, a repeated invite), which does not make anyone
// newly share a room. A join after an invite is new: a service user's
// join is what makes the service share the room.
func (w *worker) isNewMembership(ctx context.Context, ev *rooms.Event, m string) bool {
	if ev.Replaces == "" {
		return true
	}
	prev, err := w.s.rooms.Event(ctx, ev.Replaces)
	return err != nil || prev == nil || rooms.MembershipOf(prev) != m
}

// joinedUsers adds to MSC3202's device_lists.changed, as /sync does, the
// users who may newly share a room with the service's users: whoever
// joined, was invited to or knocked on a room the service is interested
// in, and the joined, invited and knocking members of a room one of its
// users joined. The service's own users are left out: it knows when they
// join.
func (w *worker) joinedUsers(ctx context.Context, joins []storage.MemberChange, cache map[string]bool) ([]string, error) {
	set := map[string]bool{}
	for _, j := range joins {
		if w.reg.InUserNamespace(j.UserID) {
			// Only a join makes the service share the room (as only
			// joined rooms count for a /sync user).
			if j.Membership != "join" {
				continue
			}
			members, err := w.s.db.RoomSharingMembers(ctx, j.RoomID)
			if err != nil {
				return nil, err
			}
			for _, u := range members {
				if !w.reg.InUserNamespace(u) {
					set[u] = true
				}
			}
			continue
		}
		ok, err := w.roomInterest(ctx, j.RoomID, cache)
		if err != nil {
			return nil, err
		}
		if ok {
			set[j.UserID] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	return out, nil
}

// leftUsers computes MSC3202's device_lists.left as /sync does for a
// user: the users who shared a room with the service before the leaves
// seen in this step and share none now. The candidates are whoever left
// a room the service is (or was, until its own user left it in this
// step) interested in (a rejected invite included), and the remaining
// joined, invited and knocking members of a room one of its users left;
// a candidate the service is still interested in (one of its users, or
// sharing one of its rooms) is not gone.
func (w *worker) leftUsers(ctx context.Context, leaves []storage.MemberChange, cache map[string]bool) ([]string, error) {
	if len(leaves) == 0 {
		return nil, nil
	}
	ownLeft := map[string]bool{} // rooms one of the service's users left
	for _, l := range leaves {
		if w.reg.InUserNamespace(l.UserID) {
			ownLeft[l.RoomID] = true
		}
	}
	candidates := map[string]bool{}
	for roomID := range ownLeft {
		members, err := w.s.db.RoomSharingMembers(ctx, roomID)
		if err != nil {
			return nil, err
		}
		for _, u := range members {
			candidates[u] = true
		}
	}
	for _, l := range leaves {
		if w.reg.InUserNamespace(l.UserID) || candidates[l.UserID] {
			continue
		}
		ok := ownLeft[l.RoomID]
		if !ok {
			var err error
			if ok, err = w.roomInterest(ctx, l.RoomID, cache); err != nil {
				return nil, err
			}
		}
		if ok {
			candidates[l.UserID] = true
		}
	}
	var left []string
	for u := range candidates {
		still, err := w.userInterest(ctx, u, cache)
		if err != nil {
			return nil, err
		}
		if !still {
			left = append(left, u)
		}
	}
	sort.Strings(left)
	return left, nil
}

// send delivers one transaction; any non-2xx answer is a failure to retry.
func (w *worker) send(ctx context.Context, txn *storage.AppServiceTxn) error {
	status, body, err := w.s.call(ctx, w.s.client, w.reg, http.MethodPut, "/_matrix/app/v1/transactions/"+strconv.FormatInt(txn.ID, 10), nil, txn.Body)
	if err != nil {
		return err
	}
	w.s.answered(w.reg)
	if status < 200 || status > 299 {
		if len(body) > 200 {
			body = body[:200]
		}
		return fmt.Errorf("application service answered %d: %s", status, body)
	}
	return nil
}

// onChange wakes the senders for events and for the ephemeral data,
// to-device messages and device list changes (MSC3202) services may
// receive, and queues typing and key counts.
func (s *Service) onChange(c storage.Change) {
	switch c.Kind {
	case storage.KindEvent, storage.KindReceipt, storage.KindToDevice, storage.KindDeviceList:
		s.Kick()
	case storage.KindTyping:
		s.TypingChanged(c.Room, c.Users)
	case storage.KindKeyCounts:
		s.KeyCountsChanged(c.Users[0], c.Device)
	}
}
