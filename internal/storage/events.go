package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Room is the per-room row: version and the state group of its current
// state. Its forward extremities are rows of their own; HeadDepth, the
// greatest depth among them, is read with them.
type Room struct {
	RoomID      string
	RoomVersion string
	Creator     string
	Published   bool
	CreatedTS   int64
	HeadDepth   int64
	StateGroup  int64
}

// Event is one stored PDU with the columns the server indexes it by.
type Event struct {
	StreamPos   int64
	EventID     string
	RoomID      string
	Type        string
	StateKey    *string
	Sender      string
	Depth       int64
	OriginTS    int64
	StateBefore int64
	StateAfter  int64
	PDU         []byte
	Replaces    string
	RedactedBy  string
	TxnDevice   string
	TxnID       string
	RelatesTo   string
	RelType     string
	ThreadRoot  string
	// RejectedReason, SoftFailed and Outlier are the status of an event
	// stored outside the stream (StreamPos < 0): see EventStatus.
	RejectedReason string
	SoftFailed     bool
	Outlier        bool
}

// InStream reports whether clients see the event: it is accepted, and
// neither soft-failed nor an outlier.
func (e *Event) InStream() bool { return e.StreamPos > 0 }

// StateKey identifies one piece of room state.
type StateKey struct{ Type, StateKey string }

// StateMap maps state keys to event IDs.
type StateMap map[StateKey]string

// NewStateGroup describes a state group to create alongside an event: either
// a delta over Prev or, when Prev is 0, a full snapshot.
type NewStateGroup struct {
	Prev     int64
	ChainLen int64
	Entries  StateMap
}

// EventStatus is what the authorisation of an event decided.
type EventStatus int

const (
	// Accepted events enter the stream, the room's state and its forward
	// extremities.
	Accepted EventStatus = iota
	// Rejected events failed the rules against their auth events or the
	// state before them; they are kept (with the reason) only so that
	// events citing them are refused too.
	Rejected
	// SoftFailed events passed those checks but not the room's current
	// state (e.g. a message from a user banned since): the DAG keeps them,
	// clients never see them, and they do not become extremities.
	SoftFailed
	// Outlier events are stored without the state before them (an auth
	// event fetched from another server, an invite to a room the server
	// is not in); they are not part of the room's timeline.
	Outlier
)

// PersistRequest is everything written when a room takes an event: the
// event and its edges, its status, and for accepted events the state and
// forward-extremity changes, in one transaction.
type PersistRequest struct {
	Event  Event
	Status EventStatus
	// RejectedReason says why a Rejected event was refused.
	RejectedReason string
	// PrevEvents and AuthEvents are the event's edges in the room DAG.
	PrevEvents, AuthEvents []string
	// Extremities are the forward extremities the event replaces (its
	// prev events that were extremities); an accepted event becomes one.
	Extremities []string
	NewGroup    *NewStateGroup // nil for non-state events
	// Current, when set, is the room's new current state: an accepted
	// event that forked from the current state is merged into it by state
	// resolution. When nil, an accepted event extends the current state.
	Current *CurrentStateChange
	NewRoom *Room // set for the create event
	// Membership is the new membership when the event is an m.room.member event.
	Membership string
	// Redacts is the event a redaction redacts, marked on that row.
	Redacts string
	// OnCommit, if set, is called with the event's position and state
	// group after the commit, before the event is announced on the feed:
	// the writer updates its in-memory room there (see Tx.OnCommit).
	OnCommit func(pos, stateAfter int64)
}

// CurrentStateChange replaces a room's current state with a resolved one.
type CurrentStateChange struct {
	// Group is the resolved state, stored as a snapshot; PersistEvent sets
	// GroupID to its state group.
	Group   *NewStateGroup
	GroupID int64
	// Set are the keys whose event changed, Removed those no longer in
	// the state; Memberships the membership of each m.room.member key set.
	Set         StateMap
	Removed     []StateKey
	Memberships map[string]string
}

// ErrDuplicateTxn means the (sender, device, txn) triple was already used.
var ErrDuplicateTxn = errors.New("duplicate transaction")

