package storage

import "context"

// RoomLatest is the stream position of a room's newest event.
type RoomLatest struct {
	RoomID string
	Latest int64
}

// UserRoomLatest returns, for every room the user has a membership in, the
// stream position of its newest event: one seek down the (room_id,
// stream_pos) index per room.
func (db *DB) UserRoomLatest(ctx context.Context, userID string) ([]RoomLatest, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT c.room_id,
		COALESCE((SELECT MAX(stream_pos) FROM events WHERE room_id = c.room_id AND stream_pos > 0), 0)
		FROM current_state c WHERE c.type = 'm.room.member' AND c.state_key = $1`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RoomLatest
	for rows.Next() {
		var a RoomLatest
		if err := rows.Scan(&a.RoomID, &a.Latest); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RoomLatestOfTypes returns the stream position of the room's newest event
// of one of the types (0 if none), walking the room's events back from the
// newest.
func (db *DB) RoomLatestOfTypes(ctx context.Context, roomID string, types []string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT stream_pos FROM events WHERE room_id = $1 AND stream_pos > 0 AND type `+inList(2)+`
		ORDER BY stream_pos DESC LIMIT 1), 0)`, roomID, listArg(types)).Scan(&pos)
	return pos, err
}

// RoomMetaState is the m.room.create or m.room.encryption event of a room.
type RoomMetaState struct {
	RoomID string
	Type   string
	PDU    []byte
}

// UserRoomsMetaState returns the create and encryption events of every room
// the user has a membership in.
func (db *DB) UserRoomsMetaState(ctx context.Context, userID string) ([]RoomMetaState, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT c.room_id, c.type, e.pdu FROM current_state c JOIN events e ON e.event_id = c.event_id
		WHERE c.type IN ('m.room.create', 'm.room.encryption') AND c.state_key = ''
		AND c.room_id IN (SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1)`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RoomMetaState
	for rows.Next() {
		var m RoomMetaState
		if err := rows.Scan(&m.RoomID, &m.Type, &m.PDU); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// UserRemovedRooms returns the rooms the user was kicked or banned from
// (their membership is ban, or a leave someone else sent): sliding sync
// keeps these in the user's lists so a client that was away still learns
// of the removal. The value is false for a ban the user never saw the room
// before (no earlier membership, or one they had already left): the MSC
// leaves those out of the lists altogether.
func (db *DB) UserRemovedRooms(ctx context.Context, userID string) (map[string]bool, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT c.room_id,
			c.membership = 'ban' AND COALESCE(json_extract(p.pdu, '$.content.membership'), 'leave') IN ('leave', 'ban')
		FROM current_state c JOIN events e ON e.event_id = c.event_id LEFT JOIN events p ON p.event_id = e.replaces
		WHERE c.type = 'm.room.member' AND c.state_key = $1 AND c.membership IN ('leave', 'ban')
		AND (c.membership = 'ban' OR e.sender != $1)`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var r string
		var unseen bool
		if err := rows.Scan(&r, &unseen); err != nil {
			return nil, err
		}
		out[r] = !unseen
	}
	return out, rows.Err()
}
