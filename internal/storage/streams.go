package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Alias operations.

// CreateAlias maps an alias to a room; ErrExists if taken.
func (db *DB) CreateAlias(ctx context.Context, alias, roomID, creator string) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO room_aliases (alias, room_id, creator) VALUES ($1, $2, $3)`, alias, roomID, creator)
		if isUniqueViolation(err) {
			return ErrExists
		}
		return err
	})
}

// ResolveAlias returns the room and creator of an alias, or ErrNotFound.
func (db *DB) ResolveAlias(ctx context.Context, alias string) (roomID, creator string, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT room_id, creator FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID, &creator)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return
}

// DeleteAlias removes an alias.
func (db *DB) DeleteAlias(ctx context.Context, alias string) error {
	return db.execOne(ctx, `DELETE FROM room_aliases WHERE alias = $1`, alias)
}

// RoomAliases lists a room's local aliases.
func (db *DB) RoomAliases(ctx context.Context, roomID string) ([]string, error) {
	return db.strings(ctx, `SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`, roomID)
}

// Receipt is one user's receipt of one type in a room (and thread).
type Receipt struct {
	RoomID    string
	UserID    string
	Type      string
	ThreadID  string
	EventID   string
	EventPos  int64
	TS        int64
	StreamPos int64
}

// PutReceipt stores a receipt unless the user already has one of that type
// at a later event (receipts only move forward). It reports whether it was stored.
func (db *DB) PutReceipt(ctx context.Context, r Receipt) (bool, error) {
	stored := false
	err := db.Write(ctx, func(tx *Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT event_pos FROM receipts WHERE room_id = $1 AND user_id = $2 AND receipt_type = $3 AND thread_id = $4`,
			r.RoomID, r.UserID, r.Type, r.ThreadID).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && cur >= r.EventPos {
			return nil
		}
		pos := tx.NextPos(StreamReceipts)
		_, err = tx.ExecContext(ctx, `INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, event_pos, ts, stream_pos)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET event_id = excluded.event_id,
			event_pos = excluded.event_pos, ts = excluded.ts, stream_pos = excluded.stream_pos`,
			r.RoomID, r.UserID, r.Type, r.ThreadID, r.EventID, r.EventPos, r.TS, pos)
		stored = err == nil
		tx.Changed(Change{Kind: KindReceipt, Stream: StreamReceipts, Position: pos, Room: r.RoomID, Users: []string{r.UserID}, Type: r.Type})
		return err
	})
	return stored, err
}

