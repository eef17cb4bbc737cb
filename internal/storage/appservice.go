package storage

import (
	"context"
	"database/sql"
	"errors"
)

// AppServiceCursors are the stream positions an application service's
// sender has consumed, and the number of its last transaction.
type AppServiceCursors struct {
	Events      int64
	Receipts    int64
	Presence    int64
	ToDevice    int64
	DeviceLists int64
	LastTxn     int64
}

// AppServiceState returns a service's cursors; ok is false for a service
// never seen before.
func (db *DB) AppServiceState(ctx context.Context, asID string) (c AppServiceCursors, ok bool, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT events_pos, receipts_pos, presence_pos, to_device_pos, device_lists_pos, last_txn
		FROM appservice_state WHERE as_id = $1`, asID).Scan(&c.Events, &c.Receipts, &c.Presence, &c.ToDevice, &c.DeviceLists, &c.LastTxn)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// SaveAppServiceCursors stores a service's stream cursors (creating its
// row on first use) without touching its transaction numbering.
func (db *DB) SaveAppServiceCursors(ctx context.Context, asID string, c AppServiceCursors) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO appservice_state (as_id, events_pos, receipts_pos, presence_pos, to_device_pos,
			device_lists_pos) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (as_id) DO UPDATE SET events_pos = excluded.events_pos, receipts_pos = excluded.receipts_pos,
			presence_pos = excluded.presence_pos, to_device_pos = excluded.to_device_pos, device_lists_pos = excluded.device_lists_pos`,
			asID, c.Events, c.Receipts, c.Presence, c.ToDevice, c.DeviceLists)
		return err
	})
}

// AppServiceTxn is a queued transaction.
type AppServiceTxn struct {
	ID        int64
	Body      []byte
	CreatedTS int64
}

// AddAppServiceTxn numbers and queues a transaction and moves the
// service's cursors past the streams it was built from, atomically: a
// crash either keeps both or neither, so no event is lost or sent twice
// under different transaction IDs. The to-device messages at the stream
// positions in consumed (the transaction now holds them) are deleted in
// the same transaction, and so are the transactions up to delivered (the
// service accepted them): one write per transaction in a busy stream.
func (db *DB) AddAppServiceTxn(ctx context.Context, asID string, body []byte, c AppServiceCursors, now int64, consumed []int64, delivered int64) (int64, error) {
	var id int64
	err := db.Write(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO appservice_state (as_id, events_pos, receipts_pos, presence_pos, to_device_pos,
			device_lists_pos, last_txn) VALUES ($1, $2, $3, $4, $5, $6, 1)
			ON CONFLICT (as_id) DO UPDATE SET events_pos = excluded.events_pos, receipts_pos = excluded.receipts_pos,
			presence_pos = excluded.presence_pos, to_device_pos = excluded.to_device_pos, device_lists_pos = excluded.device_lists_pos,
			last_txn = appservice_state.last_txn + 1 RETURNING last_txn`,
			asID, c.Events, c.Receipts, c.Presence, c.ToDevice, c.DeviceLists).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM appservice_txns WHERE as_id = $1 AND txn_id <= $2`, asID, delivered); err != nil {
			return err
		}
		for _, pos := range consumed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM to_device WHERE stream_pos = $1`, pos); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO appservice_txns (as_id, txn_id, body, created_ts) VALUES ($1, $2, $3, $4)`,
			asID, id, string(body), now)
		return err
	})
	return id, err
}