// PersistEvent writes an event, its edges and status, and for an accepted
// event its state group, the room's current state and forward extremities,
// in one transaction. It returns the event's stream position (negative:
// outside the stream, for events that are not accepted) and its
// state-after group.
func (db *DB) PersistEvent(ctx context.Context, r PersistRequest) (pos, stateAfter int64, err error) {
	err = db.Write(ctx, func(tx *Tx) error {
		ev := r.Event
		if r.NewRoom != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ($1, $2, $3, $4)`,
				r.NewRoom.RoomID, r.NewRoom.RoomVersion, r.NewRoom.Creator, r.NewRoom.CreatedTS); err != nil {
				return fmt.Errorf("insert room: %w", err)
			}
		}
		accepted := r.Status == Accepted
		stateAfter = ev.StateBefore
		if r.NewGroup != nil && accepted {
			var err error
			if stateAfter, err = insertStateGroup(ctx, tx, ev.RoomID, r.NewGroup); err != nil {
				return err
			}
		}
		if accepted {
			pos = tx.NextPos(StreamEvents)
		} else {
			var err error
			if pos, err = tx.nextOutsidePos(ctx); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO events (stream_pos, event_id, room_id, type, state_key, sender, depth, origin_ts,
			state_before, state_after, pdu, replaces, txn_device, txn_id, relates_to, rel_type, thread_root,
			rejected_reason, soft_failed, outlier)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			pos, ev.EventID, ev.RoomID, ev.Type, ev.StateKey, ev.Sender, ev.Depth, ev.OriginTS, ev.StateBefore, stateAfter,
			string(ev.PDU), nullStr(ev.Replaces), nullStr(ev.TxnDevice), nullStr(ev.TxnID), nullStr(ev.RelatesTo), nullStr(ev.RelType), nullStr(ev.ThreadRoot),
			nullStr(r.RejectedReason), r.Status == SoftFailed, r.Status == Outlier)
		if isUniqueViolation(err) && ev.TxnID != "" {
			return ErrDuplicateTxn
		}
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		auth := r.AuthEvents
		if ev.StateKey == nil {
			// Auth chains consist of state events only: a message's auth
			// events are in its PDU, and no chain runs through it.
			auth = nil
		}
		if err := insertEdges(ctx, tx, ev.EventID, r.PrevEvents, auth); err != nil {
			return err
		}
		if r.OnCommit != nil {
			tx.OnCommit(func() { r.OnCommit(pos, stateAfter) })
		}
		if !accepted {
			return nil
		}
		// The search indexer starts on the event before the feed wakes
		// its readers, as it did when wakes came after the writer.
		tx.OnCommit(db.wakeIndexer)
		c := Change{Kind: KindEvent, Stream: StreamEvents, Position: pos, Room: ev.RoomID, Type: ev.Type, EventID: ev.EventID, StateKey: ev.StateKey}
		if ev.Type == "m.room.member" && ev.StateKey != nil {
			c.Users, c.Membership = []string{*ev.StateKey}, r.Membership
		}
		tx.Changed(c)
		if err := moveExtremities(ctx, tx, ev.RoomID, ev.EventID, r.Extremities); err != nil {
			return err
		}
		if r.Current != nil {
			return replaceCurrentState(ctx, tx, ev, pos, r.Current)
		}
		if stateAfter != ev.StateBefore {
			if _, err := tx.ExecContext(ctx, `UPDATE rooms SET state_group = $2 WHERE room_id = $1`, ev.RoomID, stateAfter); err != nil {
				return fmt.Errorf("update room state: %w", err)
			}
		}
		if ev.StateKey != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO current_state (room_id, type, state_key, event_id, membership, stream_pos)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership, stream_pos = excluded.stream_pos`,
				ev.RoomID, ev.Type, *ev.StateKey, ev.EventID, nullStr(r.Membership), pos); err != nil {
				return fmt.Errorf("update current state: %w", err)
			}
			if r.Membership == "join" {
				if _, err := tx.ExecContext(ctx, `DELETE FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`, *ev.StateKey, ev.RoomID); err != nil {
					return err
				}
			}
		}
		if r.Redacts != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET redacted_by = $2 WHERE event_id = $1 AND redacted_by IS NULL`, r.Redacts, ev.EventID); err != nil {
				return fmt.Errorf("mark redacted: %w", err)
			}
			if err := unindexSearch(ctx, tx, r.Redacts); err != nil {
				return err
			}
		}
		return nil
	})
	return pos, stateAfter, err
}

// replaceCurrentState stores a resolved current state (see
// CurrentStateChange); its changed rows carry the event's position, as
// every current-state change does.
func replaceCurrentState(ctx context.Context, tx *Tx, ev Event, pos int64, c *CurrentStateChange) error {
	group, err := insertStateGroup(ctx, tx, ev.RoomID, c.Group)
	if err != nil {
		return err
	}
	c.GroupID = group
	if _, err := tx.ExecContext(ctx, `UPDATE rooms SET state_group = $2 WHERE room_id = $1`, ev.RoomID, group); err != nil {
		return fmt.Errorf("update room state: %w", err)
	}
	for k, v := range c.Set {
		membership := ""
		if k.Type == "m.room.member" {
			membership = c.Memberships[k.StateKey]
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO current_state (room_id, type, state_key, event_id, membership, stream_pos)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership, stream_pos = excluded.stream_pos`,
			ev.RoomID, k.Type, k.StateKey, v, nullStr(membership), pos); err != nil {
			return fmt.Errorf("update current state: %w", err)
		}
	}
	for _, k := range c.Removed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM current_state WHERE room_id = $1 AND type = $2 AND state_key = $3`,
			ev.RoomID, k.Type, k.StateKey); err != nil {
			return fmt.Errorf("remove current state: %w", err)
		}
	}
	return nil
}

func insertStateGroup(ctx context.Context, tx *Tx, roomID string, g *NewStateGroup) (int64, error) {
	var prev any
	if g.Prev != 0 {
		prev = g.Prev
	}
	var group int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO state_groups (room_id, prev_group, chain_len) VALUES ($1, $2, $3) RETURNING group_id`,
		roomID, prev, g.ChainLen).Scan(&group); err != nil {
		return 0, fmt.Errorf("insert state group: %w", err)
	}
	for k, v := range g.Entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES ($1, $2, $3, $4)`,
			group, k.Type, k.StateKey, v); err != nil {
			return 0, fmt.Errorf("insert state entry: %w", err)
		}
	}
	return group, nil
}

// insertEdges records an event's prev and auth events, each list in one
// statement (a statement costs more than a row on this write path).
func insertEdges(ctx context.Context, tx *Tx, eventID string, prev, auth []string) error {
	switch {
	case len(prev) == 1: // nearly every event
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_edges (event_id, prev_event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			eventID, prev[0]); err != nil {
			return fmt.Errorf("insert prev edge: %w", err)
		}
	case len(prev) > 1:
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_edges (event_id, prev_event_id) SELECT $1, value FROM json_each($2) WHERE true
			ON CONFLICT DO NOTHING`, eventID, listArg(prev)); err != nil {
			return fmt.Errorf("insert prev edges: %w", err)
		}
	}
	if len(auth) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_auth_edges (event_id, auth_event_id) SELECT $1, value FROM json_each($2) WHERE true
			ON CONFLICT DO NOTHING`, eventID, listArg(auth)); err != nil {
			return fmt.Errorf("insert auth edges: %w", err)
		}
	}
	return nil
}

// moveExtremities makes eventID a forward extremity of the room in place
// of the extremities it follows. The common case, one replacing one, is a
// single update.
func moveExtremities(ctx context.Context, tx *Tx, roomID, eventID string, replaced []string) error {
	if len(replaced) == 1 {
		if _, err := tx.ExecContext(ctx, `UPDATE forward_extremities SET event_id = $3 WHERE room_id = $1 AND event_id = $2`,
			roomID, replaced[0], eventID); err != nil {
			return fmt.Errorf("move extremity: %w", err)
		}
		return nil
	}
	if len(replaced) > 1 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM forward_extremities WHERE room_id = $1 AND event_id `+inList(2),
			roomID, listArg(replaced)); err != nil {
			return fmt.Errorf("remove extremities: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO forward_extremities (room_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, roomID, eventID); err != nil {
		return fmt.Errorf("add extremity: %w", err)
	}
	return nil
}

