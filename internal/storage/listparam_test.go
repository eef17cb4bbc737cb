package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// Queries over lists of every length share one prepared statement each,
// and return what the old per-element placeholders did.
func TestListQueriesShareStatements(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	if err := db.Write(ctx, func(tx *Tx) error {
		for i := range 40 {
			var relType, root any
			if i > 0 {
				relType, root = "m.thread", "$0"
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (stream_pos, event_id, room_id, type, sender, depth, origin_ts,
				state_before, state_after, pdu, rel_type, thread_root) VALUES ($1, $2, '!r', $3, $4, 0, 0, 0, 0, '{}', $5, $6)`,
				tx.NextPos(StreamEvents), fmt.Sprint("$", i), fmt.Sprint("t", i%4), fmt.Sprint("@u", i%8), relType, root); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var users, ids, types []string
	for i := range 300 {
		users = append(users, fmt.Sprint("@u", i))
		ids = append(ids, fmt.Sprint("$", i))
		types = append(types, fmt.Sprint("t", i))
	}
	// Warm the cache with every query once, then count what lists add.
	db.GetEvents(ctx, ids[:1])
	db.GetEvents(ctx, ids[:2])
	db.ThreadSummary(ctx, "$0", 100, users[:1])
	db.ThreadSummary(ctx, "$0", 100, nil)
	db.RoomLatestOfTypes(ctx, "!r", types[:1])
	before := db.read.c.len()
	for n := 1; n <= len(users); n++ {
		evs, err := db.GetEvents(ctx, ids[:n])
		if err != nil || len(evs) != min(n, 40) {
			t.Fatalf("GetEvents(%d): %d events, %v", n, len(evs), err)
		}
		count, latest, err := db.ThreadSummary(ctx, "$0", 100, users[:n])
		// Replies 1..39 come from @u(i%8); ignoring @u0..@u(n-1) leaves those from the others.
		want := 0
		for i := 1; i < 40; i++ {
			if i%8 >= n {
				want++
			}
		}
		if err != nil || count != int64(want) || (want > 0) != (latest != nil) {
			t.Fatalf("ThreadSummary excluding %d: %d %v %v, want %d", n, count, latest, err, want)
		}
		if latest != nil && slices.Contains(users[:n], latest.Sender) {
			t.Fatalf("ThreadSummary excluding %d: latest from %s", n, latest.Sender)
		}
		// Event i (position i+1) has type t(i%4): the newest of t0..t(n-1) is at 36+min(n, 4).
		pos, err := db.RoomLatestOfTypes(ctx, "!r", types[:n])
		if err != nil || pos != int64(36+min(n, 4)) {
			t.Fatalf("RoomLatestOfTypes(%d): %d %v", n, pos, err)
		}
	}
	if grown := db.read.c.len() - before; grown != 0 {
		t.Fatalf("lists of 1..%d elements added %d prepared statements", len(users), grown)
	}
}
