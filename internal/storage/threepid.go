package storage

import (
	"context"
	"database/sql"
	"errors"
)

// Threepid is a third-party identifier associated with an account.
type Threepid struct {
	UserID      string
	Medium      string
	Address     string
	ValidatedTS int64
	AddedTS     int64
}

// ErrThreepidInUse is returned when a 3PID is already associated with an
// account.
var ErrThreepidInUse = errors.New("third-party identifier in use")

func insertThreepid(ctx context.Context, tx *Tx, t Threepid) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO user_threepids (medium, address, user_id, validated_ts, added_ts)
		VALUES ($1, $2, $3, $4, $5)`, t.Medium, t.Address, t.UserID, t.ValidatedTS, t.AddedTS)
	if isUniqueViolation(err) {
		return ErrThreepidInUse
	}
	return err
}

// AddThreepidFromSession associates t with its user and deletes the
// validation session sid in one transaction, so a session adds at most one
// association. ErrNotFound if the session is gone (used meanwhile),
// ErrThreepidInUse if the address has an owner.
func (db *DB) AddThreepidFromSession(ctx context.Context, t Threepid, sid string) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM threepid_sessions WHERE sid = $1 AND validated_ts > 0`, sid)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM threepid_tokens WHERE sid = $1`, sid); err != nil {
			return err
		}
		return insertThreepid(ctx, tx, t)
	})
}

// DeleteThreepid removes an association of userID; ErrNotFound if the
// user has no such 3PID.
func (db *DB) DeleteThreepid(ctx context.Context, userID, medium, address string) error {
	return db.execOne(ctx, `DELETE FROM user_threepids WHERE user_id = $1 AND medium = $2 AND address = $3`, userID, medium, address)
}

// UserThreepids lists a user's 3PIDs, oldest first.
func (db *DB) UserThreepids(ctx context.Context, userID string) ([]Threepid, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT medium, address, validated_ts, added_ts FROM user_threepids
		WHERE user_id = $1 ORDER BY added_ts, medium, address`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Threepid
	for rows.Next() {
		t := Threepid{UserID: userID}
		if err := rows.Scan(&t.Medium, &t.Address, &t.ValidatedTS, &t.AddedTS); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ThreepidOwner returns the user a 3PID is associated with, or ErrNotFound.
func (db *DB) ThreepidOwner(ctx context.Context, medium, address string) (string, error) {
	var user string
	err := db.read.QueryRowContext(ctx, `SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2`, medium, address).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return user, err
}

// ThreepidSession is a validation session of /requestToken.
type ThreepidSession struct {
	SID              string
	ClientSecretHash string
	Medium           string
	Address          string
	Purpose          string
	SendAttempt      int64
	NextLink         string
	CreatedTS        int64
	ValidatedTS      int64 // 0 until validated
	ExpiresTS        int64
}

const threepidSessionCols = `sid, client_secret_hash, medium, address, purpose, send_attempt, next_link, created_ts, validated_ts, expires_ts`

func scanThreepidSession(row interface{ Scan(...any) error }) (*ThreepidSession, error) {
	var s ThreepidSession
	err := row.Scan(&s.SID, &s.ClientSecretHash, &s.Medium, &s.Address, &s.Purpose, &s.SendAttempt, &s.NextLink, &s.CreatedTS, &s.ValidatedTS, &s.ExpiresTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &s, err
}

// ThreepidSessionBySecret finds the live session of a client secret (by
// hash) for an address and purpose; ErrNotFound if none.
func (db *DB) ThreepidSessionBySecret(ctx context.Context, secretHash, medium, address, purpose string, now int64) (*ThreepidSession, error) {
	return scanThreepidSession(db.read.QueryRowContext(ctx, `SELECT `+threepidSessionCols+` FROM threepid_sessions
		WHERE client_secret_hash = $1 AND medium = $2 AND address = $3 AND purpose = $4 AND expires_ts > $5`,
		secretHash, medium, address, purpose, now))
}

// GetThreepidSession returns a live session; ErrNotFound if it does not
// exist or has expired.
func (db *DB) GetThreepidSession(ctx context.Context, sid string, now int64) (*ThreepidSession, error) {
	return scanThreepidSession(db.read.QueryRowContext(ctx, `SELECT `+threepidSessionCols+` FROM threepid_sessions
		WHERE sid = $1 AND expires_ts > $2`, sid, now))
}

// SaveThreepidSend records a message sent for s: it creates the session
// or raises its send attempt and expiry, and adds the message's token. It
// also drops expired sessions and tokens. ErrExists if a concurrent
// request created the same session first.
func (db *DB) SaveThreepidSend(ctx context.Context, s ThreepidSession, tokenHash string, tokenExpires, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM threepid_tokens WHERE expires_ts <= $1
			OR sid IN (SELECT sid FROM threepid_sessions WHERE expires_ts <= $1)`, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM threepid_sessions WHERE expires_ts <= $1`, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE threepid_sessions SET send_attempt = $2, expires_ts = $3 WHERE sid = $1`,
			s.SID, s.SendAttempt, s.ExpiresTS)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			_, err = tx.ExecContext(ctx, `INSERT INTO threepid_sessions (`+threepidSessionCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)`, s.SID, s.ClientSecretHash, s.Medium, s.Address, s.Purpose,
				s.SendAttempt, s.NextLink, s.CreatedTS, s.ExpiresTS)
			if isUniqueViolation(err) {
				return ErrExists
			}
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO threepid_tokens (sid, token_hash, expires_ts) VALUES ($1, $2, $3)`, s.SID, tokenHash, tokenExpires)
		return err
	})
}

// ThreepidTokenValid reports whether tokenHash is an unexpired token of
// session sid.
func (db *DB) ThreepidTokenValid(ctx context.Context, sid, tokenHash string, now int64) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM threepid_tokens WHERE sid = $1 AND token_hash = $2 AND expires_ts > $3`,
		sid, tokenHash, now).Scan(&n)
	return n > 0, err
}

// MarkThreepidValidated records that the session's address was proven at
// now; a session validated before keeps its first time.
func (db *DB) MarkThreepidValidated(ctx context.Context, sid string, now int64) error {
	return db.execOne(ctx, `UPDATE threepid_sessions SET validated_ts = CASE WHEN validated_ts > 0 THEN validated_ts ELSE $2 END
		WHERE sid = $1`, sid, now)
}

// DeleteThreepidSession removes a session and its tokens (after use).
func (db *DB) DeleteThreepidSession(ctx context.Context, sid string) error {
	return db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM threepid_tokens WHERE sid = $1`, sid); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM threepid_sessions WHERE sid = $1`, sid)
		return err
	})
}