// ForwardExtremities returns the room's forward extremities: the events
// no accepted event follows yet, which the next event cites as prev events.
func (db *DB) ForwardExtremities(ctx context.Context, roomID string) ([]string, error) {
	return db.strings(ctx, `SELECT event_id FROM forward_extremities WHERE room_id = $1 ORDER BY event_id`, roomID)
}

// GetRoom returns the room row or ErrNotFound.
func (db *DB) GetRoom(ctx context.Context, roomID string) (*Room, error) {
	var r Room
	err := db.read.QueryRowContext(ctx, `SELECT room_id, room_version, creator, published, created_ts,
		COALESCE((SELECT MAX(e.depth) FROM forward_extremities x JOIN events e ON e.event_id = x.event_id WHERE x.room_id = rooms.room_id), 0),
		state_group FROM rooms WHERE room_id = $1`, roomID).Scan(&r.RoomID, &r.RoomVersion, &r.Creator, &r.Published, &r.CreatedTS, &r.HeadDepth, &r.StateGroup)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// SetRoomPublished sets the room directory visibility.
func (db *DB) SetRoomPublished(ctx context.Context, roomID string, published bool) error {
	return db.execOne(ctx, `UPDATE rooms SET published = $2 WHERE room_id = $1`, roomID, published)
}

// PublishedRooms lists rooms in the public directory.
func (db *DB) PublishedRooms(ctx context.Context) ([]string, error) {
	return db.strings(ctx, `SELECT room_id FROM rooms WHERE published = 1 ORDER BY room_id`)
}

func (db *DB) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

const eventCols = `stream_pos, event_id, room_id, type, state_key, sender, depth, origin_ts, state_before, state_after, pdu,
	COALESCE(replaces, ''), COALESCE(redacted_by, ''), COALESCE(txn_device, ''), COALESCE(txn_id, ''), COALESCE(relates_to, ''), COALESCE(rel_type, ''), COALESCE(thread_root, ''),
	COALESCE(rejected_reason, ''), soft_failed, outlier`

func scanEvent(row interface{ Scan(...any) error }) (*Event, error) {
	var e Event
	var sk sql.NullString
	var pdu string
	err := row.Scan(&e.StreamPos, &e.EventID, &e.RoomID, &e.Type, &sk, &e.Sender, &e.Depth, &e.OriginTS, &e.StateBefore, &e.StateAfter,
		&pdu, &e.Replaces, &e.RedactedBy, &e.TxnDevice, &e.TxnID, &e.RelatesTo, &e.RelType, &e.ThreadRoot,
		&e.RejectedReason, &e.SoftFailed, &e.Outlier)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if sk.Valid {
		e.StateKey = &sk.String
	}
	e.PDU = []byte(pdu)
	return &e, nil
}

func (db *DB) queryEvents(ctx context.Context, q string, args ...any) ([]*Event, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+eventCols+` FROM events `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// GetEvent returns one event by ID or ErrNotFound.
func (db *DB) GetEvent(ctx context.Context, eventID string) (*Event, error) {
	return scanEvent(db.read.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE event_id = $1`, eventID))
}

// GetEvents returns the events found among ids, in no particular order.
func (db *DB) GetEvents(ctx context.Context, ids []string) ([]*Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) == 1 {
		// The common case (one event missing from the service's cache):
		// equality spares the few microseconds json_each takes to set up.
		return db.queryEvents(ctx, `WHERE event_id = $1`, ids[0])
	}
	return db.queryEvents(ctx, `WHERE event_id `+inList(1), listArg(ids))
}

// EventByTxn finds an event previously sent with a transaction ID by
// the same device to the same room with the same event type.
func (db *DB) EventByTxn(ctx context.Context, sender, device, txnID, roomID, typ string) (*Event, error) {
	// "+type": a bound value compared with the column of a partial index's
	// condition (events_member: type = 'm.room.member') makes SQLite
	// prepare the statement again at every call, a tenth of the CPU time of
	// a send; the unary plus keeps the term out of that comparison (the
	// index search uses the other four columns).
	return scanEvent(db.read.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events
		WHERE sender = $1 AND txn_device = $2 AND txn_id = $3 AND room_id = $4 AND +type = $5`,
		sender, device, txnID, roomID, typ))
}

// EventsAfter returns events with from < stream_pos <= to across all rooms,
// oldest first, at most limit.
func (db *DB) EventsAfter(ctx context.Context, from, to int64, limit int) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos LIMIT $3`, from, to, limit)
}

// RoomEventsBackward returns up to limit events of a room with
// stream_pos < before and > after (0 for no bound), newest first.
func (db *DB) RoomEventsBackward(ctx context.Context, roomID string, before, after int64, limit int) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE room_id = $1 AND stream_pos < $2 AND stream_pos > $3 ORDER BY stream_pos DESC LIMIT $4`,
		roomID, before, after, limit)
}

