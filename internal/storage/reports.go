package storage

import (
	"context"
	"database/sql"
)

// Report is one abuse report sent by a local user.
type Report struct {
	ID         int64
	Kind       string // "event", "room" or "user"
	Reporter   string
	RoomID     string
	EventID    string
	UserID     string
	Reason     string
	Score      *int64
	CreatedTS  int64
	ResolvedTS int64
}

// AddReport stores a report and returns its ID.
func (db *DB) AddReport(ctx context.Context, r Report) (int64, error) {
	var id int64
	err := db.Write(ctx, func(tx *Tx) error {
		var score sql.NullInt64
		if r.Score != nil {
			score = sql.NullInt64{Int64: *r.Score, Valid: true}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO reports (kind, reporter, room_id, event_id, user_id, reason, score, created_ts)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			r.Kind, r.Reporter, r.RoomID, r.EventID, r.UserID, r.Reason, score, r.CreatedTS).Scan(&id)
	})
	return id, err
}

// ListReports returns reports oldest first; all of them, or only the open ones.
func (db *DB) ListReports(ctx context.Context, includeResolved bool) ([]Report, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, kind, reporter, room_id, event_id, user_id, reason, score, created_ts, resolved_ts
		FROM reports WHERE resolved_ts = 0 OR $1 ORDER BY id`, includeResolved)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		var r Report
		var score sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Reporter, &r.RoomID, &r.EventID, &r.UserID, &r.Reason, &score, &r.CreatedTS, &r.ResolvedTS); err != nil {
			return nil, err
		}
		if score.Valid {
			r.Score = &score.Int64
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ResolveReport marks an open report resolved at ts; ErrNotFound when no
// open report has that ID.
func (db *DB) ResolveReport(ctx context.Context, id, ts int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE reports SET resolved_ts = $1 WHERE id = $2 AND resolved_ts = 0`, ts, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}
