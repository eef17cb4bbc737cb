package slidingsync

import (
	"context"
	"encoding/json"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
	"github.com/axon-matrix/axon/internal/threadsubs"
)

// bumpTypes are the event types that move a room up the list.
var bumpTypes = []string{"m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
	"m.poll.start", "m.beacon_info", "org.matrix.msc3381.poll.start", "org.matrix.msc3672.beacon_info"}

var isBump = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range bumpTypes {
		m[t] = true
	}
	return m
}()

const (
	// maxConns bounds the connections held in memory; the least recently
	// used go first (their clients get M_UNKNOWN_POS and start over).
	maxConns = 10000
	// maxConnsPerDevice bounds one device's connections (Element X uses
	// two: its room list and its encryption sync).
	maxConnsPerDevice = 10
	// maxConnsPerUser bounds one user's connections over all their
	// devices: without it a user with many devices could fill maxConns and
	// push every other user's connections out.
	maxConnsPerUser = 100
	// connTTL expires idle connections. A phone app resumed within a day
	// continues where it was (an expired connection makes the client start
	// over, which resets its rooms' cached timelines); memory stays bounded
	// by maxConns and maxConnsPerDevice.
	connTTL = 24 * time.Hour
	// maxTimelineLimit caps timeline_limit.
	maxTimelineLimit = 100
	// maxLists and maxSubscriptions are the MSC's limits per request.
	maxLists         = 100
	maxSubscriptions = 100
)

// Service answers sliding sync requests.
type Service struct {
	db    *storage.DB
	rooms *rooms.Service
	sync  *sync.Service
	now   func() time.Time

	// ThreadSubs serves MSC4308's extension; nil leaves it out.
	ThreadSubs *threadsubs.Service

	mu sstate
	// conns holds the connections, at most connLimit in all and
	// userConnLimit per user (maxConns and maxConnsPerUser but in tests).
	connMu        stdsync.Mutex
	conns         map[connKey]*conn
	connLimit     int
	userConnLimit int

	// order is each user's room order at their last request (bounded).
	orderMu stdsync.Mutex
	order   map[string][]string

	// quiet counts, per user, the long-polls waiting on connections
	// without rooms: the ones a membership event must wake again.
	quietMu stdsync.Mutex
	quiet   map[string]int

	// builds counts responses built (each wake of a long-poll builds one,
	// unless it can tell nothing it returns changed): for tests.
	builds atomic.Int64
}

// SetConnLimits replaces the bounds on connections in all and per user,
// for tests that cannot open 10,000 connections.
func (s *Service) SetConnLimits(total, perUser int) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.connLimit, s.userConnLimit = total, perUser
}

// Builds returns how many responses have been built, for tests.
func (s *Service) Builds() int64 { return s.builds.Load() }

// sstate is the per-room activity kept in memory, updated as events land.
type sstate struct {
	stdsync.Mutex
	loaded map[string]bool // rooms whose latest is known
	// bump is known for the rooms in bumpKnown: read when a room is first
	// sent, as only the sent rooms need it (the lists sort by latest).
	bump      map[string]int64
	bumpKnown map[string]bool
	latest    map[string]int64
	meta      map[string]*roomMeta
	metaReady map[string]bool // users whose rooms' meta is loaded
	// removed holds, per user, the rooms they were kicked or banned from
	// (dropped when one of their memberships changes).
	removed map[string]map[string]bool
	// memberPos is the stream position of the newest membership event in
	// any room: what a connection without rooms watches of the events
	// stream (see quietMark).
	memberPos int64
}

type roomMeta struct {
	roomType  *string
	encrypted bool
}

// New creates the service and subscribes it to room events.
func New(db *storage.DB, rs *rooms.Service, ss *sync.Service) *Service {
	s := &Service{db: db, rooms: rs, sync: ss, now: time.Now, conns: map[connKey]*conn{}, order: map[string][]string{},
		quiet: map[string]int{}, connLimit: maxConns, userConnLimit: maxConnsPerUser}
	s.mu.loaded = map[string]bool{}
	s.mu.bump = map[string]int64{}
	s.mu.bumpKnown = map[string]bool{}
	s.mu.latest = map[string]int64{}
	s.mu.meta = map[string]*roomMeta{}
	s.mu.metaReady = map[string]bool{}
	s.mu.removed = map[string]map[string]bool{}
	db.Feed().Subscribe(s.onChange)
	return s
}