// RoomEventsForward returns up to limit events of a room with
// stream_pos > after and < before, oldest first.
func (db *DB) RoomEventsForward(ctx context.Context, roomID string, after, before int64, limit int) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE room_id = $1 AND stream_pos > $2 AND stream_pos < $3 ORDER BY stream_pos LIMIT $4`,
		roomID, after, before, limit)
}

// RelationQuery selects the events relating to an event, within the open
// stream interval (After, Before), oldest first when Forward.
type RelationQuery struct {
	EventID, RelType, EventType string
	Before, After               int64
	Limit                       int
	Forward                     bool
	// Depth is how many relation hops are followed: 1 is direct relations
	// only; more also takes events relating to those (a reaction to a
	// thread reply, an edit of it). The type filters apply to the events
	// returned at every depth, as Synapse does.
	Depth int
}

// Relations returns the events that relate to q.EventID.
func (db *DB) Relations(ctx context.Context, q RelationQuery) ([]*Event, error) {
	order := ` ORDER BY stream_pos`
	if !q.Forward {
		order += ` DESC`
	}
	// +type: see EventByTxn (a bound type would re-prepare the statement).
	filters := ` AND ($2 = '' OR rel_type = $2) AND ($3 = '' OR +type = $3) AND stream_pos < $4 AND stream_pos > $5`
	if q.Depth <= 1 {
		return db.queryEvents(ctx, `WHERE relates_to = $1 AND relates_to IS NOT NULL`+filters+order+` LIMIT $6`,
			q.EventID, q.RelType, q.EventType, q.Before, q.After, q.Limit)
	}
	// UNION (not UNION ALL) drops repeats, and the depth bound ends the
	// walk even if relations formed a cycle.
	return db.queryEvents(ctx, `WHERE event_id IN (
		WITH RECURSIVE tree(event_id, depth) AS (
			SELECT event_id, 1 FROM events WHERE relates_to = $1 AND relates_to IS NOT NULL
			UNION SELECT e.event_id, t.depth + 1 FROM events e JOIN tree t ON e.relates_to = t.event_id WHERE t.depth < $7
		) SELECT event_id FROM tree)`+filters+order+` LIMIT $6`,
		q.EventID, q.RelType, q.EventType, q.Before, q.After, q.Limit, q.Depth)
}

// ThreadRoots returns the thread roots of a room ordered by latest activity,
// with the latest activity position of each, before the given position.
func (db *DB) ThreadRoots(ctx context.Context, roomID string, before int64, limit int) (roots []string, latest []int64, err error) {
	rows, err := db.read.QueryContext(ctx, `SELECT thread_root, MAX(stream_pos) AS last FROM events
		WHERE room_id = $1 AND thread_root IS NOT NULL AND stream_pos > 0 GROUP BY thread_root HAVING MAX(stream_pos) < $2 ORDER BY last DESC LIMIT $3`,
		roomID, before, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		var p int64
		if err := rows.Scan(&r, &p); err != nil {
			return nil, nil, err
		}
		roots = append(roots, r)
		latest = append(latest, p)
	}
	return roots, latest, rows.Err()
}

// ThreadSummary returns the number of events in a thread and the latest one,
// leaving out those of excludeSenders (the users the viewer ignores).
func (db *DB) ThreadSummary(ctx context.Context, root string, upto int64, excludeSenders []string) (count int64, latest *Event, err error) {
	where := `thread_root = $1 AND rel_type = 'm.thread' AND stream_pos > 0 AND stream_pos <= $2`
	args := []any{root, upto}
	if len(excludeSenders) > 0 {
		where += ` AND sender NOT ` + inList(3)
		args = append(args, listArg(excludeSenders))
	}
	if err = db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE `+where, args...).Scan(&count); err != nil || count == 0 {
		return
	}
	latest, err = scanEvent(db.read.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE `+where+`
		ORDER BY stream_pos DESC LIMIT 1`, args...))
	return
}

// ThreadReplies returns the replies of a thread up to a position, oldest
// first, leaving out those of excludeSenders; for viewers who may see only
// part of a thread (ThreadSummary counts all of it).
func (db *DB) ThreadReplies(ctx context.Context, root string, upto int64, excludeSenders []string) ([]*Event, error) {
	// The exclusions are one list parameter, so the query text does not
	// vary with their number (see listparam.go).
	return db.queryEvents(ctx, `WHERE thread_root = $1 AND rel_type = 'm.thread' AND stream_pos <= $2 AND sender NOT `+inList(3)+`
		ORDER BY stream_pos`, root, upto, listArg(excludeSenders))
}

// StateGroupEntries returns a state group's own rows and its prev group.
func (db *DB) StateGroupEntries(ctx context.Context, group int64) (prev int64, entries StateMap, err error) {
	var p sql.NullInt64
	if err = db.read.QueryRowContext(ctx, `SELECT prev_group FROM state_groups WHERE group_id = $1`, group).Scan(&p); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = fmt.Errorf("state group %d: %w", group, ErrNotFound)
		}
		return
	}
	rows, err := db.read.QueryContext(ctx, `SELECT type, state_key, event_id FROM state_group_entries WHERE group_id = $1`, group)
	if err != nil {
		return
	}
	defer rows.Close()
	entries = StateMap{}
	for rows.Next() {
		var k StateKey
		var v string
		if err = rows.Scan(&k.Type, &k.StateKey, &v); err != nil {
			return
		}
		entries[k] = v
	}
	return p.Int64, entries, rows.Err()
}

// Membership is a user's membership in one room.
type Membership struct {
	RoomID     string
	Membership string
	EventID    string
	StreamPos  int64
}

// UserMemberships returns the user's current memberships (all kinds).
func (db *DB) UserMemberships(ctx context.Context, userID string) ([]Membership, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, membership, event_id, stream_pos FROM current_state
		WHERE type = 'm.room.member' AND state_key = $1`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.RoomID, &m.Membership, &m.EventID, &m.StreamPos); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RoomMembers returns user IDs with the given membership in a room.
