package storage

import (
	"context"
	"database/sql"
	"errors"
)

// Session is the token state a login gives a device. Hashes are hex
// SHA-256; a zero expiry means the token never expires, and an empty
// RefreshHash means the session has no refresh token.
type Session struct {
	UserID, DeviceID string
	DisplayName      string // for a new device
	TokenHash        string
	TokenExpiresTS   int64
	RefreshHash      string
	RefreshExpiresTS int64
}

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }

// UpsertSession creates the device with the session's tokens or, if the
// device exists, replaces every token it had: a new login on a device ends
// its previous session, refresh tokens included.
func (db *DB) UpsertSession(ctx context.Context, s Session, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET token_hash = $3, token_expires_ts = $4, refresh_hash = $5, refresh_expires_ts = $6,
			prev_token_hash = NULL, prev_token_expires_ts = NULL, old_refresh_hash = NULL, last_seen_ts = $7
			WHERE user_id = $1 AND device_id = $2`,
			s.UserID, s.DeviceID, s.TokenHash, nullInt(s.TokenExpiresTS), nullStr(s.RefreshHash), nullInt(s.RefreshExpiresTS), now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, device_id, display_name, token_hash, token_expires_ts,
			refresh_hash, refresh_expires_ts, created_ts, last_seen_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			s.UserID, s.DeviceID, nullStr(s.DisplayName), s.TokenHash, nullInt(s.TokenExpiresTS),
			nullStr(s.RefreshHash), nullInt(s.RefreshExpiresTS), now); err != nil {
			return err
		}
		return markDeviceListChanged(ctx, tx, s.UserID)
	})
}

// TokenOwner is what an access token resolves to.
type TokenOwner struct {
	UserID, DeviceID  string
	IsAdmin           bool
	Locked, Suspended bool
	IsGuest           bool
	// ExpiresTS is when the token expires (0: never).
	ExpiresTS int64
	// Previous says the token is the one a refresh replaced.
	Previous bool
	// RotationPending says the token is the device's current one and the
	// refresh token it was issued for is still valid: this use ends that.
	RotationPending bool
}

// DeviceByToken resolves an access token hash (the device's current token
// or the one its last refresh replaced) to its active user and device, in
// one query: it runs on every request.
func (db *DB) DeviceByToken(ctx context.Context, tokenHash string) (*TokenOwner, error) {
	var o TokenOwner
	var current bool
	var expires sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT d.user_id, d.device_id, u.is_admin, u.locked, u.suspended, u.is_guest, d.token_hash = $1,
		CASE WHEN d.token_hash = $1 THEN d.token_expires_ts ELSE d.prev_token_expires_ts END, d.old_refresh_hash IS NOT NULL
		FROM devices d JOIN users u ON u.user_id = d.user_id
		WHERE (d.token_hash = $1 OR d.prev_token_hash = $1) AND u.deactivated = 0`, tokenHash).
		Scan(&o.UserID, &o.DeviceID, &o.IsAdmin, &o.Locked, &o.Suspended, &o.IsGuest, &current, &expires, &o.RotationPending)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.ExpiresTS = expires.Int64
	o.Previous = !current
	o.RotationPending = o.RotationPending && current
	return &o, nil
}

// FinishRotation revokes the refresh token that the device's current
// access token (tokenHash) was issued for, on that token's first use.
func (db *DB) FinishRotation(ctx context.Context, tokenHash string) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE devices SET old_refresh_hash = NULL WHERE token_hash = $1`, tokenHash)
		return err
	})
}

// RefreshOwner is the session a refresh token belongs to, as shown to the
// caller's check before anything changes.
type RefreshOwner struct {
	UserID, DeviceID string
	Locked           bool
	// ExpiresTS is when the refresh token expires (0: never).
	ExpiresTS int64
}

// RotateRefresh exchanges a refresh token (the device's current one, or
// the previous one while the pair issued for it is unused) for the new
// tokens in next, whose UserID and DeviceID are ignored. check sees the
// owner first and can refuse with an error that is returned unchanged. An
// unknown token gives ErrNotFound.
func (db *DB) RotateRefresh(ctx context.Context, refreshHash string, next Session, check func(RefreshOwner) error) (*RefreshOwner, error) {
	var o RefreshOwner
	err := db.Write(ctx, func(tx *Tx) error {
		var current bool
		var expires sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT d.user_id, d.device_id, u.locked, d.refresh_hash = $1, d.refresh_expires_ts
			FROM devices d JOIN users u ON u.user_id = d.user_id
			WHERE (d.refresh_hash = $1 OR d.old_refresh_hash = $1) AND u.deactivated = 0`, refreshHash).
			Scan(&o.UserID, &o.DeviceID, &o.Locked, &current, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		o.ExpiresTS = expires.Int64
		if err := check(o); err != nil {
			return err
		}
		if current {
			// The client holds the current pair: its access token stays
			// usable until it expires, and its refresh token until the new
			// pair is used.
			_, err = tx.ExecContext(ctx, `UPDATE devices SET prev_token_hash = token_hash, prev_token_expires_ts = token_expires_ts,
				old_refresh_hash = refresh_hash, token_hash = $3, token_expires_ts = $4, refresh_hash = $5, refresh_expires_ts = $6
				WHERE user_id = $1 AND device_id = $2`,
				o.UserID, o.DeviceID, next.TokenHash, nullInt(next.TokenExpiresTS), next.RefreshHash, nullInt(next.RefreshExpiresTS))
			return err
		}
		// A repeat with the previous refresh token: the pair issued last
		// time never reached the client (it would have used it), so it is
		// replaced and the rest stays as it was.
		_, err = tx.ExecContext(ctx, `UPDATE devices SET token_hash = $3, token_expires_ts = $4, refresh_hash = $5, refresh_expires_ts = $6
			WHERE user_id = $1 AND device_id = $2`,
			o.UserID, o.DeviceID, next.TokenHash, nullInt(next.TokenExpiresTS), next.RefreshHash, nullInt(next.RefreshExpiresTS))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// SetUserLocked locks or unlocks an account; ErrNotFound if it does not
// exist.
func (db *DB) SetUserLocked(ctx context.Context, userID string, locked bool) error {
	return db.execOne(ctx, `UPDATE users SET locked = $2 WHERE user_id = $1`, userID, locked)
}

// SetUserSuspended suspends or unsuspends an account; ErrNotFound if it
// does not exist.
func (db *DB) SetUserSuspended(ctx context.Context, userID string, suspended bool) error {
	return db.execOne(ctx, `UPDATE users SET suspended = $2 WHERE user_id = $1`, userID, suspended)
}

// UserSuspended reports whether a local account is suspended (false for
// users this server does not have).
func (db *DB) UserSuspended(ctx context.Context, userID string) (bool, error) {
	var s bool
	err := db.read.QueryRowContext(ctx, `SELECT suspended FROM users WHERE user_id = $1`, userID).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return s, err
}
