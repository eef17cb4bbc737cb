package storage

import "context"

// EventsNearTS returns up to limit events of a room ordered by distance in
// time from ts: with forward, events at or after ts, earliest first;
// otherwise events at or before ts, latest first. Events with equal
// timestamps come in stream order (forward) or reverse stream order.
func (db *DB) EventsNearTS(ctx context.Context, roomID string, ts int64, forward bool, limit int) ([]*Event, error) {
	if forward {
		return db.queryEvents(ctx, `WHERE room_id = $1 AND origin_ts >= $2 ORDER BY origin_ts, stream_pos LIMIT $3`, roomID, ts, limit)
	}
	return db.queryEvents(ctx, `WHERE room_id = $1 AND origin_ts <= $2 ORDER BY origin_ts DESC, stream_pos DESC LIMIT $3`, roomID, ts, limit)
}
