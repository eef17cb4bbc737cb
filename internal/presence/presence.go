// Package presence keeps users' presence (online, unavailable, offline and
// a status message), set explicitly or by syncing, and shows it to the
// users who share a room with them.
package presence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Presence states.
const (
	Online      = "online"
	Unavailable = "unavailable"
	Offline     = "offline"
)

// ValidState reports whether s is a presence state.
func ValidState(s string) bool { return s == Online || s == Unavailable || s == Offline }

// syncBump is how stale last_active may get before a syncing client bumps
// it. Bumps are stream writes, so they are rationed; it stays below the
// five minutes after which currently_active turns false, so an active user
// never looks inactive. A bump that changes nothing else wakes nobody
// (see visibleChange).
const syncBump = 4 * time.Minute

// Notifier wakes long-polls; *sync.Notifier is one.
type Notifier interface {
	Wake(users ...string)
	RoomMembers(ctx context.Context, roomID string) []string
}

// Service reads and writes presence.
type Service struct {
	db         *storage.DB
	notifier   Notifier
	serverName string
	now        func() time.Time

	// cache holds users' stored presence for FromSync, which every /sync
	// request calls and which almost always finds nothing to change: the
	// hit spares a database read per sync (one per room member for each
	// message in a busy room). Every write goes through store, which
	// drops the entry.
	cache *loadcache.Map[string, storage.Presence]
}

// maxCached bounds the cache; past it, it starts over.
const maxCached = 100000

// New creates the service.
func New(db *storage.DB, n Notifier, serverName string) *Service {
	return &Service{db: db, notifier: n, serverName: serverName, now: time.Now, cache: loadcache.New[string, storage.Presence](maxCached)}
}

// Set is an explicit presence change by the user: state, and the status
// message (nil clears it).
func (s *Service) Set(ctx context.Context, userID, state string, statusMsg *string) error {
	if !ValidState(state) {
		return mxerr.InvalidParam("Unknown presence state %q", state)
	}
	cur, err := s.current(ctx, userID)
	if err != nil {
		return err
	}
	p := storage.Presence{UserID: userID, State: state, StatusMsg: statusMsg, LastActiveTS: cur.LastActiveTS}
	if state == Online {
		p.LastActiveTS = s.now().UnixMilli()
	}
	return s.store(ctx, p, 0)
}

// FromSync applies a /sync request's set_presence: "online" (the default
// when empty) marks the user online and active, "unavailable" marks them
// idle, and "offline" leaves presence untouched, as the spec says. The
// status message is kept.
func (s *Service) FromSync(ctx context.Context, userID, state string) error {
	if state == "" {
		state = Online
	}
	switch state {
	case Offline:
		return nil
	case Online, Unavailable:
	default:
		return mxerr.InvalidParam("Unknown set_presence value %q", state)
	}
	cur, err := s.cached(ctx, userID)
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	p := storage.Presence{UserID: userID, State: state, StatusMsg: cur.StatusMsg, LastActiveTS: cur.LastActiveTS}
	if state == Online {
		p.LastActiveTS = now
	}
	// Most syncs change nothing: answer them from the read pool without
	// taking the write lock.
	if cur.State == p.State && (state != Online || now-cur.LastActiveTS < syncBump.Milliseconds()) {
		return nil
	}
	return s.store(ctx, p, syncBump.Milliseconds())
}

// current returns the stored presence, or an offline one never active.
func (s *Service) current(ctx context.Context, userID string) (storage.Presence, error) {
	p, err := s.db.GetPresence(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Presence{UserID: userID, State: Offline}, nil
	}
	if err != nil {
		return storage.Presence{}, fmt.Errorf("get presence: %w", err)
	}
	return *p, nil
}

// cached is current, answered from the cache when it can be.
func (s *Service) cached(ctx context.Context, userID string) (storage.Presence, error) {
	return s.cache.Load(userID, func() (storage.Presence, error) { return s.current(ctx, userID) })
}