func (db *DB) RoomMembers(ctx context.Context, roomID, membership string) ([]string, error) {
	return db.strings(ctx, `SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member' AND membership = $2`,
		roomID, membership)
}

// CurrentState returns the room's current state map.
func (db *DB) CurrentState(ctx context.Context, roomID string) (StateMap, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT type, state_key, event_id FROM current_state WHERE room_id = $1`, roomID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := StateMap{}
	for rows.Next() {
		var k StateKey
		var v string
		if err := rows.Scan(&k.Type, &k.StateKey, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

// MemberEventsFor returns the member events whose state_key is userID with
// from < stream_pos <= to: how sync learns of joins, invites and leaves.
func (db *DB) MemberEventsFor(ctx context.Context, userID string, from, to int64) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE type = 'm.room.member' AND state_key = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`,
		userID, from, to)
}

// ForgetRoom hides a left room from the user.
func (db *DB) ForgetRoom(ctx context.Context, userID, roomID string) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO forgotten_rooms (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, roomID)
		return err
	})
}

// RoomForgotten reports whether a user has forgotten a room (and not
// been in it since).
func (db *DB) RoomForgotten(ctx context.Context, userID, roomID string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`, userID, roomID).Scan(&n)
	return n > 0, err
}

// ForgottenRooms returns the rooms a user has forgotten.
func (db *DB) ForgottenRooms(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT room_id FROM forgotten_rooms WHERE user_id = $1`, userID)
}

