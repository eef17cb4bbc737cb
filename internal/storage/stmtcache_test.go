package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// More distinct query texts than the caches hold, on the read pool and in
// write transactions, leave SQLite's statement memory where a full cache
// put it: statements that leave the cache are closed.
func TestStatementCacheDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	// A statement big enough that a leak stands out from noise.
	query := func(i int) string {
		return fmt.Sprintf(`SELECT COUNT(*) FROM events WHERE room_id = $1 AND type IN ('a', 'b', 'c', 'd') AND sender != 'x%d'`, i)
	}
	run := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			var n int
			if err := db.read.QueryRowContext(ctx, query(i), "!r").Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Write(ctx, func(tx *Tx) error {
			for i := from; i < to; i++ {
				var n int
				if err := tx.QueryRowContext(ctx, query(i), "!r").Scan(&n); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	run(0, maxCachedStmts)
	full, err := db.StatementMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run(maxCachedStmts, 4*maxCachedStmts)
	after, err := db.StatementMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statement memory: %d bytes with full caches, %d after %d more query texts", full, after, 3*maxCachedStmts)
	if after > full+full/10 {
		t.Fatalf("statement memory grew from %d to %d bytes", full, after)
	}
	if n, m := len(db.read.c.m), len(db.wcache.m); n > maxCachedStmts || m > maxCachedStmts {
		t.Fatalf("caches hold %d and %d statements", n, m)
	}
}

// Statements evicted while other goroutines use them are closed only when
// they are done: no query fails with "statement is closed", and Rows being
// read when their statement is evicted read on.
func TestStatementCacheEvictsSafely(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	db.read.c.max = 4
	query := func(i int) string { return fmt.Sprintf(`SELECT value + %d FROM json_each($1)`, i) }

	rows, err := db.read.QueryContext(ctx, query(-1), `[1, 2, 3]`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // evicts query(-1)
		var n int
		if err := db.read.QueryRowContext(ctx, query(i), `[1]`).Scan(&n); err != nil || n != 1+i {
			t.Fatalf("query %d: %d %v", i, n, err)
		}
	}
	var sum int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if err := rows.Err(); err != nil || sum != 3 {
		t.Fatalf("rows of an evicted statement: sum %d, %v", sum, err)
	}
	rows.Close()

	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 400 {
				k := (i*7 + g) % 12
				var n int
				err := db.read.QueryRowContext(ctx, query(k), `[1]`).Scan(&n)
				if err == nil && n != 1+k {
					err = fmt.Errorf("query %d returned %d", k, n)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := db.read.c.len(); n > 4 {
		t.Fatalf("cache holds %d statements", n)
	}
}
