package storage

import (
	"context"
	"database/sql"
	"errors"
)

// ServerNoticeRoom returns the user's server notices room, or "" when the
// user never got a notice.
func (db *DB) ServerNoticeRoom(ctx context.Context, userID string) (string, error) {
	var roomID string
	err := db.read.QueryRowContext(ctx, `SELECT room_id FROM server_notice_rooms WHERE user_id = $1`, userID).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return roomID, err
}

// ServerNoticeRoomOwner returns the user whose server notices room roomID
// is, or "" when it is no such room.
func (db *DB) ServerNoticeRoomOwner(ctx context.Context, roomID string) (string, error) {
	var userID string
	err := db.read.QueryRowContext(ctx, `SELECT user_id FROM server_notice_rooms WHERE room_id = $1`, roomID).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return userID, err
}

// SetServerNoticeRoom records (or replaces) the user's server notices room.
func (db *DB) SetServerNoticeRoom(ctx context.Context, userID, roomID string) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO server_notice_rooms (user_id, room_id) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id`, userID, roomID)
		return err
	})
}
