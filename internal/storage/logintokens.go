package storage

import (
	"context"
	"database/sql"
	"errors"
)

// AddLoginToken stores a login token (by hash) valid until expiresTS, and
// drops expired ones.
func (db *DB) AddLoginToken(ctx context.Context, tokenHash, userID string, now, expiresTS int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_tokens WHERE expires_ts <= $1`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`,
			tokenHash, userID, expiresTS)
		return err
	})
}

// ConsumeLoginToken removes a login token and returns its user if it had
// not expired at now; ErrNotFound otherwise. A token works once.
func (db *DB) ConsumeLoginToken(ctx context.Context, tokenHash string, now int64) (string, error) {
	var user string
	err := db.Write(ctx, func(tx *Tx) error {
		var expires int64
		err := tx.QueryRowContext(ctx, `DELETE FROM login_tokens WHERE token_hash = $1 RETURNING user_id, expires_ts`, tokenHash).Scan(&user, &expires)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now) {
			return ErrNotFound
		}
		return err
	})
	return user, err
}
