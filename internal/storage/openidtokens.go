package storage

import (
	"context"
	"database/sql"
	"errors"
)

// AddOpenIDToken stores an OpenID token (by hash) valid until expiresTS,
// and drops expired ones, so the table holds only live tokens.
func (db *DB) AddOpenIDToken(ctx context.Context, tokenHash, userID string, now, expiresTS int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM openid_tokens WHERE expires_ts <= $1`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`,
			tokenHash, userID, expiresTS)
		return err
	})
}

// OpenIDTokenUser returns the user of an OpenID token that has not expired
// at now; ErrNotFound otherwise. Unlike login tokens it may be asked about
// any number of times until it expires.
func (db *DB) OpenIDTokenUser(ctx context.Context, tokenHash string, now int64) (string, error) {
	var user string
	var expires int64
	err := db.read.QueryRowContext(ctx, `SELECT user_id, expires_ts FROM openid_tokens WHERE token_hash = $1`, tokenHash).Scan(&user, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now) {
		return "", ErrNotFound
	}
	return user, err
}
