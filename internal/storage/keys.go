package storage

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// End-to-end encryption keys. The rows hold the JSON objects exactly as
// clients uploaded them (signatures and all), because clients verify those
// signatures byte-for-byte over the canonical form.

// ErrKeyConflict is returned when a one-time key ID is re-uploaded with
// different content.
var ErrKeyConflict = errors.New("one-time key already exists with different content")

// ErrTooManyKeys is returned when an upload would leave a device holding
// more than MaxOneTimeKeys unclaimed keys of one algorithm. Clients keep
// about 50; the cap only stops a client filling the database.
var ErrTooManyKeys = errors.New("too many one-time keys")

// MaxOneTimeKeys caps a device's unclaimed one-time keys per algorithm.
const MaxOneTimeKeys = 10000

// markDeviceListChanged records that user's devices or keys changed, so the
// users sharing a room with them see it in device_lists.changed.
func markDeviceListChanged(ctx context.Context, tx *Tx, user string) error {
	pos := tx.NextPos(StreamDeviceLists)
	_, err := tx.ExecContext(ctx, `INSERT INTO device_list_changes (stream_pos, user_id) VALUES ($1, $2)`, pos, user)
	tx.Changed(Change{Kind: KindDeviceList, Stream: StreamDeviceLists, Position: pos, Users: []string{user}})
	return err
}

// deleteDeviceKeys removes every key of a device (called when the device is deleted).
func deleteDeviceKeys(ctx context.Context, tx *Tx, user, device string) error {
	for _, q := range []string{
		`DELETE FROM device_keys WHERE user_id = $1 AND device_id = $2`,
		`DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2`,
		`DELETE FROM fallback_keys WHERE user_id = $1 AND device_id = $2`,
		`DELETE FROM key_signatures WHERE target_user = $1 AND target_key = $2`,
	} {
		if _, err := tx.ExecContext(ctx, q, user, device); err != nil {
			return err
		}
	}
	return nil
}

// KeyUpload is one /keys/upload request, already validated.
type KeyUpload struct {
	UserID, DeviceID string
	// DeviceKeys is the device's identity keys object, or nil.
	DeviceKeys []byte
	// OneTimeKeys maps "<algorithm>:<id>" to the key (a JSON value).
	OneTimeKeys map[string][]byte
	// FallbackKeys maps "<algorithm>:<id>" to the key; one per algorithm.
	FallbackKeys map[string][]byte
}