func (s *Service) onChange(c storage.Change) {
	if c.Kind != storage.KindEvent || !s.noteEvent(c) {
		return
	}
	// The notifier woke the room's users before memberPos moved (it
	// listens first): a connection without rooms that compared its
	// quietMark in between went back to sleep. Wake those again, now
	// that the mark shows the change.
	s.quietMu.Lock()
	n := len(s.quiet)
	s.quietMu.Unlock()
	if n == 0 {
		return
	}
	users := append(s.sync.Notifier.RoomMembers(context.Background(), c.Room), c.Users...)
	s.quietMu.Lock()
	wake := users[:0]
	for _, u := range users {
		if s.quiet[u] > 0 {
			wake = append(wake, u)
		}
	}
	s.quietMu.Unlock()
	s.sync.Notifier.Wake(wake...)
}

// waitQuiet counts a long-poll of the user on a connection without rooms
// (until the returned func is called).
func (s *Service) waitQuiet(user string) func() {
	s.quietMu.Lock()
	s.quiet[user]++
	s.quietMu.Unlock()
	return func() {
		s.quietMu.Lock()
		if s.quiet[user]--; s.quiet[user] <= 0 {
			delete(s.quiet, user)
		}
		s.quietMu.Unlock()
	}
}

// noteEvent updates the in-memory activity; it reports whether the event
// is a membership change.
func (s *Service) noteEvent(c storage.Change) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Position > s.mu.latest[c.Room] {
		s.mu.latest[c.Room] = c.Position
	}
	if isBump[c.Type] && c.Position > s.mu.bump[c.Room] {
		// The newest bump event there is, whether or not older ones
		// were read.
		s.mu.bump[c.Room] = c.Position
		s.mu.bumpKnown[c.Room] = true
	}
	if c.Type == "m.room.encryption" && c.StateKey != nil && *c.StateKey == "" {
		if m := s.mu.meta[c.Room]; m != nil {
			m.encrypted = true
		}
	}
	if c.Type == "m.room.member" && len(c.Users) == 1 {
		// The user's room set changed: reload its meta on demand.
		delete(s.mu.metaReady, c.Users[0])
		delete(s.mu.removed, c.Users[0])
		s.mu.memberPos = max(s.mu.memberPos, c.Position)
		return true
	}
	return false
}

// quietMark is what can change the answer of a connection without lists
// and room subscriptions (Element X's encryption sync, which asks only for
// the to_device, e2ee and account_data extensions): the streams those read,
// and membership changes (which move e2ee's device_lists). Every event in
// the user's rooms wakes the user's long-polls; such a connection compares
// marks and goes back to sleep when they are equal, rather than building a
// response (reading memberships, device lists, key counts, account data)
// that would come out empty. Key counts alone never end a long-poll (no
// stream carries them), so they need no watching.
type quietMark struct {
	toDevice, deviceLists, accountData, members int64
}

func (s *Service) quietMark() quietMark {
	s.mu.Lock()
	members := s.mu.memberPos
	s.mu.Unlock()
	return quietMark{
		toDevice:    s.db.StreamPosition(storage.StreamToDevice),
		deviceLists: s.db.StreamPosition(storage.StreamDeviceLists),
		accountData: s.db.StreamPosition(storage.StreamAccountData),
		members:     members,
	}
}

// ensureActivity loads the newest event of the user's rooms if any is
// missing: one index seek per room, the cost of the first request after a
// restart.
func (s *Service) ensureActivity(ctx context.Context, user string, roomIDs []string) error {
	s.mu.Lock()
	missing := false
	for _, r := range roomIDs {
		if !s.mu.loaded[r] {
			missing = true
			break
		}
	}
	s.mu.Unlock()
	if !missing {
		return nil
	}
	acts, err := s.db.UserRoomLatest(ctx, user)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range acts {
		s.mu.latest[a.RoomID] = max(s.mu.latest[a.RoomID], a.Latest)
		s.mu.loaded[a.RoomID] = true
	}
	for _, r := range roomIDs {
		s.mu.loaded[r] = true
	}
	return nil
}

