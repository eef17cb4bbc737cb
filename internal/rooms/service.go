// Package rooms is the heart of the server: it builds, signs, authorises and
// persists room events, one writer per room, and answers questions about
// room state at any event.
package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/json/v2"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// DefaultRoomVersion is what createRoom uses when the client names none,
// unless default_room_version says otherwise: the spec's recommendation.
const DefaultRoomVersion = id.RoomVersion("12")

// SupportedVersions are the room versions this server creates and joins.
var SupportedVersions = []id.RoomVersion{"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}

// IsSupported reports whether v is a room version we create and join.
func IsSupported(v id.RoomVersion) bool {
	for _, s := range SupportedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// SetDefaultVersion sets the version of rooms created without one, before
// the service is used. Some clients still in distributions cannot handle
// version 12 rooms (Nheko 0.11.3 wants room IDs with :server); a server for
// them sets 11.
func (s *Service) SetDefaultVersion(v id.RoomVersion) error {
	if !IsSupported(v) {
		return fmt.Errorf("room version %q is not supported (supported: %s to %s)", v, SupportedVersions[0], SupportedVersions[len(SupportedVersions)-1])
	}
	s.defaultVersion = v
	return nil
}

// DefaultVersion is the version of rooms created without one.
func (s *Service) DefaultVersion() id.RoomVersion { return s.defaultVersion }

// Event is a stored PDU with its parsed form.
type Event struct {
	storage.Event
	PDU     *pdu.PDU
	Version id.RoomVersion
}

// IsState reports whether the event is a state event.
func (e *Event) IsState() bool { return e.StateKey != nil }

// Listener is told about every accepted event after its room writer let go.
// Whatever only needs to wake or invalidate follows the storage change feed
// instead; a listener may write and may take the room writer (push rules
// following an upgrade copy rules before the join returns).
type Listener func(ev *Event)

// Service manages rooms.
type Service struct {
	db         *storage.DB
	serverName string
	keyID      id.KeyID
	key        ed25519.PrivateKey
	log        *slog.Logger
	now        func() time.Time

	mu        sync.Mutex
	roomsByID map[string]*room
	// versions maps room IDs to their (immutable) versions, readable
	// without a room's lock: formatting an event that missed the cache
	// needs the version while that room's writer may hold the lock.
	versions sync.Map

	events *lru[string, *Event]
	groups *lru[int64, storage.StateMap]

	listenersMu sync.RWMutex
	listeners   []Listener

	// threadRoots is the set of events with thread replies, so formatting
	// an event asks storage for a thread summary only when there is one.
	// lastCreateTS makes create-event timestamps strictly increasing: a v12
	// room ID is the hash of its create event, so two rooms created by one
	// user in the same millisecond would otherwise collide.
	lastCreateTS atomic.Int64

	// userRooms caches each user's memberships by room (loaded on first
	// use, kept current by sendLocked): every /sync asks for them.
	userRooms *loadcache.Map[string, map[string]storage.Membership]

	// QueryUnknownUser, if set, is asked before an invite (also one of
	// createRoom) to a local user that does not exist, and reports whether
	// the user exists now (an application service whose namespace covers
	// the name may create it). Its error (the service did not answer) is
	// the client's.
	QueryUnknownUser func(ctx context.Context, userID string) (bool, error)
	// QueryUnknownAlias is the same for a local alias that a join or knock
	// names: a service may create the room and the alias.
	QueryUnknownAlias func(ctx context.Context, alias string) (bool, error)

	threadRootsOnce sync.Once
	threadRootsMu   sync.RWMutex
	threadRoots     map[string]struct{}

	ignored ignoredCache // ignored.go

	writer roomWriter

	// defaultVersion is the version of rooms created without one
	// (default_room_version); set once before serving.
	defaultVersion id.RoomVersion

	// resolve is state resolution, for events that fork from the room's
	// current state (pipeline.go).
	resolve ResolveFunc
}

// ResolveFunc resolves state sets for a room version: the state that
// follows from the states after several prev events.
type ResolveFunc func(ctx context.Context, version id.RoomVersion, sets []storage.StateMap) (storage.StateMap, error)

// room is the in-memory head of one room. Writers (one at a time, through
// Service.writer) build, authorise and persist events against it; readers
// take its view, which is replaced whole after each accepted event and
// never changed in place, so reads never wait for a write.
type room struct {
	mu     sync.Mutex // processWriter's lock
	loaded bool
	id     string
	// extremities are the room's forward extremities: the events the next
	// local event cites as its prev events. depth is the greatest depth.
	// Both belong to the writer.
	extremities []string
	depth       int64
	view        atomic.Pointer[roomView]
}

// roomView is a room's current state as readers see it.
type roomView struct {
	version  id.RoomVersion
	creator  string
	group    int64
	chainLen int64
	state    storage.StateMap
	// members maps users to their current membership, for summaries and
	// member counts without reading member events.
	members map[string]string
}

// v is the room's view; the room must be loaded.
func (r *room) v() *roomView { return r.view.Load() }

// roomWriter gives each room one writer at a time: the seam where a
// deployment of several nodes takes a database lock instead.
type roomWriter interface {
	lock(ctx context.Context, r *room) error
	unlock(r *room)
}

// processWriter serialises a room's writes within this process.
type processWriter struct{}

func (processWriter) lock(_ context.Context, r *room) error { r.mu.Lock(); return nil }
func (processWriter) unlock(r *room)                        { r.mu.Unlock() }

// New creates the service.
func New(db *storage.DB, serverName string, keyID id.KeyID, key ed25519.PrivateKey, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		db: db, serverName: serverName, keyID: keyID, key: key, log: log,
		now:            time.Now,
		defaultVersion: DefaultRoomVersion,
		roomsByID:      make(map[string]*room),
		userRooms:      loadcache.New[string, map[string]storage.Membership](maxCachedUsers),
		ignored:        ignoredCache{lists: loadcache.New[string, map[string]bool](maxIgnoredCache)},
		events:         newLRU[string, *Event](4096),
		// State maps weigh their entries: some 256k entries a generation
		// (tens of MB) hold thousands of small rooms' states or a few big ones.
		groups: newWeightedLRU[int64, storage.StateMap](256<<10, func(m storage.StateMap) int { return len(m) }),
	}
	s.resolve = s.resolveState
	s.writer = processWriter{}
	db.Feed().Subscribe(s.evictGuests)
	db.Feed().Subscribe(s.ignoredChanged)
	return s
}

// IsThreadRoot reports whether an event has thread replies.
func (s *Service) IsThreadRoot(ctx context.Context, eventID string) bool {
	s.threadRootsOnce.Do(func() {
		ids, err := s.db.ThreadRootIDs(ctx)
		s.threadRootsMu.Lock()
		defer s.threadRootsMu.Unlock()
		s.threadRoots = make(map[string]struct{}, len(ids))
		if err != nil {
			s.log.Error("load thread roots", "err", err)
		}
		for _, id := range ids {
			s.threadRoots[id] = struct{}{}
		}
	})
	s.threadRootsMu.RLock()
	defer s.threadRootsMu.RUnlock()
	_, ok := s.threadRoots[eventID]
	return ok
}

func (s *Service) addThreadRoot(ctx context.Context, eventID string) {
	s.IsThreadRoot(ctx, eventID) // make sure the set is loaded first
	s.threadRootsMu.Lock()
	s.threadRoots[eventID] = struct{}{}
	s.threadRootsMu.Unlock()
}

// createTS returns a timestamp for a create event, later than any before.
func (s *Service) createTS() int64 {
	for {
		now, last := s.now().UnixMilli(), s.lastCreateTS.Load()
		if now <= last {
			now = last + 1
		}
		if s.lastCreateTS.CompareAndSwap(last, now) {
			return now
		}
	}
}

// ServerName is the server's Matrix name.
func (s *Service) ServerName() string { return s.serverName }

// Subscribe registers a listener for new events (see Listener).
func (s *Service) Subscribe(l Listener) {
	s.listenersMu.Lock()
	defer s.listenersMu.Unlock()
	s.listeners = append(s.listeners, l)
}

func (s *Service) publish(ev *Event) {
	s.listenersMu.RLock()
	defer s.listenersMu.RUnlock()
	for _, l := range s.listeners {
		l(ev)
	}
}

// getRoom returns the in-memory room, loading it on first use. The caller
// must hold r.mu while using the mutable fields.
func (s *Service) getRoom(roomID string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roomsByID[roomID]
	if !ok {
		r = &room{id: roomID}
		s.roomsByID[roomID] = r
	}
	return r
}

// lockRoom makes the caller the room's writer and makes sure the room is
// loaded; s.writer.unlock(r) ends that.
func (s *Service) lockRoom(ctx context.Context, roomID string) (*room, error) {
	r := s.getRoom(roomID)
	if err := s.writer.lock(ctx, r); err != nil {
		return nil, err
	}
	if r.loaded {
		return r, nil
	}
	if err := s.loadRoom(ctx, r); err != nil {
		s.writer.unlock(r)
		return nil, err
	}
	return r, nil
}

// readRoom returns the room's current view, loading the room on first use.
func (s *Service) readRoom(ctx context.Context, roomID string) (*roomView, error) {
	if v := s.getRoom(roomID).view.Load(); v != nil {
		return v, nil
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer s.writer.unlock(r)
	return r.v(), nil
}

// loadRoom reads a room from storage. The caller is its writer.
func (s *Service) loadRoom(ctx context.Context, r *room) error {
	roomID := r.id
	row, err := s.db.GetRoom(ctx, roomID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return mxerr.NotFound("Unknown room %s", roomID)
		}
		return fmt.Errorf("load room %s: %w", roomID, err)
	}
	state, err := s.db.CurrentState(ctx, roomID)
	if err != nil {
		return fmt.Errorf("load room %s state: %w", roomID, err)
	}
	chain, err := s.chainLen(ctx, row.StateGroup)
	if err != nil {
		return err
	}
	members, err := s.db.CurrentMemberships(ctx, roomID)
	if err != nil {
		return fmt.Errorf("load room %s members: %w", roomID, err)
	}
	extremities, err := s.db.ForwardExtremities(ctx, roomID)
	if err != nil {
		return fmt.Errorf("load room %s extremities: %w", roomID, err)
	}
	r.extremities = extremities
	r.depth = row.HeadDepth
	r.view.Store(&roomView{version: id.RoomVersion(row.RoomVersion), creator: row.Creator, group: row.StateGroup, chainLen: chain,
		state: state, members: members})
	r.loaded = true
	s.versions.Store(roomID, id.RoomVersion(row.RoomVersion))
	return nil
}

func (s *Service) chainLen(ctx context.Context, group int64) (int64, error) {
	var n int64
	for g := group; g != 0; n++ {
		prev, _, err := s.db.StateGroupEntries(ctx, g)
		if err != nil {
			return 0, fmt.Errorf("state chain: %w", err)
		}
		g = prev
	}
	return n, nil
}

// RoomVersion returns a room's version, or M_NOT_FOUND.
func (s *Service) RoomVersion(ctx context.Context, roomID string) (id.RoomVersion, error) {
	v, err := s.readRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	return v.version, nil
}

// CurrentState returns a copy of the room's current state map.
func (s *Service) CurrentState(ctx context.Context, roomID string) (storage.StateMap, error) {
	v, err := s.readRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := make(storage.StateMap, len(v.state))
	for k, e := range v.state {
		out[k] = e
	}
	return out, nil
}

// maxCachedUsers bounds the membership cache; it is dropped whole when
// full and refilled from storage on demand.
const maxCachedUsers = 50000

// UserMemberships returns the user's current memberships in every room.
func (s *Service) UserMemberships(ctx context.Context, user string) ([]storage.Membership, error) {
	var list []storage.Membership // what a miss read, returned as it came
	loaded := false
	m, err := s.userRooms.Load(user, func() (map[string]storage.Membership, error) {
		var err error
		loaded = true
		if list, err = s.db.UserMemberships(ctx, user); err != nil {
			return nil, err
		}
		m := make(map[string]storage.Membership, len(list))
		for _, v := range list {
			m[v.RoomID] = v
		}
		return m, nil
	})
	if err != nil || loaded {
		return list, err
	}
	out := make([]storage.Membership, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out, nil
}

// noteMembership applies a persisted member event to the cache. The cached
// map is shared with readers, so a changed copy replaces it.
func (s *Service) noteMembership(user string, mb storage.Membership) {
	s.userRooms.Update(user, func(m map[string]storage.Membership) map[string]storage.Membership {
		m = maps.Clone(m)
		if mb.Membership == "" {
			delete(m, mb.RoomID)
		} else {
			m[mb.RoomID] = mb
		}
		return m
	})
}

// MembersByMembership returns the users with each membership in the room now.
func (s *Service) MembersByMembership(ctx context.Context, roomID string) (map[string][]string, error) {
	v, err := s.readRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for u, m := range v.members {
		out[m] = append(out[m], u)
	}
	return out, nil
}

// CurrentStateEvent returns one current state event or nil.
func (s *Service) CurrentStateEvent(ctx context.Context, roomID, typ, stateKey string) (*Event, error) {
	v, err := s.readRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	evID, ok := v.state[storage.StateKey{Type: typ, StateKey: stateKey}]
	if !ok {
		return nil, nil
	}
	return s.Event(ctx, evID)
}

// Event returns an event by ID, or M_NOT_FOUND.
func (s *Service) Event(ctx context.Context, eventID string) (*Event, error) {
	if ev, ok := s.events.get(eventID); ok {
		return ev, nil
	}
	row, err := s.db.GetEvent(ctx, eventID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	return s.wrap(ctx, row)
}

// Events returns the events found among ids, in the order of ids (missing ones skipped).
func (s *Service) Events(ctx context.Context, ids []string) ([]*Event, error) {
	out := make([]*Event, 0, len(ids))
	var missing []string
	found := make(map[string]*Event, len(ids))
	for _, id := range ids {
		if ev, ok := s.events.get(id); ok {
			found[id] = ev
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		rows, err := s.db.GetEvents(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("get events: %w", err)
		}
		for _, row := range rows {
			ev, err := s.wrap(ctx, row)
			if err != nil {
				return nil, err
			}
			found[ev.EventID] = ev
		}
	}
	for _, id := range ids {
		if ev, ok := found[id]; ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// Wrap parses stored rows into events, using the cache where it can.
func (s *Service) Wrap(ctx context.Context, rows []*storage.Event) ([]*Event, error) {
	out := make([]*Event, 0, len(rows))
	for _, row := range rows {
		if ev, ok := s.events.get(row.EventID); ok && ev.RedactedBy == row.RedactedBy {
			out = append(out, ev)
			continue
		}
		ev, err := s.wrap(ctx, row)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (s *Service) wrap(ctx context.Context, row *storage.Event) (*Event, error) {
	var p pdu.PDU
	if err := json.Unmarshal(row.PDU, &p); err != nil {
		return nil, fmt.Errorf("parse stored event %s: %w", row.EventID, err)
	}
	p.InternalMeta.EventID = id.EventID(row.EventID)
	// The auth rules refuse events whose auth events were rejected.
	p.InternalMeta.Rejected = row.RejectedReason != ""
	version, err := s.versionOf(ctx, row.RoomID)
	if err != nil {
		return nil, err
	}
	ev := &Event{Event: *row, PDU: &p, Version: version}
	s.events.put(row.EventID, ev)
	return ev, nil
}

func (s *Service) versionOf(ctx context.Context, roomID string) (id.RoomVersion, error) {
	// Not the room's lock: its writer may hold it while reading events
	// (auth events after a restart), and would wait for itself.
	if v, ok := s.versions.Load(roomID); ok {
		return v.(id.RoomVersion), nil
	}
	row, err := s.db.GetRoom(ctx, roomID)
	if err != nil {
		return "", fmt.Errorf("room version of %s: %w", roomID, err)
	}
	s.versions.Store(roomID, id.RoomVersion(row.RoomVersion))
	return id.RoomVersion(row.RoomVersion), nil
}

// StateAt returns the full state map of a state group.
func (s *Service) StateAt(ctx context.Context, group int64) (storage.StateMap, error) {
	if group == 0 {
		return storage.StateMap{}, nil
	}
	if m, ok := s.groups.get(group); ok {
		return m, nil
	}
	var deltas []storage.StateMap
	var base storage.StateMap
	for g := group; g != 0; {
		if m, ok := s.groups.get(g); ok {
			base = m
			break
		}
		prev, entries, err := s.db.StateGroupEntries(ctx, g)
		if err != nil {
			return nil, err
		}
		deltas = append(deltas, entries)
		g = prev
	}
	out := make(storage.StateMap, len(base)+8)
	for k, v := range base {
		out[k] = v
	}
	for i := len(deltas) - 1; i >= 0; i-- {
		for k, v := range deltas[i] {
			out[k] = v
		}
	}
	s.groups.put(group, out)
	return out, nil
}

// MemberEvents returns the m.room.member events of a state map.
func (s *Service) MemberEvents(ctx context.Context, state storage.StateMap) ([]*Event, error) {
	var ids []string
	for k, v := range state {
		if k.Type == "m.room.member" {
			ids = append(ids, v)
		}
	}
	return s.Events(ctx, ids)
}

// StateEventsAt returns the state events of a group, optionally only the keys wanted.
func (s *Service) StateEventsAt(ctx context.Context, group int64, want func(storage.StateKey) bool) ([]*Event, error) {
	m, err := s.StateAt(ctx, group)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(m))
	for k, v := range m {
		if want == nil || want(k) {
			ids = append(ids, v)
		}
	}
	return s.Events(ctx, ids)
}
