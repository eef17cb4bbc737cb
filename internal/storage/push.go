package storage

import (
	"context"
	"database/sql"
	"errors"
)

// NotifiableEvents returns a room's events in (after, upto] not sent by
// userID and not redacted, newest first, at most limit: the candidates push
// rules decide counts from (any type can notify once users write rules).
func (db *DB) NotifiableEvents(ctx context.Context, roomID, userID string, after, upto int64, limit int) ([]*Event, error) {
	return db.queryEvents(ctx, `WHERE room_id = $1 AND stream_pos > $2 AND stream_pos <= $3 AND sender != $4
		AND redacted_by IS NULL ORDER BY stream_pos DESC LIMIT $5`, roomID, after, upto, userID, limit)
}

// UserReadMarks returns the position of the user's newest unthreaded read
// receipt in a room (which reads every thread), and the newest stream
// position of any of their threaded receipts there ("main" or a thread),
// which changes whenever one does; UserThreadReadPositions has those.
func (db *DB) UserReadMarks(ctx context.Context, roomID, userID string) (readPos, threadStamp int64, err error) {
	var p, t sql.NullInt64
	err = db.read.QueryRowContext(ctx, `SELECT
		MAX(CASE WHEN thread_id = '' THEN event_pos END),
		MAX(CASE WHEN thread_id != '' THEN stream_pos END)
		FROM receipts WHERE room_id = $1 AND user_id = $2 AND receipt_type IN ('m.read', 'm.read.private')`,
		roomID, userID).Scan(&p, &t)
	return p.Int64, t.Int64, err
}

// NotificationCandidates returns events before stream position before
// (exclusive; 0 means from the newest) in the rooms the user is joined to,
// plus invites of the user, not sent by the user and not redacted, newest
// first, at most limit.
func (db *DB) NotificationCandidates(ctx context.Context, userID string, before int64, limit int) ([]*Event, error) {
	if before <= 0 {
		before = db.Position() + 1
	}
	return db.queryEvents(ctx, `WHERE stream_pos < $1 AND stream_pos > 0 AND sender != $2 AND redacted_by IS NULL
		AND (room_id IN (SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $2 AND membership = 'join')
		     OR (type = 'm.room.member' AND state_key = $2))
		ORDER BY stream_pos DESC LIMIT $3`, before, userID, limit)
}

// Pusher is one registered pusher.
type Pusher struct {
	UserID            string
	AppID             string
	PushKey           string
	Kind              string
	AppDisplayName    string
	DeviceDisplayName string
	ProfileTag        string
	Lang              string
	Data              string // JSON object
	DeviceID          string
	CreatedTS         int64
}

const pusherCols = `user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data, device_id, created_ts`

