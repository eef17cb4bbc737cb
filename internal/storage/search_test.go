package storage_test

import (
	"context"
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
		_, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE name = '006_search.sql'`)
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
	if n, err := db.SearchCount(ctx, `"hello"*`, []string{"!r:x", "!other:x"}); err != nil || n != 1 {
		t.Fatalf("count: %d %v", n, err)
	}
}
