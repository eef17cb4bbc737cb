package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// User is an account row.
type User struct {
	UserID       string
	Localpart    string
	PasswordHash string
	IsAdmin      bool
	Deactivated  bool
	Locked       bool
	Suspended    bool
	DisplayName  string
	AvatarURL    string
	CreatedTS    int64
	// IsGuest marks a guest account (POST /register?kind=guest).
	IsGuest bool
	// Threepids are associated with the account by CreateUser and
	// CreateUserWithToken in the same transaction (an email address
	// validated during registration); GetUser does not fill them.
	Threepids []Threepid
}

// ErrExists is returned when a unique row already exists.
var ErrExists = errors.New("already exists")

// CreateUser inserts a user; ErrExists if the localpart is taken.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	return db.Write(ctx, func(tx *Tx) error { return insertUser(ctx, tx, u) })
}

// insertUser inserts the user row and its 3PIDs: ErrExists if the
// localpart is taken, ErrThreepidInUse if a 3PID is.
func insertUser(ctx context.Context, tx *Tx, u User) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO users (user_id, localpart, password_hash, is_admin, displayname, created_ts, is_guest)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.UserID, u.Localpart, nullStr(u.PasswordHash), u.IsAdmin, nullStr(u.DisplayName), u.CreatedTS, u.IsGuest)
	if isUniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	for _, t := range u.Threepids {
		t.UserID = u.UserID
		if err := insertThreepid(ctx, tx, t); err != nil {
			return err
		}
	}
	return nil
}

