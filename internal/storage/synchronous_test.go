package storage

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSynchronousPragma opens databases with each synchronous setting and
// asks SQLite, on the writer and on a reader connection, what is in force.
func TestSynchronousPragma(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		setting string
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"", 1},
		{"normal", 1},
		{"full", 2},
	} {
		db, err := OpenWith(ctx, filepath.Join(t.TempDir(), "axon.db"), Options{Synchronous: tc.setting})
		if err != nil {
			t.Fatalf("%q: %v", tc.setting, err)
		}
		for name, pool := range map[string]*sql.DB{"writer": db.write, "reader": db.readPool} {
			var got int
			if err := pool.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("synchronous %q: %s has PRAGMA synchronous = %d, want %d", tc.setting, name, got, tc.want)
			}
			var mode string
			if err := pool.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("synchronous %q: %s journal_mode %q %v", tc.setting, name, mode, err)
			}
		}
		db.Close()
	}
	if _, err := OpenWith(ctx, filepath.Join(t.TempDir(), "axon.db"), Options{Synchronous: "off"}); err == nil {
		t.Error("synchronous off accepted")
	}
}