func scanReceipts(rows *sql.Rows, err error) ([]Receipt, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Receipt
	for rows.Next() {
		var r Receipt
		if err := rows.Scan(&r.RoomID, &r.UserID, &r.Type, &r.ThreadID, &r.EventID, &r.EventPos, &r.TS, &r.StreamPos); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const receiptCols = `room_id, user_id, receipt_type, thread_id, event_id, event_pos, ts, stream_pos`

// ReceiptsAfter returns receipts with from < stream_pos <= to.
func (db *DB) ReceiptsAfter(ctx context.Context, from, to int64) ([]Receipt, error) {
	return scanReceipts(db.read.QueryContext(ctx, `SELECT `+receiptCols+` FROM receipts WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos`, from, to))
}

// RoomReceipts returns every receipt in a room.
func (db *DB) RoomReceipts(ctx context.Context, roomID string) ([]Receipt, error) {
	return scanReceipts(db.read.QueryContext(ctx, `SELECT `+receiptCols+` FROM receipts WHERE room_id = $1`, roomID))
}

// RoomReceiptsFrom returns a room's receipts that a client new to the room
// needs: the user's own, and those on events at or after stream position
// from (the events it is sent). A large room's other receipts are left out.
func (db *DB) RoomReceiptsFrom(ctx context.Context, roomID, userID string, from int64) ([]Receipt, error) {
	return scanReceipts(db.read.QueryContext(ctx, `SELECT `+receiptCols+` FROM receipts WHERE room_id = $1
		AND (user_id = $2 OR event_pos >= $3)`, roomID, userID, from))
}

// UserReadPosition is the stream position of the event of the user's newest
// read (public or private, unthreaded or main-thread) receipt in the room.
func (db *DB) UserReadPosition(ctx context.Context, roomID, userID string) (int64, error) {
	var p sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT MAX(event_pos) FROM receipts WHERE room_id = $1 AND user_id = $2
		AND receipt_type IN ('m.read', 'm.read.private') AND thread_id IN ('', 'main')`, roomID, userID).Scan(&p)
	return p.Int64, err
}

// UserThreadReadPositions returns the read positions of a user's threaded
// receipts in a room, by thread ID ("main" for the main timeline).
func (db *DB) UserThreadReadPositions(ctx context.Context, roomID, userID string) (map[string]int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT thread_id, MAX(event_pos) FROM receipts WHERE room_id = $1 AND user_id = $2
		AND receipt_type IN ('m.read', 'm.read.private') AND thread_id != '' GROUP BY thread_id`, roomID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var p int64
		if err := rows.Scan(&t, &p); err != nil {
			return nil, err
		}
		out[t] = p
	}
	return out, rows.Err()
}

// AccountData is one account data entry (RoomID "" is global).
type AccountData struct {
	RoomID    string
	Type      string
	Content   []byte
	StreamPos int64
}

// PutAccountData stores an account data entry.
func (db *DB) PutAccountData(ctx context.Context, userID, roomID, typ string, content []byte) error {
	return db.Write(ctx, func(tx *Tx) error {
		pos := tx.NextPos(StreamAccountData)
		_, err := tx.ExecContext(ctx, `INSERT INTO account_data (user_id, room_id, type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_pos = excluded.stream_pos`,
			userID, roomID, typ, string(content), pos)
		tx.Changed(accountDataChange(userID, roomID, typ, pos))
		return err
	})
}

// DeletedAccountData is the content of a deleted account data entry
// (MSC3391). The row stays, with a new stream position, so incremental
// syncs tell clients of the deletion with this empty content; reads of the
// entry and full syncs treat it as absent.
const DeletedAccountData = "{}"

// GetAccountData returns one entry or ErrNotFound (also for a deleted one).
func (db *DB) GetAccountData(ctx context.Context, userID, roomID, typ string) ([]byte, error) {
	var c string
	err := db.read.QueryRowContext(ctx, `SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
		userID, roomID, typ).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && c == DeletedAccountData) {
		return nil, ErrNotFound
	}
	return []byte(c), err
}

// AccountDataAfter returns a user's entries changed in (from, to]. Deleted
// entries are among them, except from the start (from 0), where there is
// nothing for a client to forget.
func (db *DB) AccountDataAfter(ctx context.Context, userID string, from, to int64) ([]AccountData, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, type, content, stream_pos FROM account_data
		WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 AND ($2 > 0 OR content <> $4) ORDER BY stream_pos`,
		userID, from, to, DeletedAccountData)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AccountData
	for rows.Next() {
		var a AccountData
		var c string
		if err := rows.Scan(&a.RoomID, &a.Type, &c, &a.StreamPos); err != nil {
			return nil, err
		}
		a.Content = []byte(c)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ToDeviceMessage is a queued to-device message.
type ToDeviceMessage struct {
	StreamPos int64
	Sender    string
	Type      string
	Content   []byte
}

// ToDeviceTarget addresses one device (or "*" for all of a user's devices).
type ToDeviceTarget struct {
	UserID, DeviceID string
	Content          []byte
}

// QueueToDevice stores messages for delivery, once per (sender, device, txn);
// targets come grouped by user.
func (db *DB) QueueToDevice(ctx context.Context, sender, senderDevice, txnID, typ string, targets []ToDeviceTarget) error {
	return db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO to_device_txns (sender, device_id, txn_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			sender, senderDevice, typ+"\x00"+txnID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // retried transaction: already queued
		}
		c := Change{Kind: KindToDevice, Stream: StreamToDevice}
		for _, t := range targets {
			devices := []string{t.DeviceID}
			if t.DeviceID == "*" {
				devices = nil
				rows, err := tx.QueryContext(ctx, `SELECT device_id FROM devices WHERE user_id = $1`, t.UserID)
				if err != nil {
					return err
				}
				for rows.Next() {
					var d string
					if err := rows.Scan(&d); err != nil {
						rows.Close()
						return err
					}
					devices = append(devices, d)
				}
				rows.Close()
			}
			for _, d := range devices {
				c.Position = tx.NextPos(StreamToDevice)
				if _, err := tx.ExecContext(ctx, `INSERT INTO to_device (stream_pos, user_id, device_id, sender, type, content) VALUES ($1, $2, $3, $4, $5, $6)`,
					c.Position, t.UserID, d, sender, typ, string(t.Content)); err != nil {
					return err
				}
			}
			// Targets come grouped by user; a repeat would only wake twice.
			if len(devices) > 0 && (len(c.Users) == 0 || c.Users[len(c.Users)-1] != t.UserID) {
				c.Users = append(c.Users, t.UserID)
			}
		}
		if len(c.Users) > 0 {
			tx.Changed(c)
		}
		return nil
	})
}

// ToDeviceFor returns queued messages for a device up to position to.
func (db *DB) ToDeviceFor(ctx context.Context, userID, deviceID string, to int64, limit int) ([]ToDeviceMessage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT stream_pos, sender, type, content FROM to_device
		WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3 ORDER BY stream_pos LIMIT $4`, userID, deviceID, to, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ToDeviceMessage
	for rows.Next() {
		var m ToDeviceMessage
		var c string
		if err := rows.Scan(&m.StreamPos, &m.Sender, &m.Type, &c); err != nil {
			return nil, err
		}
		m.Content = []byte(c)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AckToDevice deletes messages the device has seen (stream_pos <= upto).
func (db *DB) AckToDevice(ctx context.Context, userID, deviceID string, upto int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM to_device WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3`, userID, deviceID, upto)
		return err
	})
}

