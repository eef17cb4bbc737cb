package sync

import (
	"context"
	"sort"
	stdsync "sync"
	"time"
)

// Typing keeps typing notifications in memory: they are ephemeral and a
// restart forgetting them is what users expect.
type Typing struct {
	notifier *Notifier

	// OnChange, if set, is told the users typing in a room after every
	// change (application services get typing in their transactions).
	// Set it before use.
	OnChange func(roomID string, users []string)

	mu     stdsync.Mutex
	serial int64
	rooms  map[string]*roomTyping
}

type roomTyping struct {
	serial int64
	users  map[string]*time.Timer
}

// NewTyping creates the typing tracker.
func NewTyping(n *Notifier) *Typing {
	return &Typing{notifier: n, rooms: map[string]*roomTyping{}}
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
		t.notifier.WakeRoom(context.Background(), roomID)
		if t.OnChange != nil {
			t.OnChange(roomID, users)
		}
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
	t.notifier.WakeRoom(context.Background(), roomID)
	if t.OnChange != nil {
		t.OnChange(roomID, users)
	}
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
