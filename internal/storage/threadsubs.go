package storage

import (
	"context"
	"database/sql"
	"errors"
)

// ThreadSubscription is a user's subscription to a thread (MSC4306), or
// its removal (Subscribed false). StreamPos orders changes.
type ThreadSubscription struct {
	RoomID, RootID string
	Subscribed     bool
	Automatic      bool
	StreamPos      int64
}

// ErrConflictingUnsubscription refuses an automatic subscription whose
// cause event the server had when the user last unsubscribed.
var ErrConflictingUnsubscription = errors.New("unsubscribed after the cause event")

// GetThreadSubscription returns the user's subscription to a thread, or
// ErrNotFound when they are not subscribed.
func (db *DB) GetThreadSubscription(ctx context.Context, userID, roomID, rootID string) (ThreadSubscription, error) {
	s := ThreadSubscription{RoomID: roomID, RootID: rootID}
	err := db.read.QueryRowContext(ctx, `SELECT automatic, stream_pos FROM thread_subscriptions
		WHERE user_id = $1 AND room_id = $2 AND root_id = $3 AND subscribed = 1`, userID, roomID, rootID).Scan(&s.Automatic, &s.StreamPos)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	s.Subscribed = err == nil
	return s, err
}

// SubscribeThread subscribes the user to a thread. A manual subscription
// replaces an automatic one; an automatic one leaves any subscription as
// it is, and is refused with ErrConflictingUnsubscription when its cause
// event (at events stream position causePos) is not newer than the last
// unsubscription. It reports whether anything changed.
func (db *DB) SubscribeThread(ctx context.Context, userID, roomID, rootID string, automatic bool, causePos int64) (bool, error) {
	changed := false
	err := db.Write(ctx, func(tx *Tx) error {
		var subscribed, wasAutomatic bool
		var unsubscribedAt int64
		err := tx.QueryRowContext(ctx, `SELECT subscribed, automatic, unsubscribed_at FROM thread_subscriptions
			WHERE user_id = $1 AND room_id = $2 AND root_id = $3`, userID, roomID, rootID).Scan(&subscribed, &wasAutomatic, &unsubscribedAt)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		switch {
		case automatic && subscribed:
			return nil
		case automatic && causePos <= unsubscribedAt:
			return ErrConflictingUnsubscription
		case !automatic && subscribed && !wasAutomatic:
			return nil
		}
		pos := tx.NextPos(StreamAccountData)
		_, err = tx.ExecContext(ctx, `INSERT INTO thread_subscriptions (user_id, room_id, root_id, subscribed, automatic, stream_pos)
			VALUES ($1, $2, $3, 1, $4, $5)
			ON CONFLICT (user_id, room_id, root_id) DO UPDATE SET subscribed = 1, automatic = excluded.automatic, stream_pos = excluded.stream_pos`,
			userID, roomID, rootID, automatic, pos)
		changed = err == nil
		tx.Changed(threadSubscriptionChange(userID, roomID, pos))
		return err
	})
	return changed, err
}

// UnsubscribeThread removes the user's subscription to a thread, if any,
// and records eventsPos, the newest event the server has, against later
// automatic subscriptions. It reports whether a subscription was removed.
func (db *DB) UnsubscribeThread(ctx context.Context, userID, roomID, rootID string, eventsPos int64) (bool, error) {
	removed := false
	err := db.Write(ctx, func(tx *Tx) error {
		var subscribed bool
		err := tx.QueryRowContext(ctx, `SELECT subscribed FROM thread_subscriptions
			WHERE user_id = $1 AND room_id = $2 AND root_id = $3`, userID, roomID, rootID).Scan(&subscribed)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !subscribed {
			// Nothing for clients to hear of; only remember the moment.
			_, err = tx.ExecContext(ctx, `INSERT INTO thread_subscriptions (user_id, room_id, root_id, subscribed, automatic, unsubscribed_at, stream_pos)
				VALUES ($1, $2, $3, 0, 0, $4, 0)
				ON CONFLICT (user_id, room_id, root_id) DO UPDATE SET unsubscribed_at = excluded.unsubscribed_at`,
				userID, roomID, rootID, eventsPos)
			return err
		}
		pos := tx.NextPos(StreamAccountData)
		_, err = tx.ExecContext(ctx, `UPDATE thread_subscriptions SET subscribed = 0, automatic = 0, unsubscribed_at = $4, stream_pos = $5
			WHERE user_id = $1 AND room_id = $2 AND root_id = $3`, userID, roomID, rootID, eventsPos, pos)
		removed = err == nil
		tx.Changed(threadSubscriptionChange(userID, roomID, pos))
		return err
	})
	return removed, err
}

// ThreadSubscriptionChanges returns the newest (at most limit) changes to
// the user's thread subscriptions in (from, to], newest first.
func (db *DB) ThreadSubscriptionChanges(ctx context.Context, userID string, from, to int64, limit int) ([]ThreadSubscription, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, root_id, subscribed, automatic, stream_pos FROM thread_subscriptions
		WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos DESC LIMIT $4`, userID, from, to, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ThreadSubscription
	for rows.Next() {
		var s ThreadSubscription
		if err := rows.Scan(&s.RoomID, &s.RootID, &s.Subscribed, &s.Automatic, &s.StreamPos); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ThreadSubscribers returns the users subscribed to a thread.
func (db *DB) ThreadSubscribers(ctx context.Context, roomID, rootID string) (map[string]bool, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT user_id FROM thread_subscriptions
		WHERE room_id = $1 AND root_id = $2 AND subscribed = 1`, roomID, rootID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out[u] = true
	}
	return out, rows.Err()
}

// threadSubscriptionChange announces a change of a user's thread
// subscriptions (MSC4308), which rides the account data stream.
func threadSubscriptionChange(userID, roomID string, pos int64) Change {
	return Change{Kind: KindThreadSubscription, Stream: StreamAccountData, Position: pos, Room: roomID, Users: []string{userID}}
}
