package storage

import (
	"sync"
	"sync/atomic"
)

// Kind says what a Change is about, so that a subscriber can skip what it
// does not care for with one comparison.
type Kind uint8

// The kinds of change.
const (
	// KindEvent: a room event entered the stream (accepted events only;
	// rejected and soft-failed ones are not announced). Type is the event
	// type, EventID its ID, StateKey its state key (nil for a message); for
	// m.room.member, Users holds the target and Membership its new
	// membership.
	KindEvent Kind = iota + 1
	// KindAccountData: an account data entry of Users[0] was written; Room
	// is "" for a global entry, Type is the entry's type.
	KindAccountData
	// KindReceipt: Users[0] moved a receipt of type Type in Room.
	KindReceipt
	// KindToDevice: to-device messages were queued for Users.
	KindToDevice
	// KindDeviceList: the devices or keys of Users[0] changed; the users
	// sharing a room with them see it in device_lists.changed.
	KindDeviceList
	// KindTyping: the users typing in Room are now Users (in memory, not
	// stored: published with Feed.Publish, without a position).
	KindTyping
	// KindKeyCounts: the one-time or fallback key counts of device Device
	// of Users[0] may have changed (no stream: /sync reads them afresh).
	KindKeyCounts
	// KindThreadSubscription: Users[0] subscribed to or unsubscribed from
	// a thread in Room (MSC4306); it rides the account data stream.
	KindThreadSubscription
)

// Change is one committed change, as the feed announces it.
type Change struct {
	Kind Kind
	// Stream and Position are where the change sits in the streams, for
	// changes that have a position (zero otherwise).
	Stream   Stream
	Position int64
	// Room is the room the change is in, if any.
	Room string
	// Users are the users the change concerns directly (for an event: the
	// target of a membership change), beyond the members of Room.
	Users []string
	// Type is the event type or account data type.
	Type string
	// EventID and StateKey are the event's, for KindEvent.
	EventID  string
	StateKey *string
	// Membership is the target's membership after an m.room.member event.
	Membership string
	// Device is the device, for KindKeyCounts.
	Device string
}

// Feed carries committed changes to the subscribers registered at start-up,
// in commit order. It is the seam a multi-node backend fills from its
// database's notifications instead of from local commits; callers only
// Subscribe.
//
// Subscribers run on the writer's goroutine after the commit (and after
// the write lock is released, so other writes proceed), one change at a
// time: they must be quick, must not write to storage themselves (a
// subscriber that has to write starts a goroutine) and must not wait for
// anything a writer holds.
type Feed struct {
	// deliver orders deliveries: a writer takes it before releasing the
	// write lock, so changes reach subscribers in commit order.
	deliver sync.Mutex
	subs    atomic.Pointer[[]func(Change)]
}

// Subscribe registers fn for every change from now on. Register at
// start-up, before writes begin. Subscribers are called in the order they
// registered: caches register before the notifier that wakes their readers.
func (f *Feed) Subscribe(fn func(Change)) {
	for {
		old := f.subs.Load()
		var subs []func(Change)
		if old != nil {
			subs = append(subs, *old...)
		}
		subs = append(subs, fn)
		if f.subs.CompareAndSwap(old, &subs) {
			return
		}
	}
}

// Publish announces changes that did not come from a storage write (typing
// notifications live in memory). Storage writes announce theirs with
// Tx.Changed.
func (f *Feed) Publish(changes ...Change) {
	f.deliver.Lock()
	defer f.deliver.Unlock()
	f.deliverLocked(changes)
}

func (f *Feed) deliverLocked(changes []Change) {
	subs := f.subs.Load()
	if subs == nil {
		return
	}
	for _, c := range changes {
		for _, fn := range *subs {
			fn(c)
		}
	}
}

// Feed is the database's change feed.
func (db *DB) Feed() *Feed { return &db.feed }

// Changed records a change this transaction makes, announced on the feed
// once it has committed (never if it rolls back).
func (tx *Tx) Changed(c Change) { tx.changes = append(tx.changes, c) }

// OnCommit runs fn right after the commit, before the new positions become
// visible and before the feed announces the changes: the place for a writer
// to update in-memory state derived from the rows, so that a reader woken
// by the feed (or seeing the new position) finds both. fn runs under the
// write lock and must be quick.
func (tx *Tx) OnCommit(fn func()) { tx.onCommit = append(tx.onCommit, fn) }

func accountDataChange(userID, roomID, typ string, pos int64) Change {
	return Change{Kind: KindAccountData, Stream: StreamAccountData, Position: pos, Room: roomID, Users: []string{userID}, Type: typ}
}
