package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkListQueries measures the queries that take a list argument
// (GetEvents, ThreadSummary's excluded senders, RoomLatestOfTypes) over
// 20,000 events in 10 rooms, one of them holding a thread of 2,000 replies
// from 50 senders.
func BenchmarkListQueries(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "axon.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 20_000
	if err := db.Write(ctx, func(tx *Tx) error {
		for i := range n {
			room, typ, sender := fmt.Sprintf("!room%d:bench", i%10), "m.room.message", fmt.Sprintf("@u%d:bench", i%50)
			var relType, root any
			if i%10 == 0 && i > 0 {
				relType, root = "m.thread", "$0"
				room = "!room0:bench"
			}
			if i%7 == 0 {
				typ = "m.reaction"
			}
			pos := tx.NextPos(StreamEvents)
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (stream_pos, event_id, room_id, type, sender, depth, origin_ts,
				state_before, state_after, pdu, rel_type, thread_root) VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, '{}', $6, $7)`,
				pos, fmt.Sprint("$", i), room, typ, sender, relType, root); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprint("$", i*97%n)
	}
	for _, k := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("GetEvents/%d", k), func(b *testing.B) {
			for b.Loop() {
				evs, err := db.GetEvents(ctx, ids[:k])
				if err != nil || len(evs) != k {
					b.Fatalf("%d events, %v", len(evs), err)
				}
			}
		})
	}
	for _, k := range []int{0, 5, 100} {
		exclude := make([]string, k)
		for i := range exclude {
			exclude[i] = fmt.Sprintf("@u%d:bench", i*3)
		}
		b.Run(fmt.Sprintf("ThreadSummary/exclude%d", k), func(b *testing.B) {
			for b.Loop() {
				count, latest, err := db.ThreadSummary(ctx, "$0", n, exclude)
				if err != nil || (k < 50 && (count == 0 || latest == nil)) {
					b.Fatalf("%d %v %v", count, latest, err)
				}
			}
		})
	}
	types := []string{"m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite", "m.poll.start", "m.room.create"}
	b.Run("RoomLatestOfTypes/6", func(b *testing.B) {
		for b.Loop() {
			if pos, err := db.RoomLatestOfTypes(ctx, "!room3:bench", types); err != nil || pos == 0 {
				b.Fatalf("%d %v", pos, err)
			}
		}
	})
}