func isUniqueViolation(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint") || strings.Contains(err.Error(), "duplicate key"))
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

const userCols = `user_id, localpart, COALESCE(password_hash, ''), is_admin, deactivated, locked, suspended, COALESCE(displayname, ''), COALESCE(avatar_url, ''), created_ts, is_guest`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	err := row.Scan(&u.UserID, &u.Localpart, &u.PasswordHash, &u.IsAdmin, &u.Deactivated, &u.Locked, &u.Suspended, &u.DisplayName, &u.AvatarURL, &u.CreatedTS, &u.IsGuest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &u, err
}

// GetUser returns the user or ErrNotFound.
func (db *DB) GetUser(ctx context.Context, userID string) (*User, error) {
	return scanUser(db.read.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE user_id = $1`, userID))
}

// FirstUserID returns the ID of the oldest account, or "" when there is
// none: its server part is the server name the data was created under.
func (db *DB) FirstUserID(ctx context.Context) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT user_id FROM users ORDER BY created_ts, user_id LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// ListUsers returns all users ordered by ID.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY user_id`)
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

// SetPassword replaces a user's password hash.
func (db *DB) SetPassword(ctx context.Context, userID, hash string) error {
	return db.execOne(ctx, `UPDATE users SET password_hash = $2 WHERE user_id = $1`, userID, hash)
}

// SetProfile updates display name and avatar (nil leaves a field alone).
func (db *DB) SetProfile(ctx context.Context, userID string, displayName, avatarURL *string) error {
	return db.Write(ctx, func(tx *Tx) error {
		if displayName != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET displayname = $2 WHERE user_id = $1`, userID, nullStr(*displayName)); err != nil {
				return err
			}
		}
		if avatarURL != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET avatar_url = $2 WHERE user_id = $1`, userID, nullStr(*avatarURL)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeactivateUser marks the account deactivated, clears its password and
// removes every device and token.
func (db *DB) DeactivateUser(ctx context.Context, userID string) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET deactivated = 1, password_hash = NULL WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM to_device WHERE user_id = $1`, userID); err != nil {
			return err
		}
		// Custom profile fields go with the display name and avatar, which
		// the account service clears after leaving the rooms.
		if _, err := tx.ExecContext(ctx, `DELETE FROM profile_fields WHERE user_id = $1`, userID); err != nil {
			return err
		}
		// A deactivated account gives up its email addresses, so that they
		// can be used for another account (and cannot reset a password).
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_threepids WHERE user_id = $1`, userID); err != nil {
			return err
		}
		for _, t := range []string{"device_keys", "one_time_keys", "fallback_keys"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE user_id = $1`, userID); err != nil {
				return err
			}
		}
		return markDeviceListChanged(ctx, tx, userID)
	})
}

func (db *DB) execOne(ctx context.Context, q string, args ...any) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// Device is a login session of a user.
type Device struct {
	UserID      string
	DeviceID    string
	DisplayName string
	LastSeenTS  int64
	LastSeenIP  string
}

// UpsertDevice creates the device or, if it exists, gives it a new
// non-expiring access token and no refresh token (a re-login with the same
// device_id replaces the old session).
func (db *DB) UpsertDevice(ctx context.Context, userID, deviceID, displayName, tokenHash string, now int64) error {
	return db.UpsertSession(ctx, Session{UserID: userID, DeviceID: deviceID, DisplayName: displayName, TokenHash: tokenHash}, now)
}

// ErrTokenUsedUp is returned when a registration token can no longer be used.
var ErrTokenUsedUp = errors.New("registration token used up")

// UpgradeGuest turns a guest account into a full one with a password (""
// for none), consuming one use of token when it is not "". ErrNotFound if
// the user is not (or no longer) a guest, ErrTokenUsedUp if the token is
// no longer valid; nothing changes then.
func (db *DB) UpgradeGuest(ctx context.Context, userID, passwordHash, token string, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		if token != "" {
			res, err := tx.ExecContext(ctx, `UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1 AND revoked = 0
				AND (uses_allowed IS NULL OR completed < uses_allowed) AND (expiry_ts IS NULL OR expiry_ts > $2)`, token, now)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrTokenUsedUp
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET is_guest = 0, password_hash = $2 WHERE user_id = $1 AND is_guest = 1 AND deactivated = 0`,
			userID, nullStr(passwordHash))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// JoinedGuests returns the guest accounts joined to a room.
func (db *DB) JoinedGuests(ctx context.Context, roomID string) ([]string, error) {
	return db.strings(ctx, `SELECT cs.state_key FROM current_state cs JOIN users u ON u.user_id = cs.state_key
		WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.membership = 'join' AND u.is_guest = 1`, roomID)
}

// ListDevices returns a user's devices.
func (db *DB) ListDevices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, device_id, COALESCE(display_name, ''), last_seen_ts, last_seen_ip
		FROM devices WHERE user_id = $1 ORDER BY device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		if err := rows.Scan(&d.UserID, &d.DeviceID, &d.DisplayName, &d.LastSeenTS, &d.LastSeenIP); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetDeviceName renames a device.
func (db *DB) SetDeviceName(ctx context.Context, userID, deviceID, name string) error {
	return db.execOne(ctx, `UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`, userID, deviceID, nullStr(name))
}

// TouchDevice records last-seen information.
func (db *DB) TouchDevice(ctx context.Context, userID, deviceID, ip string, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen_ts = $3, last_seen_ip = $4 WHERE user_id = $1 AND device_id = $2`,
			userID, deviceID, now, ip)
		return err
	})
}

// DeleteDevices removes devices (all of the user's when deviceIDs is nil
// and keep is ""; keep names one device to spare). It also drops their
// pending to-device messages and E2EE keys and marks the device list changed.
func (db *DB) DeleteDevices(ctx context.Context, userID string, deviceIDs []string, keep string) error {
	return db.Write(ctx, func(tx *Tx) error {
		if deviceIDs == nil {
			rows, err := tx.QueryContext(ctx, `SELECT device_id FROM devices WHERE user_id = $1 AND device_id != $2`, userID, keep)
			if err != nil {
				return err
			}
			for rows.Next() {
				var d string
				if err := rows.Scan(&d); err != nil {
					rows.Close()
					return err
				}
				deviceIDs = append(deviceIDs, d)
			}
			rows.Close()
		}
		for _, d := range deviceIDs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = $2`, userID, d); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM to_device WHERE user_id = $1 AND device_id = $2`, userID, d); err != nil {
				return err
			}
			if err := deleteDeviceKeys(ctx, tx, userID, d); err != nil {
				return err
			}
			if err := deleteDeviceSettings(ctx, tx, userID, d); err != nil {
				return err
			}
		}
		if len(deviceIDs) > 0 {
			return markDeviceListChanged(ctx, tx, userID)
		}
		return nil
	})
}

// LocalNotificationSettingsPrefix starts the type of the global account
// data entry that holds one device's notification settings (MSC3890); the
// device ID completes it.
const LocalNotificationSettingsPrefix = "org.matrix.msc3890.local_notification_settings."

// deleteDeviceSettings deletes a device's notification settings with the
// device (MSC3890), so that no client shows settings of a device that is
// gone. It is a deletion as MSC3391 has it: the user's syncs learn of it.
func deleteDeviceSettings(ctx context.Context, tx *Tx, userID, deviceID string) error {
	typ := LocalNotificationSettingsPrefix + deviceID
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM account_data WHERE user_id = $1 AND room_id = '' AND type = $2 AND content <> $3`,
		userID, typ, DeletedAccountData).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE account_data SET content = $4, stream_pos = $3 WHERE user_id = $1 AND room_id = '' AND type = $2`,
		userID, typ, tx.NextPos(StreamAccountData), DeletedAccountData)
	return err
}

// RegistrationToken is an invite-style token for token-gated registration.
type RegistrationToken struct {
	Token       string
	UsesAllowed *int64
	Completed   int64
	ExpiryTS    *int64
	CreatedTS   int64
	Revoked     bool
}

// CreateRegistrationToken stores a new token.
func (db *DB) CreateRegistrationToken(ctx context.Context, t RegistrationToken) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO registration_tokens (token, uses_allowed, expiry_ts, created_ts) VALUES ($1, $2, $3, $4)`,
			t.Token, t.UsesAllowed, t.ExpiryTS, t.CreatedTS)
		if isUniqueViolation(err) {
			return ErrExists
		}
		return err
	})
}

