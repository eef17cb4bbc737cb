package storage

import (
	"context"
	"database/sql"
	"errors"
)

// UpdateAccountData reads one account data entry and replaces it with what
// fn returns, in one write transaction, so read-modify-write updates (tags,
// the fully-read marker) cannot lose a concurrent change. fn gets the old
// content (nil when absent or deleted) and reports whether to write. It returns
// whether a new entry was written.
func (db *DB) UpdateAccountData(ctx context.Context, userID, roomID, typ string,
	fn func(old []byte) (content []byte, write bool, err error)) (bool, error) {
	written := false
	err := db.Write(ctx, func(tx *Tx) error {
		var c string
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
			userID, roomID, typ).Scan(&c)
		switch {
		case err == nil:
			if c != DeletedAccountData {
				old = []byte(c)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		content, write, err := fn(old)
		if err != nil || !write {
			return err
		}
		pos := tx.NextPos(StreamAccountData)
		_, err = tx.ExecContext(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
			userID, roomID, typ, string(content), pos)
		tx.Changed(accountDataChange(userID, roomID, typ, pos))
		written = err == nil
		return err
	})
	return written, err
}

// ShareRoom reports whether two users are both joined to some room.
func (db *DB) ShareRoom(ctx context.Context, a, b string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM current_state x JOIN current_state y ON x.room_id = y.room_id
		WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join'
		AND y.type = 'm.room.member' AND y.state_key = $2 AND y.membership = 'join' LIMIT 1`, a, b).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// JoinedRooms lists the rooms a user is joined to.
func (db *DB) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1 AND membership = 'join'`, userID)
}

// JoinedMemberCount counts a room's joined members.
func (db *DB) JoinedMemberCount(ctx context.Context, roomID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM current_state WHERE room_id = $1 AND type = 'm.room.member' AND membership = 'join'`,
		roomID).Scan(&n)
	return n, err
}

// SearchLocalUsers finds active local users, case-insensitively, whose
// localpart or display name contains term or whose user ID starts with it,
// ordered by user ID; offset and limit page through the matches.
func (db *DB) SearchLocalUsers(ctx context.Context, term string, offset, limit int) ([]User, error) {
	// Both sides are lowered in SQL: SQLite's LIKE ignores ASCII case by
	// itself, PostgreSQL's does not, and lower() agrees with itself on
	// either engine (SQLite's lowers ASCII only).
	t := escapeLike(term)
	rows, err := db.read.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE deactivated = 0
		AND (LOWER(localpart) LIKE LOWER($1) ESCAPE '\' OR LOWER(COALESCE(displayname, '')) LIKE LOWER($1) ESCAPE '\' OR LOWER(user_id) LIKE LOWER($2) ESCAPE '\')
		ORDER BY user_id LIMIT $3 OFFSET $4`, "%"+t+"%", t+"%", limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}