// bumpOf returns the stream position of the room's newest bump event,
// reading it the first time it is needed.
func (s *Service) bumpOf(ctx context.Context, roomID string) (int64, error) {
	s.mu.Lock()
	bump, known := s.mu.bump[roomID], s.mu.bumpKnown[roomID]
	s.mu.Unlock()
	if known {
		return bump, nil
	}
	pos, err := s.db.RoomLatestOfTypes(ctx, roomID, bumpTypes)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.bump[roomID] = max(s.mu.bump[roomID], pos)
	s.mu.bumpKnown[roomID] = true
	return s.mu.bump[roomID], nil
}

// removedRooms returns the rooms the user was kicked or banned from, true
// for those to list (storage.UserRemovedRooms).
func (s *Service) removedRooms(ctx context.Context, user string) (map[string]bool, error) {
	s.mu.Lock()
	rs, ok := s.mu.removed[user]
	s.mu.Unlock()
	if ok {
		return rs, nil
	}
	rs, err := s.db.UserRemovedRooms(ctx, user)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.removed) >= maxConns {
		s.mu.removed = map[string]map[string]bool{}
	}
	s.mu.removed[user] = rs
	return rs, nil
}

// ensureMeta loads room type and encryption of the user's rooms.
func (s *Service) ensureMeta(ctx context.Context, user string) error {
	s.mu.Lock()
	ready := s.mu.metaReady[user]
	s.mu.Unlock()
	if ready {
		return nil
	}
	ms, err := s.db.UserRoomsMetaState(ctx, user)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		rm := s.mu.meta[m.RoomID]
		if rm == nil {
			rm = &roomMeta{}
			s.mu.meta[m.RoomID] = rm
		}
		switch m.Type {
		case "m.room.encryption":
			rm.encrypted = true
		case "m.room.create":
			var p struct {
				Content struct {
					Type *string `json:"type"`
				} `json:"content"`
			}
			if json.Unmarshal(m.PDU, &p) == nil {
				rm.roomType = p.Content.Type
			}
		}
	}
	s.mu.metaReady[user] = true
	return nil
}

func (s *Service) metaOf(roomID string) roomMeta {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.mu.meta[roomID]; m != nil {
		return *m
	}
	return roomMeta{}
}

// Connections.

type connKey struct{ user, device, id string }

// conn is one client connection. Requests on a connection are served one
// at a time; states keeps the state behind the last pos handed out and the
// one before it, so a retried request gets the same answer.
type conn struct {
	mu       stdsync.Mutex
	lastUsed time.Time
	next     int64
	states   map[int64]*connState

	// turn is closed when a newer request arrives on the connection, so a
	// long-poll the client has given up on answers at once instead of
	// holding the connection until its timeout.
	turnMu stdsync.Mutex
	turn   chan struct{}
}

// takeTurn ends the wait of the request in progress (if any) and returns
// the channel that ends this one's.
func (c *conn) takeTurn() <-chan struct{} {
	c.turnMu.Lock()
	defer c.turnMu.Unlock()
	if c.turn != nil {
		close(c.turn)
	}
	c.turn = make(chan struct{})
	return c.turn
}

// connState is what the client is known to have at one pos.
type connState struct {
	token sync.Token
	// sent maps rooms sent on this connection to what was sent.
	sent   map[string]roomSent
	counts map[string]int
}

type roomSent struct {
	timelineLimit int
	requiredState string
	// upto is the stream position the client's view of the room is
	// complete up to.
	upto int64
	// invite is set when the room was sent as an invite (stripped state).
	invite bool
	// dm is the is_dm the client has for the room.
	dm bool
}

func (s *Service) getConn(key connKey, create bool) *conn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	now := s.now()
	c := s.conns[key]
	if c != nil && now.Sub(c.lastUsed) > connTTL {
		delete(s.conns, key)
		c = nil
	}
	if c == nil && create {
		s.limitOwnerLocked(key)
		if len(s.conns) >= s.connLimit {
			s.evictLocked(now)
		}
		c = &conn{states: map[int64]*connState{}}
		s.conns[key] = c
	}
	if c != nil {
		c.lastUsed = now
	}
	return c
}

// limitOwnerLocked makes room for a new connection of a device: a device
// keeps at most maxConnsPerDevice and a user userConnLimit (the least
// recently used of theirs goes), so one client opening connection after
// connection, or one user with many devices, cannot push every other
// user's connections out of the shared bound.
func (s *Service) limitOwnerLocked(key connKey) {
	var device, user oldestConn
	for k, c := range s.conns {
		if k.user != key.user {
			continue
		}
		user.add(k, c)
		if k.device == key.device {
			device.add(k, c)
		}
	}
	if device.n >= maxConnsPerDevice {
		// That also makes room within the user's bound.
		delete(s.conns, device.key)
		return
	}
	if user.n >= s.userConnLimit {
		delete(s.conns, user.key)
	}
}

