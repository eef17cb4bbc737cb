// Package sync assembles /sync responses from the streams and wakes
// long-polling clients when something they can see changes.
package sync

import (
	"context"
	stdsync "sync"

	"github.com/axon-matrix/axon/internal/storage"
)

// Notifier wakes the long-polls of users. Each user has at most one channel
// at a time; waking closes it, so any number of that user's devices wake at
// once without per-waiter bookkeeping.
type Notifier struct {
	db *storage.DB

	mu      stdsync.Mutex
	waiting map[string]chan struct{}
	// members caches, per room, the users with join/invite/knock membership:
	// the users an event in that room can concern.
	members map[string]map[string]struct{}
	// peeks holds, per room, a channel closed by the room's next event:
	// what /events peeks of non-members wait on.
	peeks map[string]chan struct{}
}

// NewNotifier creates a notifier.
func NewNotifier(db *storage.DB) *Notifier {
	return &Notifier{db: db, waiting: map[string]chan struct{}{}, members: map[string]map[string]struct{}{},
		peeks: map[string]chan struct{}{}}
}

// Listen returns a channel closed at the user's next wake-up. Call it before
// checking for updates so no update can slip between check and wait.
func (n *Notifier) Listen(user string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.waiting[user]
	if !ok {
		ch = make(chan struct{})
		n.waiting[user] = ch
	}
	return ch
}

// ListenRoom returns a channel closed at the room's next event, for
// watchers who are not members (peeking). Call it before checking for
// events, like Listen.
func (n *Notifier) ListenRoom(roomID string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.peeks[roomID]
	if !ok {
		ch = make(chan struct{})
		n.peeks[roomID] = ch
	}
	return ch
}

// Wake wakes the given users.
func (n *Notifier) Wake(users ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.wakeLocked(users)
}

func (n *Notifier) wakeLocked(users []string) {
	for _, u := range users {
		if ch, ok := n.waiting[u]; ok {
			close(ch)
			delete(n.waiting, u)
		}
	}
}

// roomMembers returns the cached member set of a room, loading it if needed.
// Called with n.mu held.
func (n *Notifier) roomMembersLocked(ctx context.Context, roomID string) map[string]struct{} {
	if m, ok := n.members[roomID]; ok {
		return m
	}
	m := map[string]struct{}{}
	for _, ms := range []string{"join", "invite", "knock"} {
		users, err := n.db.RoomMembers(ctx, roomID, ms)
		if err != nil {
			continue
		}
		for _, u := range users {
			m[u] = struct{}{}
		}
	}
	n.members[roomID] = m
	return m
}

// WakeRoom wakes every member of a room.
func (n *Notifier) WakeRoom(ctx context.Context, roomID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for u := range n.roomMembersLocked(ctx, roomID) {
		if ch, ok := n.waiting[u]; ok {
			close(ch)
			delete(n.waiting, u)
		}
	}
}

// RoomMembers returns a snapshot of the users a room's events concern.
func (n *Notifier) RoomMembers(ctx context.Context, roomID string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.roomMembersLocked(ctx, roomID)
	out := make([]string, 0, len(m))
	for u := range m {
		out = append(out, u)
	}
	return out
}

// onChange is the feed subscriber: for a room event it updates the member
// cache and wakes everyone the event concerns, including a user who has
// just left, and the room's peekers; for other changes it wakes the users
// they concern.
func (n *Notifier) onChange(c storage.Change) {
	switch {
	case c.Kind == storage.KindReceipt && c.Type != "m.read.private", c.Kind == storage.KindTyping:
		// Public receipts and typing show in the room's ephemeral events.
		n.WakeRoom(context.Background(), c.Room)
		return
	case c.Kind == storage.KindDeviceList:
		// The user and everyone sharing a room with them (including rooms
		// the user is only invited to: their members track invitees).
		ctx := context.Background()
		n.Wake(c.Users...)
		rooms, err := n.db.RoomsSharedBy(ctx, c.Users[0])
		if err != nil {
			return
		}
		for _, r := range rooms {
			n.WakeRoom(ctx, r)
		}
		return
	case c.Kind != storage.KindEvent:
		// Other changes concern their users.
		n.Wake(c.Users...)
		return
	}
	ctx := context.Background()
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.peeks[c.Room]; ok {
		close(ch)
		delete(n.peeks, c.Room)
	}
	m := n.roomMembersLocked(ctx, c.Room)
	for u := range m {
		if ch, ok := n.waiting[u]; ok {
			close(ch)
			delete(n.waiting, u)
		}
	}
	if c.Type == "m.room.member" && len(c.Users) == 1 {
		target := c.Users[0]
		n.wakeLocked(c.Users)
		switch c.Membership {
		case "join", "invite", "knock":
			m[target] = struct{}{}
		default:
			delete(m, target)
		}
	}
}