func (s *Service) store(ctx context.Context, p storage.Presence, bumpOnlyAfter int64) error {
	prev, changed, err := s.db.SetPresence(ctx, p, bumpOnlyAfter)
	s.cache.Forget(p.UserID)
	if err != nil {
		return fmt.Errorf("set presence: %w", err)
	}
	if changed && s.visibleChange(prev, p) {
		s.notifier.Wake(s.audience(ctx, p.UserID)...)
	}
	return nil
}

// visibleChange reports whether others would see a difference between two
// presences: state, status message, or currently_active. A last_active
// refresh alone is not one: last_active_ago is computed when presence is
// read, so a client sees the new value at its next sync, and waking every
// room-mate's long-poll for it (each active user's syncs do it every few
// minutes) would cost a /sync response per room-mate for nothing they
// show. The write still moves the presence stream, so the syncs that
// happen anyway carry the fresh value.
func (s *Service) visibleChange(prev *storage.Presence, p storage.Presence) bool {
	if prev == nil || prev.State != p.State || (prev.StatusMsg == nil) != (p.StatusMsg == nil) ||
		(prev.StatusMsg != nil && *prev.StatusMsg != *p.StatusMsg) {
		return true
	}
	now := s.now()
	return CurrentlyActive(*prev, now) != CurrentlyActive(p, now)
}

// audience is the user and everyone sharing a room with them.
func (s *Service) audience(ctx context.Context, userID string) []string {
	seen := map[string]bool{userID: true}
	out := []string{userID}
	joined, err := s.db.JoinedRooms(ctx, userID)
	if err != nil {
		return out
	}
	for _, roomID := range joined {
		for _, u := range s.notifier.RoomMembers(ctx, roomID) {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Get returns target's presence as seen by viewer: themselves or a user
// sharing a room with them.
func (s *Service) Get(ctx context.Context, viewer, target string) (map[string]any, error) {
	if !s.isLocal(target) {
		return nil, mxerr.NotFound("No presence known for %s", target)
	}
	if _, err := s.db.GetUser(ctx, target); errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Unknown user %s", target)
	} else if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	if viewer != target {
		ok, err := s.db.ShareRoom(ctx, viewer, target)
		if err != nil {
			return nil, fmt.Errorf("shared rooms: %w", err)
		}
		if !ok {
			return nil, mxerr.Forbidden("You are not allowed to see their presence")
		}
	}
	p, err := s.db.GetPresence(ctx, target)
	if errors.Is(err, storage.ErrNotFound) {
		return map[string]any{"presence": Offline}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get presence: %w", err)
	}
	c := Content(*p)
	if p.LastActiveTS == 0 {
		delete(c, "last_active_ago")
	}
	return c, nil
}

func (s *Service) isLocal(userID string) bool {
	for i := 1; i < len(userID); i++ {
		if userID[i] == ':' {
			return userID[0] == '@' && userID[i+1:] == s.serverName
		}
	}
	return false
}

// CurrentlyActive is the currently_active of a presence at time now: online
// and active in the last five minutes. Like last_active_ago it is computed
// when presence is read, not stored.
func CurrentlyActive(p storage.Presence, now time.Time) bool {
	return p.State == Online && now.Sub(time.UnixMilli(p.LastActiveTS)) < activeWindow
}

// activeWindow is how long after its last activity a user stays
// currently_active.
const activeWindow = 5 * time.Minute

// Content renders a presence row as m.presence content.
func Content(p storage.Presence) map[string]any {
	c := map[string]any{
		"presence":         p.State,
		"last_active_ago":  time.Since(time.UnixMilli(p.LastActiveTS)).Milliseconds(),
		"currently_active": CurrentlyActive(p, time.Now()),
	}
	if p.StatusMsg != nil {
		c["status_msg"] = *p.StatusMsg
	}
	return c
}