// UploadKeys stores a device's keys in one transaction and returns its
// one-time key counts per algorithm. A device-key change marks the user's
// device list changed. An OTK ID already stored with other content fails
// the whole upload with ErrKeyConflict.
func (db *DB) UploadKeys(ctx context.Context, up KeyUpload) (map[string]int, error) {
	var counts map[string]int
	err := db.Write(ctx, func(tx *Tx) error {
		tx.Changed(Change{Kind: KindKeyCounts, Users: []string{up.UserID}, Device: up.DeviceID})
		if up.DeviceKeys != nil {
			var old string
			err := tx.QueryRowContext(ctx, `SELECT key_json FROM device_keys WHERE user_id = $1 AND device_id = $2`, up.UserID, up.DeviceID).Scan(&old)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if old != string(up.DeviceKeys) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO device_keys (user_id, device_id, key_json) VALUES ($1, $2, $3)
					ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json`, up.UserID, up.DeviceID, string(up.DeviceKeys)); err != nil {
					return err
				}
				if err := markDeviceListChanged(ctx, tx, up.UserID); err != nil {
					return err
				}
			}
		}
		var seq int64
		if len(up.OneTimeKeys) > 0 {
			var err error
			if seq, err = tx.nextInScope(ctx, oneTimeKeyUploads, up.UserID, up.DeviceID); err != nil {
				return err
			}
		}
		for keyID, k := range up.OneTimeKeys {
			alg, _, _ := strings.Cut(keyID, ":")
			var old string
			err := tx.QueryRowContext(ctx, `SELECT key_json FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`,
				up.UserID, up.DeviceID, alg, keyID).Scan(&old)
			switch {
			case err == nil:
				if old != string(k) {
					return ErrKeyConflict
				}
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json, upload_seq) VALUES ($1, $2, $3, $4, $5, $6)`,
				up.UserID, up.DeviceID, alg, keyID, string(k), seq); err != nil {
				return err
			}
		}
		for keyID, k := range up.FallbackKeys {
			alg, _, _ := strings.Cut(keyID, ":")
			// Re-uploading the same key keeps its used flag; a new key is unused.
			if _, err := tx.ExecContext(ctx, `INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES ($1, $2, $3, $4, $5, 0)
				ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json,
				used = CASE WHEN fallback_keys.key_id = excluded.key_id AND fallback_keys.key_json = excluded.key_json THEN fallback_keys.used ELSE 0 END`,
				up.UserID, up.DeviceID, alg, keyID, string(k)); err != nil {
				return err
			}
		}
		var err error
		if counts, err = otkCounts(ctx, tx, up.UserID, up.DeviceID); err != nil {
			return err
		}
		for _, n := range counts {
			if n > MaxOneTimeKeys {
				return ErrTooManyKeys
			}
		}
		return nil
	})
	return counts, err
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func otkCounts(ctx context.Context, q querier, user, device string) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT algorithm, COUNT(*) FROM one_time_keys WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm`, user, device)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var alg string
		var n int
		if err := rows.Scan(&alg, &n); err != nil {
			return nil, err
		}
		out[alg] = n
	}
	return out, rows.Err()
}

// OneTimeKeyCounts returns a device's unclaimed one-time keys per algorithm.
func (db *DB) OneTimeKeyCounts(ctx context.Context, user, device string) (map[string]int, error) {
	return otkCounts(ctx, db.read, user, device)
}

// UnusedFallbackKeyTypes returns the algorithms of a device's fallback keys
// that have not been claimed yet.
func (db *DB) UnusedFallbackKeyTypes(ctx context.Context, user, device string) ([]string, error) {
	return db.strings(ctx, `SELECT algorithm FROM fallback_keys WHERE user_id = $1 AND device_id = $2 AND used = 0 ORDER BY algorithm`, user, device)
}

// DeviceKeysRow is a device's uploaded identity keys and display name.
type DeviceKeysRow struct {
	DeviceID    string
	DisplayName string
	KeyJSON     []byte
}

// DeviceKeys returns the identity keys of a user's existing devices (all
// of them when devices is empty).
func (db *DB) DeviceKeys(ctx context.Context, user string, devices []string) ([]DeviceKeysRow, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT k.device_id, COALESCE(d.display_name, ''), k.key_json FROM device_keys k
		JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = $1 ORDER BY k.device_id`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, d := range devices {
		want[d] = true
	}
	var out []DeviceKeysRow
	for rows.Next() {
		var r DeviceKeysRow
		var k string
		if err := rows.Scan(&r.DeviceID, &r.DisplayName, &k); err != nil {
			return nil, err
		}
		if len(want) > 0 && !want[r.DeviceID] {
			continue
		}
		r.KeyJSON = []byte(k)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimRequest asks for one key of an algorithm from one device.
type ClaimRequest struct {
	UserID, DeviceID, Algorithm string
	// FallbackOnly skips the one-time keys: the claimer has had its share
	// of this device's, and gets the fallback key (if any) instead.
	FallbackOnly bool
}

// ClaimedKey is a key handed out by ClaimKeys.
type ClaimedKey struct {
	ClaimRequest
	KeyID    string
	KeyJSON  []byte
	Fallback bool
}

// ClaimKeys hands out one key per request, all in one write transaction so
// that each one-time key goes to exactly one claimer: an unclaimed
// one-time key is deleted and returned, else the device's fallback key
// (marked used, and handed out again to later claims). Requests with no key
// at all are left out of the result. The oldest upload's keys go first.
func (db *DB) ClaimKeys(ctx context.Context, reqs []ClaimRequest) ([]ClaimedKey, error) {
	var out []ClaimedKey
	err := db.Write(ctx, func(tx *Tx) error {
		out = out[:0]
		for _, r := range reqs {
			var keyID, k string
			err := sql.ErrNoRows
			if !r.FallbackOnly {
				err = tx.QueryRowContext(ctx, `SELECT key_id, key_json FROM one_time_keys
				WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 ORDER BY upload_seq, key_id LIMIT 1`,
					r.UserID, r.DeviceID, r.Algorithm).Scan(&keyID, &k)
			}
			if err == nil {
				// The single writer makes select-then-delete atomic.
				if _, err := tx.ExecContext(ctx, `DELETE FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`,
					r.UserID, r.DeviceID, r.Algorithm, keyID); err != nil {
					return err
				}
				out = append(out, ClaimedKey{ClaimRequest: r, KeyID: keyID, KeyJSON: []byte(k)})
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			err = tx.QueryRowContext(ctx, `UPDATE fallback_keys SET used = 1 WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
				RETURNING key_id, key_json`, r.UserID, r.DeviceID, r.Algorithm).Scan(&keyID, &k)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, ClaimedKey{ClaimRequest: r, KeyID: keyID, KeyJSON: []byte(k), Fallback: true})
		}
		for _, c := range out {
			tx.Changed(Change{Kind: KindKeyCounts, Users: []string{c.UserID}, Device: c.DeviceID})
		}
		return nil
	})
	return out, err
}

// CrossSigningKeys returns a user's cross-signing keys by type
// (master, self_signing, user_signing).
func (db *DB) CrossSigningKeys(ctx context.Context, user string) (map[string][]byte, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT key_type, key_json FROM cross_signing_keys WHERE user_id = $1`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var t, k string
		if err := rows.Scan(&t, &k); err != nil {
			return nil, err
		}
		out[t] = []byte(k)
	}
	return out, rows.Err()
}

// PutCrossSigningKeys replaces the given cross-signing keys of a user and
// drops the signatures made by the keys they replace. With firstUpload set
// it fails with ErrExists if the user has a master key by now (the first
// upload is the only one allowed without re-authentication).
func (db *DB) PutCrossSigningKeys(ctx context.Context, user string, keys map[string][]byte, dropSignaturesBy []string, firstUpload bool) error {
	return db.Write(ctx, func(tx *Tx) error {
		if firstUpload {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cross_signing_keys WHERE user_id = $1 AND key_type = 'master'`, user).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return ErrExists
			}
		}
		for t, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO cross_signing_keys (user_id, key_type, key_json) VALUES ($1, $2, $3)
				ON CONFLICT (user_id, key_type) DO UPDATE SET key_json = excluded.key_json`, user, t, string(k)); err != nil {
				return err
			}
		}
		for _, keyID := range dropSignaturesBy {
			if _, err := tx.ExecContext(ctx, `DELETE FROM key_signatures WHERE signer_user = $1 AND signer_key_id = $2`, user, keyID); err != nil {
				return err
			}
		}
		return markDeviceListChanged(ctx, tx, user)
	})
}

// KeySignature is one signature stored apart from the key it signs.
type KeySignature struct {
	TargetUser, TargetKey string
	SignerUser, SignerKey string // SignerKey is "ed25519:<key id>"
	Signature             string
}

// KeySignaturesFor returns the separately uploaded signatures on a user's keys.
func (db *DB) KeySignaturesFor(ctx context.Context, targetUser string) ([]KeySignature, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT target_user, target_key, signer_user, signer_key_id, signature FROM key_signatures
		WHERE target_user = $1`, targetUser)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeySignature
	for rows.Next() {
		var s KeySignature
		if err := rows.Scan(&s.TargetUser, &s.TargetKey, &s.SignerUser, &s.SignerKey, &s.Signature); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// PutKeySignatures stores signatures and marks the device list of each
// target user changed.
func (db *DB) PutKeySignatures(ctx context.Context, sigs []KeySignature) error {
	if len(sigs) == 0 {
		return nil
	}
	return db.Write(ctx, func(tx *Tx) error {
		targets := map[string]bool{}
		for _, s := range sigs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_signatures (target_user, target_key, signer_user, signer_key_id, signature)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_user, target_key, signer_user, signer_key_id) DO UPDATE SET signature = excluded.signature`,
				s.TargetUser, s.TargetKey, s.SignerUser, s.SignerKey, s.Signature); err != nil {
				return err
			}
			targets[s.TargetUser] = true
		}
		for u := range targets {
			if err := markDeviceListChanged(ctx, tx, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// MemberChange is a membership event seen in a stream range.
type MemberChange struct {
	RoomID, UserID, Membership string
}

// MemberChangesIn returns the membership changes in the given rooms with
// from < stream_pos <= to, oldest first.
func (db *DB) MemberChangesIn(ctx context.Context, roomIDs []string, from, to int64) ([]MemberChange, error) {
	var out []MemberChange
	for _, roomID := range roomIDs {
		evs, err := db.queryEvents(ctx, `WHERE room_id = $1 AND type = 'm.room.member' AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`,
			roomID, from, to)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.StateKey == nil {
				continue
			}
			out = append(out, MemberChange{RoomID: roomID, UserID: *ev.StateKey, Membership: gjson.GetBytes(ev.PDU, "content.membership").String()})
		}
	}
	return out, nil
}

// BackupVersion is one room-key backup version.
type BackupVersion struct {
	Version   string
	Algorithm string
	AuthData  []byte
	Etag      string
	Count     int
}

// ErrWrongBackupVersion is returned when keys are written to a backup
// version that is not the current one; Current names the current one.
type ErrWrongBackupVersion struct{ Current string }

func (e *ErrWrongBackupVersion) Error() string {
	return "backup version is not current (current: " + e.Current + ")"
}

// CreateBackupVersion adds a backup version, which becomes the current one.
func (db *DB) CreateBackupVersion(ctx context.Context, user, algorithm string, authData []byte) (string, error) {
	var v int64
	err := db.Write(ctx, func(tx *Tx) error {
		var err error
		if v, err = tx.nextInScope(ctx, backupVersions, user); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO backup_versions (user_id, version, algorithm, auth_data) VALUES ($1, $2, $3, $4)`,
			user, v, algorithm, string(authData))
		return err
	})
	return strconv.FormatInt(v, 10), err
}