// ListRegistrationTokens returns every token.
func (db *DB) ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT token, uses_allowed, completed, expiry_ts, created_ts, revoked FROM registration_tokens ORDER BY created_ts`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RegistrationToken
	for rows.Next() {
		var t RegistrationToken
		var uses, exp sql.NullInt64
		if err := rows.Scan(&t.Token, &uses, &t.Completed, &exp, &t.CreatedTS, &t.Revoked); err != nil {
			return nil, err
		}
		if uses.Valid {
			t.UsesAllowed = &uses.Int64
		}
		if exp.Valid {
			t.ExpiryTS = &exp.Int64
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeRegistrationToken makes a token unusable.
func (db *DB) RevokeRegistrationToken(ctx context.Context, token string) error {
	return db.execOne(ctx, `UPDATE registration_tokens SET revoked = 1 WHERE token = $1`, token)
}

// RegistrationTokenValid reports whether a token can still be used.
func (db *DB) RegistrationTokenValid(ctx context.Context, token string, now int64) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM registration_tokens WHERE token = $1 AND revoked = 0
		AND (uses_allowed IS NULL OR completed < uses_allowed) AND (expiry_ts IS NULL OR expiry_ts > $2)`, token, now).Scan(&n)
	return n > 0, err
}

// CreateUserWithToken atomically consumes one use of a registration token
// and creates the user, so two registrations cannot both take the last use.
func (db *DB) CreateUserWithToken(ctx context.Context, u User, token string, now int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1 AND revoked = 0
			AND (uses_allowed IS NULL OR completed < uses_allowed) AND (expiry_ts IS NULL OR expiry_ts > $2)`, token, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("registration token: %w", ErrNotFound)
		}
		return insertUser(ctx, tx, u)
	})
}
