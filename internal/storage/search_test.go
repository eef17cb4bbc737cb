package storage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/axon-matrix/axon/internal/storage"
)

// An upgraded server indexes the messages it stored before search existed,
// and leaves out redacted and unreadable ones.
func TestSearchMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "axon.db")
	db, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	persist := func(id, typ, pdu string) {
		t.Helper()
		if _, _, err := db.PersistEvent(ctx, storage.PersistRequest{Event: storage.Event{
			EventID: id, RoomID: "!r:x", Type: typ, Sender: "@a:x", PDU: []byte(pdu),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	persist("$1", "m.room.message", `{"content":{"body":"hello world"}}`)
	persist("$2", "m.room.message", `{"content":{"body":"hello there"}}`)
	persist("$3", "m.room.encrypted", `{"content":{"ciphertext":"hello"}}`)
	persist("$4", "m.room.message", `{"content":{"body":42}}`)
	if err := db.Write(ctx, func(tx *storage.Tx) error {
		// Undo the migration, keeping the events, as a server from before it.
		if _, err := tx.ExecContext(ctx, `UPDATE events SET redacted_by = '$x' WHERE event_id = '$2'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE event_search`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE name IN ('006_search.sql', '007_search_rooms.sql')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = storage.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hits, err := db.SearchEvents(ctx, storage.SearchQuery{Match: `"hello"*`, Rooms: []string{"!r:x"}, ByRank: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].Event.EventID != "$1" {
		t.Fatalf("hits: %+v", hits)
	}
	if n, err := db.SearchCount(ctx, &storage.SearchQuery{Match: `"hello"*`, Rooms: []string{"!r:x", "!other:x"}}); err != nil || n != 1 {
		t.Fatalf("count: %d %v", n, err)
	}
	// Other rooms' matches are not found, whether the rooms are named in
	// the full-text query or checked per match (for rare terms, after
	// SearchCount, and for users in very many rooms).
	persist("$5", "m.room.message", `{"content":{"body":"hello elsewhere"}}`) // in !r:x
	for _, n := range []int{1, 150} {
		rooms := []string{"!r:x"}
		for i := 1; i < n; i++ {
			rooms = append(rooms, fmt.Sprintf("!room%d:x", i))
		}
		for _, byRank := range []bool{true, false} {
			for _, counted := range []bool{false, true} {
				q := storage.SearchQuery{Match: `"hello"*`, Rooms: rooms, ByRank: byRank, Limit: 10}
				other := storage.SearchQuery{Match: `"hello"*`, Rooms: rooms[1:], ByRank: byRank, Limit: 10}
				if counted {
					if c, err := db.SearchCount(ctx, &q); err != nil || c != 2 {
						t.Fatalf("%d rooms count: %d %v", n, c, err)
					}
					if c, err := db.SearchCount(ctx, &other); err != nil || c != 0 {
						t.Fatalf("%d other rooms count: %d %v", n, c, err)
					}
				}
				if hits, err := db.SearchEvents(ctx, q); err != nil || len(hits) != 2 {
					t.Fatalf("%d rooms: %+v %v", n, hits, err)
				}
				if hits, err := db.SearchEvents(ctx, other); err != nil || len(hits) != 0 {
					t.Fatalf("%d other rooms: %+v %v", n, hits, err)
				}
			}
		}
	}
}

// A search by rank for a term in more than maxRanked (2000) events ranks the
// newest 2000 of them, the same ones on every page.
func TestSearchRankFloor(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 2050; i++ {
		if _, _, err := db.PersistEvent(ctx, storage.PersistRequest{Event: storage.Event{
			EventID: fmt.Sprint("$", i), RoomID: "!r:x", Type: "m.room.message", Sender: "@a:x",
			PDU: []byte(fmt.Sprintf(`{"content":{"body":"many %d"}}`, i)),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	q := storage.SearchQuery{Match: `"many"*`, Rooms: []string{"!r:x"}, ByRank: true, Limit: 500}
	if n, err := db.SearchCount(ctx, &q); err != nil || n != 2050 || q.RankFloor == 0 {
		t.Fatalf("count %d, floor %d, %v", n, q.RankFloor, err)
	}
	seen := map[string]bool{}
	for q.Offset = 0; ; q.Offset += q.Limit {
		hits, err := db.SearchEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.Event.StreamPos < q.RankFloor || seen[h.Event.EventID] {
				t.Fatalf("hit %s at %d (floor %d)", h.Event.EventID, h.Event.StreamPos, q.RankFloor)
			}
			seen[h.Event.EventID] = true
		}
		if len(hits) < q.Limit {
			break
		}
	}
	if len(seen) != 2000 || !seen["$2049"] || seen["$49"] {
		t.Fatalf("%d ranked", len(seen))
	}
}

// Events stored just before a stop are indexed after the restart: the
// index trails the events table but never loses one.
func TestSearchIndexCatchesUpAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "axon.db")
	db, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := db.PersistEvent(ctx, storage.PersistRequest{Event: storage.Event{
			EventID: fmt.Sprint("$e", i), RoomID: "!r:x", Type: "m.room.message", Sender: "@a:x",
			PDU: []byte(`{"content":{"body":"restart survivor"}}`),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close() // before the indexer's batching delay has passed
	if db, err = storage.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hits, err := db.SearchEvents(ctx, storage.SearchQuery{Match: `"survivor"`, Rooms: []string{"!r:x"}, Limit: 10})
	if err != nil || len(hits) != 3 {
		t.Fatalf("hits after restart: %d %v", len(hits), err)
	}
}
