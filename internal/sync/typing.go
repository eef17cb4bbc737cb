package sync

import (
	"sort"
	stdsync "sync"
	"time"

	"github.com/axon-matrix/axon/internal/storage"
)

// Typing keeps typing notifications in memory: they are ephemeral and a
// restart forgetting them is what users expect. Each change is published on
// the change feed (storage.KindTyping), which wakes the room's syncs and
// tells the application services.
type Typing struct {
	feed *storage.Feed

	mu     stdsync.Mutex
	serial int64
	rooms  map[string]*roomTyping
}

type roomTyping struct {
	serial int64
	users  map[string]*time.Timer
}

// NewTyping creates the typing tracker.
func NewTyping(feed *storage.Feed) *Typing {
	return &Typing{feed: feed, rooms: map[string]*roomTyping{}}
}

// changed publishes the users now typing in a room.
func (t *Typing) changed(roomID string, users []string) {
	t.feed.Publish(storage.Change{Kind: storage.KindTyping, Room: roomID, Users: users})
}

// MaxTypingTimeout caps how long a typing notice lasts without renewal.
const MaxTypingTimeout = 2 * time.Minute

// Set marks user as typing (for timeout) or not typing in a room.
func (t *Typing) Set(roomID, user string, typing bool, timeout time.Duration) {
	if timeout <= 0 || timeout > MaxTypingTimeout {
		timeout = 30 * time.Second
	}
	t.mu.Lock()
	rt := t.rooms[roomID]
	if rt == nil {
		rt = &roomTyping{users: map[string]*time.Timer{}}
		t.rooms[roomID] = rt
	}
	timer, was := rt.users[user]
	if was {
		timer.Stop()
		delete(rt.users, user)
	}
	if typing {
		rt.users[user] = time.AfterFunc(timeout, func() { t.expire(roomID, user) })
	}
	changed := typing != was
	var users []string
	if changed {
		t.serial++
		rt.serial = t.serial
		users = sortedUsers(rt)
	}
	t.mu.Unlock()
	if changed {
		t.changed(roomID, users)
	}
}

func (t *Typing) expire(roomID, user string) {
	t.mu.Lock()
	rt := t.rooms[roomID]
	if rt == nil {
		t.mu.Unlock()
		return
	}
	if _, ok := rt.users[user]; !ok {
		t.mu.Unlock()
		return
	}
	delete(rt.users, user)
	t.serial++
	rt.serial = t.serial
	users := sortedUsers(rt)
	t.mu.Unlock()
	t.changed(roomID, users)
}

func sortedUsers(rt *roomTyping) []string {
	users := make([]string, 0, len(rt.users))
	for u := range rt.users {
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}

// Serial is the current typing stream position.
func (t *Typing) Serial() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serial
}

// Changed returns the users typing in a room if its typing state changed
// after since, and whether it did. It answers incremental syncs only: since
// 0 is a real position (nobody had typed yet), so a stop after it is a
// change to send as an empty list. Syncs sending a room whole use Now.
func (t *Typing) Changed(roomID string, since int64) ([]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.rooms[roomID]
	if rt == nil {
		return nil, false
	}
	// A since past the current serial comes from before a restart (typing
	// lives in memory): send the room's state rather than nothing.
	if rt.serial <= since && since <= t.serial {
		return nil, false
	}
	return sortedUsers(rt), true
}

// Now returns the users typing in a room now, nil when nobody is: a room
// sent whole carries m.typing only when someone types.
func (t *Typing) Now(roomID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := t.rooms[roomID]
	if rt == nil || len(rt.users) == 0 {
		return nil
	}
	return sortedUsers(rt)
}