func parseVersion(version string) (int64, bool) {
	v, err := strconv.ParseInt(version, 10, 64)
	return v, err == nil && v > 0
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) row
}

func getBackupVersion(ctx context.Context, q rowQuerier, user, version string) (*BackupVersion, error) {
	var r row
	if version == "" {
		r = q.QueryRowContext(ctx, `SELECT version, algorithm, auth_data, etag FROM backup_versions WHERE user_id = $1 AND deleted = 0
			ORDER BY version DESC LIMIT 1`, user)
	} else {
		v, ok := parseVersion(version)
		if !ok {
			return nil, ErrNotFound
		}
		r = q.QueryRowContext(ctx, `SELECT version, algorithm, auth_data, etag FROM backup_versions WHERE user_id = $1 AND version = $2 AND deleted = 0`,
			user, v)
	}
	var b BackupVersion
	var v, etag int64
	var auth string
	if err := r.Scan(&v, &b.Algorithm, &auth, &etag); errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	b.Version, b.AuthData, b.Etag = strconv.FormatInt(v, 10), []byte(auth), strconv.FormatInt(etag, 10)
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_keys WHERE user_id = $1 AND version = $2`, user, v).Scan(&b.Count); err != nil {
		return nil, err
	}
	return &b, nil
}

// GetBackupVersion returns a version ("" for the current one) or ErrNotFound.
func (db *DB) GetBackupVersion(ctx context.Context, user, version string) (*BackupVersion, error) {
	return getBackupVersion(ctx, db.read, user, version)
}

// UpdateBackupVersion replaces a version's auth_data.
func (db *DB) UpdateBackupVersion(ctx context.Context, user, version string, authData []byte) error {
	v, ok := parseVersion(version)
	if !ok {
		return ErrNotFound
	}
	return db.execOne(ctx, `UPDATE backup_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2 AND deleted = 0`, user, v, string(authData))
}

// DeleteBackupVersion deletes a version and its keys. Version numbers are
// never reused.
func (db *DB) DeleteBackupVersion(ctx context.Context, user, version string) error {
	v, ok := parseVersion(version)
	if !ok {
		return ErrNotFound
	}
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE backup_versions SET deleted = 1 WHERE user_id = $1 AND version = $2 AND deleted = 0`, user, v)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM backup_keys WHERE user_id = $1 AND version = $2`, user, v)
		return err
	})
}

// BackupKey is one backed-up room key session.
type BackupKey struct {
	RoomID, SessionID string
	FirstMessageIndex int64
	ForwardedCount    int64
	IsVerified        bool
	SessionData       []byte
}

// better reports whether k should replace old, by the spec's rules: a
// verified session beats an unverified one, then the lower first message
// index wins, then the lower forwarded count.
func (k *BackupKey) better(old *BackupKey) bool {
	if k.IsVerified != old.IsVerified {
		return k.IsVerified
	}
	if k.FirstMessageIndex != old.FirstMessageIndex {
		return k.FirstMessageIndex < old.FirstMessageIndex
	}
	return k.ForwardedCount < old.ForwardedCount
}

// PutBackupKeys stores sessions into the current backup version, keeping
// the better of an existing and an uploaded session. It returns the
// version's new etag and key count.
func (db *DB) PutBackupKeys(ctx context.Context, user, version string, keys []BackupKey) (etag string, count int, err error) {
	err = db.Write(ctx, func(tx *Tx) error {
		cur, err := getBackupVersion(ctx, tx, user, "")
		if errors.Is(err, ErrNotFound) {
			if _, e := getBackupVersion(ctx, tx, user, version); e != nil {
				return ErrNotFound
			}
		}
		if err != nil {
			return err
		}
		if cur.Version != version {
			if _, e := getBackupVersion(ctx, tx, user, version); e != nil {
				return ErrNotFound
			}
			return &ErrWrongBackupVersion{Current: cur.Version}
		}
		v, _ := parseVersion(version)
		changed := false
		for i := range keys {
			k := &keys[i]
			var old BackupKey
			var data string
			err := tx.QueryRowContext(ctx, `SELECT first_message_index, forwarded_count, is_verified, session_data FROM backup_keys
				WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id = $4`, user, v, k.RoomID, k.SessionID).
				Scan(&old.FirstMessageIndex, &old.ForwardedCount, &old.IsVerified, &data)
			if err == nil && !k.better(&old) {
				continue
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
				first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
				is_verified = excluded.is_verified, session_data = excluded.session_data`,
				user, v, k.RoomID, k.SessionID, k.FirstMessageIndex, k.ForwardedCount, k.IsVerified, string(k.SessionData)); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			if _, err := tx.ExecContext(ctx, `UPDATE backup_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2`, user, v); err != nil {
				return err
			}
		}
		after, err := getBackupVersion(ctx, tx, user, version)
		if err != nil {
			return err
		}
		etag, count = after.Etag, after.Count
		return nil
	})
	return etag, count, err
}