// AllRoomIDs lists every room.
func (db *DB) AllRoomIDs(ctx context.Context) ([]string, error) {
	return db.strings(ctx, `SELECT room_id FROM rooms`)
}

// UnreadEvents returns a room's events in (after, upto] not sent by userID,
// of the types that can notify, newest first, at most limit.
func (db *DB) UnreadEvents(ctx context.Context, roomID, userID string, after, upto int64, limit int) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE room_id = $1 AND stream_pos > $2 AND stream_pos <= $3 AND sender != $4
		AND type IN ('m.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start', 'org.matrix.msc3381.poll.start')
		AND redacted_by IS NULL ORDER BY stream_pos DESC LIMIT $5`, roomID, after, upto, userID, limit)
}

// UserParticipatedInThread reports whether user sent the root or a reply.
func (db *DB) UserParticipatedInThread(ctx context.Context, root, user string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE (thread_root = $1 OR event_id = $1) AND sender = $2 AND stream_pos > 0 LIMIT 1) AS hits`,
		root, user).Scan(&n)
	return n > 0, err
}

// ThreadRootIDs returns every event that has thread replies.
func (db *DB) ThreadRootIDs(ctx context.Context) ([]string, error) {
	return db.strings(ctx, `SELECT DISTINCT thread_root FROM events WHERE thread_root IS NOT NULL AND stream_pos > 0`)
}

// CurrentMemberships maps each user with a member event in the room's
// current state to their membership.
func (db *DB) CurrentMemberships(ctx context.Context, roomID string) (map[string]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT state_key, membership FROM current_state WHERE room_id = $1 AND type = 'm.room.member'`, roomID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u string
		var m sql.NullString
		if err := rows.Scan(&u, &m); err != nil {
			return nil, err
		}
		out[u] = m.String
	}
	return out, rows.Err()
}

// IsRoomPublished reports whether a room is in the public directory.
func (db *DB) IsRoomPublished(ctx context.Context, roomID string) (bool, error) {
	var p bool
	err := db.read.QueryRowContext(ctx, `SELECT published FROM rooms WHERE room_id = $1`, roomID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	return p, err
}