func scanPushers(rows *sql.Rows, err error) ([]Pusher, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pusher
	for rows.Next() {
		var p Pusher
		if err := rows.Scan(&p.UserID, &p.AppID, &p.PushKey, &p.Kind, &p.AppDisplayName, &p.DeviceDisplayName,
			&p.ProfileTag, &p.Lang, &p.Data, &p.DeviceID, &p.CreatedTS); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Pushers returns a user's pushers.
func (db *DB) Pushers(ctx context.Context, userID string) ([]Pusher, error) {
	return scanPushers(db.read.QueryContext(ctx, `SELECT `+pusherCols+` FROM pushers WHERE user_id = $1 ORDER BY created_ts, app_id, pushkey`, userID))
}

// PusherUsers lists the users with at least one pusher.
func (db *DB) PusherUsers(ctx context.Context) ([]string, error) {
	return db.strings(ctx, `SELECT DISTINCT user_id FROM pushers`)
}

// SetPusher adds or replaces a pusher. Unless appendOthers, pushers with
// the same app ID and pushkey for other users are removed (and their
// queued pushes with them).
func (db *DB) SetPusher(ctx context.Context, p Pusher, appendOthers bool) error {
	return db.Write(ctx, func(tx *Tx) error {
		if !appendOthers {
			if _, err := tx.ExecContext(ctx, `DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id != $3`, p.AppID, p.PushKey, p.UserID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM push_queue WHERE app_id = $1 AND pushkey = $2 AND user_id != $3`, p.AppID, p.PushKey, p.UserID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pushers (`+pusherCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET kind = excluded.kind, app_display_name = excluded.app_display_name,
			device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag, lang = excluded.lang,
			data = excluded.data, device_id = excluded.device_id, created_ts = excluded.created_ts`,
			p.UserID, p.AppID, p.PushKey, p.Kind, p.AppDisplayName, p.DeviceDisplayName, p.ProfileTag, p.Lang, p.Data, p.DeviceID, p.CreatedTS)
		return err
	})
}

// DeletePusher removes a pusher and its queued pushes; it reports whether
// the pusher existed.
func (db *DB) DeletePusher(ctx context.Context, userID, appID, pushkey string) (bool, error) {
	found := false
	err := db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`, userID, appID, pushkey)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		found = n > 0
		_, err = tx.ExecContext(ctx, `DELETE FROM push_queue WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`, userID, appID, pushkey)
		return err
	})
	return found, err
}

// DeleteOrphanPushers removes the pushers (and their queued pushes) of a
// user that were created by devices that no longer exist.
func (db *DB) DeleteOrphanPushers(ctx context.Context, userID string) error {
	return db.Write(ctx, func(tx *Tx) error {
		const orphans = `SELECT app_id, pushkey FROM pushers WHERE user_id = $1 AND device_id != ''
			AND device_id NOT IN (SELECT device_id FROM devices WHERE user_id = $1)`
		_, err := tx.ExecContext(ctx, `DELETE FROM push_queue WHERE user_id = $1 AND (app_id, pushkey) IN (`+orphans+`)`, userID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pushers WHERE user_id = $1 AND (app_id, pushkey) IN (`+orphans+`)`, userID)
		return err
	})
}

// PushJob is one queued push to one pusher.
type PushJob struct {
	ID        int64
	UserID    string
	AppID     string
	PushKey   string
	EventID   string // "" for a badge-only update
	RoomID    string
	Tweaks    string
	Attempts  int
	NextTryTS int64
	CreatedTS int64
}

// PushCursor returns a push worker stream cursor (ok false when never set).
func (db *DB) PushCursor(ctx context.Context, name string) (int64, bool, error) {
	var p int64
	err := db.read.QueryRowContext(ctx, `SELECT pos FROM push_cursors WHERE name = $1`, name).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return p, err == nil, err
}

// EnqueuePushes stores jobs and moves cursors in one transaction, so a
// stream position is either fully turned into jobs or not at all.
func (db *DB) EnqueuePushes(ctx context.Context, jobs []PushJob, cursors map[string]int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		for _, j := range jobs {
			if j.EventID == "" {
				// One pending badge update per pusher is enough: it
				// reads the count when it is sent.
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_queue WHERE user_id = $1 AND app_id = $2 AND pushkey = $3 AND event_id = ''`,
					j.UserID, j.AppID, j.PushKey).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					continue
				}
			}
			// A pusher in back-off keeps its queue in order: new jobs wait
			// with the ones before them.
			if _, err := tx.ExecContext(ctx, `INSERT INTO push_queue (user_id, app_id, pushkey, event_id, room_id, tweaks, next_try_ts, created_ts)
				VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(next_try_ts), 0) FROM push_queue WHERE user_id = $1 AND app_id = $2 AND pushkey = $3), $7)`,
				j.UserID, j.AppID, j.PushKey, j.EventID, j.RoomID, j.Tweaks, j.CreatedTS); err != nil {
				return err
			}
		}
		for name, pos := range cursors {
			if _, err := tx.ExecContext(ctx, `INSERT INTO push_cursors (name, pos) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET pos = excluded.pos`, name, pos); err != nil {
				return err
			}
		}
		return nil
	})
}

// DuePushes returns the jobs due at now (next_try_ts <= now) in queue
// order, at most limit.
func (db *DB) DuePushes(ctx context.Context, now int64, limit int) ([]PushJob, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, user_id, app_id, pushkey, event_id, room_id, tweaks, attempts, next_try_ts, created_ts
		FROM push_queue WHERE next_try_ts <= $1 ORDER BY id LIMIT $2`, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PushJob
	for rows.Next() {
		var j PushJob
		if err := rows.Scan(&j.ID, &j.UserID, &j.AppID, &j.PushKey, &j.EventID, &j.RoomID, &j.Tweaks, &j.Attempts, &j.NextTryTS, &j.CreatedTS); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// NextPushTime is the earliest next_try_ts in the queue (ok false when the
// queue is empty).
func (db *DB) NextPushTime(ctx context.Context) (int64, bool, error) {
	var t sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT MIN(next_try_ts) FROM push_queue`).Scan(&t)
	return t.Int64, t.Valid, err
}

// QueuedPushes counts the jobs in the queue.
func (db *DB) QueuedPushes(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_queue`).Scan(&n)
	return n, err
}

// DeletePush removes a delivered (or abandoned) job.
func (db *DB) DeletePush(ctx context.Context, id int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM push_queue WHERE id = $1`, id)
		return err
	})
}

// RetryPush records a failed attempt of a job and holds back every job of
// that pusher until nextTryTS, so a pusher's pushes stay in order.
func (db *DB) RetryPush(ctx context.Context, j PushJob, attempts int, nextTryTS int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE push_queue SET attempts = $1 WHERE id = $2`, attempts, j.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE push_queue SET next_try_ts = $1 WHERE user_id = $2 AND app_id = $3 AND pushkey = $4`,
			nextTryTS, j.UserID, j.AppID, j.PushKey)
		return err
	})
}