// HasToDevice reports whether a device has messages in (from, to].
func (db *DB) HasToDevice(ctx context.Context, userID, deviceID string, from, to int64) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM to_device WHERE user_id = $1 AND device_id = $2 AND stream_pos > $3 AND stream_pos <= $4`,
		userID, deviceID, from, to).Scan(&n)
	return n > 0, err
}

// Presence is a user's presence row.
type Presence struct {
	UserID       string
	State        string
	StatusMsg    *string
	LastActiveTS int64
	StreamPos    int64
}

// SetPresence stores presence unless only last_active_ts moved, by less
// than bumpOnlyAfter ms. It returns the row it replaced (nil if none) and
// whether it wrote; the caller decides from the two who must be woken.
func (db *DB) SetPresence(ctx context.Context, p Presence, bumpOnlyAfter int64) (*Presence, bool, error) {
	changed := false
	var prev *Presence
	err := db.Write(ctx, func(tx *Tx) error {
		cur := Presence{UserID: p.UserID}
		var msg sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT state, status_msg, last_active_ts FROM presence WHERE user_id = $1`, p.UserID).
			Scan(&cur.State, &msg, &cur.LastActiveTS)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil {
			if msg.Valid {
				cur.StatusMsg = &msg.String
			}
			prev = &cur
			if cur.State == p.State && msg.Valid == (p.StatusMsg != nil) && (p.StatusMsg == nil || *p.StatusMsg == msg.String) &&
				p.LastActiveTS-cur.LastActiveTS < bumpOnlyAfter {
				return nil
			}
		}
		changed = true
		_, err = tx.ExecContext(ctx, `INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,
			last_active_ts = excluded.last_active_ts, stream_pos = excluded.stream_pos`,
			p.UserID, p.State, p.StatusMsg, p.LastActiveTS, tx.NextPos(StreamPresence))
		return err
	})
	return prev, changed, err
}

func scanPresence(rows *sql.Rows, err error) ([]Presence, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var p Presence
		var msg sql.NullString
		if err := rows.Scan(&p.UserID, &p.State, &msg, &p.LastActiveTS, &p.StreamPos); err != nil {
			return nil, err
		}
		if msg.Valid {
			p.StatusMsg = &msg.String
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetPresence returns a user's presence or ErrNotFound.
func (db *DB) GetPresence(ctx context.Context, userID string) (*Presence, error) {
	ps, err := scanPresence(db.read.QueryContext(ctx, `SELECT user_id, state, status_msg, last_active_ts, stream_pos FROM presence WHERE user_id = $1`, userID))
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, ErrNotFound
	}
	return &ps[0], nil
}

// PresenceAfter returns presence rows changed in (from, to].
func (db *DB) PresenceAfter(ctx context.Context, from, to int64) ([]Presence, error) {
	return scanPresence(db.read.QueryContext(ctx, `SELECT user_id, state, status_msg, last_active_ts, stream_pos FROM presence
		WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos`, from, to))
}

// PresenceOf returns the presence rows of those of users who have one, in
// no particular order.
func (db *DB) PresenceOf(ctx context.Context, users []string) ([]Presence, error) {
	var out []Presence
	// Chunked: a room's whole membership can arrive at once, and a
	// statement takes a bounded number of parameters.
	for len(users) > 0 {
		n := min(len(users), 500)
		ph := make([]string, n)
		args := make([]any, n)
		for i, u := range users[:n] {
			ph[i] = fmt.Sprintf("$%d", i+1)
			args[i] = u
		}
		users = users[n:]
		ps, err := scanPresence(db.read.QueryContext(ctx, `SELECT user_id, state, status_msg, last_active_ts, stream_pos FROM presence
			WHERE user_id IN (`+strings.Join(ph, ",")+`)`, args...))
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// CreateFilter stores a filter and returns its ID.
func (db *DB) CreateFilter(ctx context.Context, userID string, filter []byte) (int64, error) {
	var id int64
	err := db.Write(ctx, func(tx *Tx) error {
		var err error
		if id, err = tx.nextInScope(ctx, filterIDs, userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO filters (user_id, filter_id, filter) VALUES ($1, $2, $3)`, userID, id, string(filter))
		return err
	})
	return id, err
}

// GetFilter returns a stored filter or ErrNotFound.
func (db *DB) GetFilter(ctx context.Context, userID string, id int64) ([]byte, error) {
	var f string
	err := db.read.QueryRowContext(ctx, `SELECT filter FROM filters WHERE user_id = $1 AND filter_id = $2`, userID, id).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return []byte(f), err
}

// DeviceListChangesAfter returns users whose device lists changed in (from, to].
func (db *DB) DeviceListChangesAfter(ctx context.Context, from, to int64) ([]string, error) {
	return db.strings(ctx, `SELECT DISTINCT user_id FROM device_list_changes WHERE stream_pos > $1 AND stream_pos <= $2`, from, to)
}

func escapeLike(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '_' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// MoveAlias points an existing alias at another room.
func (db *DB) MoveAlias(ctx context.Context, alias, roomID string) error {
	return db.execOne(ctx, `UPDATE room_aliases SET room_id = $2 WHERE alias = $1`, alias, roomID)
}