// OldestAppServiceTxn returns the service's oldest queued transaction
// numbered above after (those up to it were delivered), or nil.
func (db *DB) OldestAppServiceTxn(ctx context.Context, asID string, after int64) (*AppServiceTxn, error) {
	var t AppServiceTxn
	var body string
	err := db.read.QueryRowContext(ctx, `SELECT txn_id, body, created_ts FROM appservice_txns WHERE as_id = $1 AND txn_id > $2
		ORDER BY txn_id LIMIT 1`, asID, after).Scan(&t.ID, &body, &t.CreatedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t.Body = []byte(body)
	return &t, nil
}

// DeleteAppServiceTxns removes the delivered transactions up to txnID.
func (db *DB) DeleteAppServiceTxns(ctx context.Context, asID string, upTo int64) error {
	return db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM appservice_txns WHERE as_id = $1 AND txn_id <= $2`, asID, upTo)
		return err
	})
}

// SetAppServiceRoom adds a room to (public) or removes it from a
// service's network directory.
func (db *DB) SetAppServiceRoom(ctx context.Context, asID, networkID, roomID string, public bool) error {
	return db.Write(ctx, func(tx *Tx) error {
		var err error
		if public {
			_, err = tx.ExecContext(ctx, `INSERT INTO appservice_room_list (as_id, network_id, room_id) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, asID, networkID, roomID)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM appservice_room_list WHERE as_id = $1 AND network_id = $2 AND room_id = $3`,
				asID, networkID, roomID)
		}
		return err
	})
}

// AppServiceRooms lists the rooms of one service network directory, or of
// every one when asID is "".
func (db *DB) AppServiceRooms(ctx context.Context, asID, networkID string) ([]string, error) {
	if asID == "" {
		return db.strings(ctx, `SELECT DISTINCT room_id FROM appservice_room_list ORDER BY room_id`)
	}
	return db.strings(ctx, `SELECT room_id FROM appservice_room_list WHERE as_id = $1 AND network_id = $2 ORDER BY room_id`, asID, networkID)
}

// CreateDeviceWithoutToken adds a device that has no access token: an
// application service creates devices for its users with PUT /devices and
// acts through them with its as_token (spec 1.17, MSC4190). It reports
// whether the device is new.
func (db *DB) CreateDeviceWithoutToken(ctx context.Context, userID, deviceID, displayName string, now int64) (bool, error) {
	created := false
	err := db.Write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, device_id) DO NOTHING`, userID, deviceID, nullStr(displayName), now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		created = true
		return markDeviceListChanged(ctx, tx, userID)
	})
	return created, err
}

// ToDeviceRow is a queued to-device message with its recipient.
type ToDeviceRow struct {
	ToDeviceMessage
	UserID, DeviceID string
}

// ToDeviceAfter returns queued to-device messages with from < stream_pos
// <= to, oldest first, at most limit.
func (db *DB) ToDeviceAfter(ctx context.Context, from, to int64, limit int) ([]ToDeviceRow, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT stream_pos, user_id, device_id, sender, type, content FROM to_device
		WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos LIMIT $3`, from, to, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ToDeviceRow
	for rows.Next() {
		var m ToDeviceRow
		var c string
		if err := rows.Scan(&m.StreamPos, &m.UserID, &m.DeviceID, &m.Sender, &m.Type, &c); err != nil {
			return nil, err
		}
		m.Content = []byte(c)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AppServiceQueue reports how many transactions of a service wait for
// delivery and when the oldest was built (0 when none).
func (db *DB) AppServiceQueue(ctx context.Context, asID string) (queued int, oldestTS int64, err error) {
	var oldest sql.NullInt64
	err = db.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_ts) FROM appservice_txns WHERE as_id = $1`, asID).Scan(&queued, &oldest)
	return queued, oldest.Int64, err
}

// KeyedDevices returns the existing devices that have uploaded identity,
// one-time or fallback keys, as (user, device) pairs: the devices whose
// key counts an MSC3202 application service is told about when the
// server starts.
func (db *DB) KeyedDevices(ctx context.Context) ([][2]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT d.user_id, d.device_id FROM devices d
		WHERE EXISTS (SELECT 1 FROM device_keys k WHERE k.user_id = d.user_id AND k.device_id = d.device_id)
		   OR EXISTS (SELECT 1 FROM one_time_keys k WHERE k.user_id = d.user_id AND k.device_id = d.device_id)
		   OR EXISTS (SELECT 1 FROM fallback_keys k WHERE k.user_id = d.user_id AND k.device_id = d.device_id)
		ORDER BY d.user_id, d.device_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var p [2]string
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