// oldestConn counts connections and finds the least recently used.
type oldestConn struct {
	n    int
	key  connKey
	used time.Time
}

func (o *oldestConn) add(k connKey, c *conn) {
	o.n++
	if o.n == 1 || c.lastUsed.Before(o.used) {
		o.key, o.used = k, c.lastUsed
	}
}

// evictLocked drops expired connections, or the least recently used one.
func (s *Service) evictLocked(now time.Time) {
	var oldest connKey
	var oldestT time.Time
	for k, c := range s.conns {
		if now.Sub(c.lastUsed) > connTTL {
			delete(s.conns, k)
			continue
		}
		if oldestT.IsZero() || c.lastUsed.Before(oldestT) {
			oldest, oldestT = k, c.lastUsed
		}
	}
	if len(s.conns) >= s.connLimit {
		delete(s.conns, oldest)
	}
}

// ErrUnknownPos is returned for a pos the server does not know (any more).
func errUnknownPos() error {
	return mxerr.New("M_UNKNOWN_POS", "Unknown or expired pos; start a new connection").WithStatus(400)
}

// Sync answers one request. pos is "" for a new connection; timeout is how
// long to wait for something new.
func (s *Service) Sync(ctx context.Context, user, device, pos string, timeout time.Duration, req *Request) (*Response, error) {
	if len(req.Lists) > maxLists {
		return nil, mxerr.InvalidParam("at most %d lists", maxLists)
	}
	if len(req.RoomSubscriptions) > maxSubscriptions {
		return nil, mxerr.InvalidParam("at most %d room subscriptions", maxSubscriptions)
	}
	key := connKey{user, device, req.ConnID}
	var c *conn
	var prev *connState
	var prevPos int64
	var turn <-chan struct{}
	if pos == "" {
		c = s.getConn(key, true)
		turn = c.takeTurn()
		c.mu.Lock()
		c.states = map[int64]*connState{}
	} else {
		n, err := strconv.ParseInt(pos, 10, 64)
		if err != nil {
			return nil, errUnknownPos()
		}
		c = s.getConn(key, false)
		if c == nil {
			return nil, errUnknownPos()
		}
		turn = c.takeTurn()
		c.mu.Lock()
		prev = c.states[n]
		if prev == nil {
			c.mu.Unlock()
			return nil, errUnknownPos()
		}
		prevPos = n
	}
	defer c.mu.Unlock()

	deadline := s.now().Add(timeout)
	var timer *time.Timer
	roomless := len(req.Lists) == 0 && len(req.RoomSubscriptions) == 0
	if roomless && prev != nil && timeout > 0 {
		defer s.waitQuiet(user)()
	}
	var resp *Response
	var next *connState
	var built quietMark
	for {
		wake := s.sync.Notifier.Listen(user)
		// The mark is taken after Listen, so a change after it wakes us.
		if mark := s.quietMark(); resp == nil || !roomless || mark != built {
			built = mark
			var empty bool
			var err error
			resp, next, empty, err = s.build(ctx, user, device, req, prev)
			if err != nil {
				return nil, err
			}
			if !empty || prev == nil || time.Until(deadline) <= 0 {
				return s.commit(c, prevPos, resp, next), nil
			}
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return s.commit(c, prevPos, resp, next), nil
		}
		if timer == nil {
			timer = time.NewTimer(remaining)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-turn:
			return s.commit(c, prevPos, resp, next), nil
		case <-timer.C:
			return s.commit(c, prevPos, resp, next), nil
		case <-ctx.Done():
			return s.commit(c, prevPos, resp, next), nil
		}
	}
}

// commit stores the new state under a new pos and drops states older than
// the one the client used (which is kept for a retry).
func (s *Service) commit(c *conn, prevPos int64, resp *Response, next *connState) *Response {
	c.next++
	n := c.next
	c.states[n] = next
	for k := range c.states {
		if k != n && k != prevPos {
			delete(c.states, k)
		}
	}
	resp.Pos = strconv.FormatInt(n, 10)
	return resp
}
