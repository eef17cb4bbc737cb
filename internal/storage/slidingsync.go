package storage

import (
	"context"
	"strconv"
	"strings"
)

// RoomActivity is what sliding sync needs to order a user's rooms: the
// newest event of the room and the newest event of a "bump" type.
type RoomActivity struct {
	RoomID string
	Latest int64
	Bump   int64
}

// UserRoomActivity returns, for every room the user has a membership in,
// the stream positions of its newest event and of its newest event whose
// type is one of bumpTypes. One query for all rooms.
func (db *DB) UserRoomActivity(ctx context.Context, userID string, bumpTypes []string) ([]RoomActivity, error) {
	args := []any{userID}
	ph := make([]string, len(bumpTypes))
	for i, t := range bumpTypes {
		args = append(args, t)
		ph[i] = "$" + strconv.Itoa(i+2)
	}
	// Per room: two walks down the (room_id, stream_pos) index, the second
	// stopping at the newest bump event, rather than reading every event.
	q := `SELECT c.room_id,
		COALESCE((SELECT MAX(stream_pos) FROM events WHERE room_id = c.room_id), 0),
		COALESCE((SELECT stream_pos FROM events WHERE room_id = c.room_id AND type IN (` + strings.Join(ph, ",") + `)
			ORDER BY stream_pos DESC LIMIT 1), 0)
		FROM current_state c WHERE c.type = 'm.room.member' AND c.state_key = $1`
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RoomActivity
	for rows.Next() {
		var a RoomActivity
		if err := rows.Scan(&a.RoomID, &a.Latest, &a.Bump); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
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
