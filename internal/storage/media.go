package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Media is a local media ID. SHA256 names the file holding its bytes; it is
// empty while an asynchronous upload is pending.
type Media struct {
	MediaID           string
	UserID            string
	SHA256            string
	Size              int64
	ContentType       string
	UploadName        string
	CreatedTS         int64
	ExpiresTS         int64 // pending uploads only
	AuthenticatedOnly bool
}

// Pending reports whether the media ID still waits for its bytes.
func (m *Media) Pending() bool { return m.SHA256 == "" }

// ErrForbidden is returned when a row belongs to someone else.
var ErrForbidden = errors.New("forbidden")

// ErrLimit is returned when a per-user limit on rows is reached.
var ErrLimit = errors.New("limit reached")

const mediaCols = `media_id, user_id, COALESCE(sha256, ''), size, content_type, upload_name, created_ts, COALESCE(expires_ts, 0), authenticated_only`

func scanMedia(row interface{ Scan(...any) error }) (*Media, error) {
	var m Media
	err := row.Scan(&m.MediaID, &m.UserID, &m.SHA256, &m.Size, &m.ContentType, &m.UploadName, &m.CreatedTS, &m.ExpiresTS, &m.AuthenticatedOnly)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &m, err
}

// InsertMedia records a finished upload; ErrExists if the ID is taken.
func (db *DB) InsertMedia(ctx context.Context, m Media) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO media (media_id, user_id, sha256, size, content_type, upload_name, created_ts, authenticated_only)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, m.MediaID, m.UserID, m.SHA256, m.Size, m.ContentType, m.UploadName, m.CreatedTS, m.AuthenticatedOnly)
		if isUniqueViolation(err) {
			return ErrExists
		}
		return err
	})
}

// CreatePendingMedia reserves a media ID for an asynchronous upload. It
// returns ErrLimit when the user already has maxPending unexpired
// reservations (expired ones are dropped first).
func (db *DB) CreatePendingMedia(ctx context.Context, m Media, now int64, maxPending int) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE user_id = $1 AND sha256 IS NULL AND expires_ts < $2`, m.UserID, now); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE user_id = $1 AND sha256 IS NULL`, m.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= maxPending {
			return ErrLimit
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO media (media_id, user_id, created_ts, expires_ts) VALUES ($1, $2, $3, $4)`,
			m.MediaID, m.UserID, m.CreatedTS, m.ExpiresTS)
		if isUniqueViolation(err) {
			return ErrExists
		}
		return err
	})
}

// CompletePendingMedia fills in the bytes of a pending media ID created by
// m.UserID. Errors: ErrNotFound (unknown or expired), ErrForbidden (created
// by someone else), ErrExists (already uploaded).
func (db *DB) CompletePendingMedia(ctx context.Context, m Media, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		cur, err := scanMedia(tx.QueryRowContext(ctx, `SELECT `+mediaCols+` FROM media WHERE media_id = $1`, m.MediaID))
		if err != nil {
			return err
		}
		switch {
		case cur.UserID != m.UserID:
			return ErrForbidden
		case !cur.Pending():
			return ErrExists
		case cur.ExpiresTS < now:
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE media SET sha256 = $2, size = $3, content_type = $4, upload_name = $5, expires_ts = NULL, authenticated_only = $6
			WHERE media_id = $1`, m.MediaID, m.SHA256, m.Size, m.ContentType, m.UploadName, m.AuthenticatedOnly)
		return err
	})
}

// GetMedia returns a media ID's row or ErrNotFound.
func (db *DB) GetMedia(ctx context.Context, mediaID string) (*Media, error) {
	return scanMedia(db.read.QueryRowContext(ctx, `SELECT `+mediaCols+` FROM media WHERE media_id = $1`, mediaID))
}

// MediaUsage is the total size of a user's uploads.
func (db *DB) MediaUsage(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM media WHERE user_id = $1`, userID).Scan(&n)
	return n, err
}

// MediaFilter selects media for deletion; zero fields do not restrict.
// At least one field must be set.
type MediaFilter struct {
	Before      int64  // created before this time (ms)
	UserID      string // uploaded by this user
	Deactivated bool   // uploaded by deactivated users
}

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// DeleteMedia deletes the selected media rows (and expired pending
// reservations) and returns how many rows and bytes went, and the content
// hashes that no remaining row refers to, whose files may now be removed.
// With dryRun it works out the same answer and rolls everything back.
func (db *DB) DeleteMedia(ctx context.Context, f MediaFilter, now int64, dryRun bool) (n, bytes int64, orphans []string, err error) {
	var conds []string
	var args []any
	if f.Before != 0 {
		args = append(args, f.Before)
		conds = append(conds, fmt.Sprintf("created_ts < $%d", len(args)))
	}
	if f.UserID != "" {
		args = append(args, f.UserID)
		conds = append(conds, fmt.Sprintf("user_id = $%d", len(args)))
	}
	if f.Deactivated {
		conds = append(conds, "user_id IN (SELECT user_id FROM users WHERE deactivated)")
	}
	if len(conds) == 0 {
		return 0, 0, nil, errors.New("delete media: empty filter")
	}
	where := strings.Join(conds, " AND ")
	err = db.Write(ctx, func(tx *Tx) error {
		n, bytes, orphans = 0, 0, nil
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT sha256 FROM media WHERE sha256 IS NOT NULL AND `+where, args...)
		if err != nil {
			return err
		}
		var hashes []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return err
			}
			hashes = append(hashes, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM media WHERE `+where, args...).Scan(&n, &bytes); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE `+where, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE sha256 IS NULL AND expires_ts < $1`, now); err != nil {
			return err
		}
		for _, h := range hashes {
			var refs int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE sha256 = $1`, h).Scan(&refs); err != nil {
				return err
			}
			if refs == 0 {
				orphans = append(orphans, h)
			}
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	return n, bytes, orphans, err
}

// MediaReferenced reports whether any media row uses the content hash.
func (db *DB) MediaReferenced(ctx context.Context, sha256 string) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE sha256 = $1`, sha256).Scan(&n)
	return n > 0, err
}