// BackupKeys returns the sessions of a version, optionally of one room or
// one session. A version that does not exist is ErrNotFound.
func (db *DB) BackupKeys(ctx context.Context, user, version, roomID, sessionID string) ([]BackupKey, error) {
	if _, err := db.GetBackupVersion(ctx, user, version); err != nil {
		return nil, err
	}
	v, _ := parseVersion(version)
	q := `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM backup_keys
		WHERE user_id = $1 AND version = $2 AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)`
	rows, err := db.read.QueryContext(ctx, q, user, v, roomID, sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BackupKey
	for rows.Next() {
		var k BackupKey
		var data string
		if err := rows.Scan(&k.RoomID, &k.SessionID, &k.FirstMessageIndex, &k.ForwardedCount, &k.IsVerified, &data); err != nil {
			return nil, err
		}
		k.SessionData = []byte(data)
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteBackupKeys deletes sessions of a version (all, one room's, or one)
// and returns the new etag and count.
func (db *DB) DeleteBackupKeys(ctx context.Context, user, version, roomID, sessionID string) (etag string, count int, err error) {
	err = db.Write(ctx, func(tx *Tx) error {
		if _, err := getBackupVersion(ctx, tx, user, version); err != nil {
			return err
		}
		v, _ := parseVersion(version)
		res, err := tx.ExecContext(ctx, `DELETE FROM backup_keys WHERE user_id = $1 AND version = $2 AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)`,
			user, v, roomID, sessionID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE backup_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2`, user, v); err != nil {
				return err
			}
		}
		after, err := getBackupVersion(ctx, tx, user, version)
		if err != nil {
			return err
		}
		etag, count = after.Etag, after.Count
		return nil
	})
	return etag, count, err
}

// sharingMemberships are the memberships that make a user share a room for
// device-list tracking: clients encrypt for invitees too (and Synapse
// counts knockers), so their device changes concern the room's members.
const sharingMemberships = `('join', 'invite', 'knock')`

// SharesRoom reports whether a member with this membership shares the room
// for device-list tracking (the memberships in sharingMemberships): the
// one rule /sync, sliding sync, /keys/changes and MSC3202's application
// service device lists apply to membership events.
func SharesRoom(membership string) bool {
	switch membership {
	case "join", "invite", "knock":
		return true
	}
	return false
}

// UsersSharingRooms returns the joined, invited and knocking members of the
// rooms userID is joined to (userID included): the users whose device
// lists userID tracks.
func (db *DB) UsersSharingRooms(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT DISTINCT y.state_key FROM current_state x JOIN current_state y ON x.room_id = y.room_id
		WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join'
		AND y.type = 'm.room.member' AND y.membership IN `+sharingMemberships, userID)
}

// RoomSharingMembers returns a room's joined, invited and knocking members.
func (db *DB) RoomSharingMembers(ctx context.Context, roomID string) ([]string, error) {
	return db.strings(ctx, `SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'
		AND membership IN `+sharingMemberships, roomID)
}

// RoomsSharedBy returns the rooms userID is joined to, invited to or
// knocking on: the rooms whose members track userID's device list.
func (db *DB) RoomsSharedBy(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1
		AND membership IN `+sharingMemberships, userID)
}
