package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestFeedAfterCommitInOrder: changes are announced after their commit (a
// subscriber reading the database finds the row and sees the position),
// in commit order across concurrent writers, and never for a write that
// rolled back.
func TestFeedAfterCommitInOrder(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		mu   sync.Mutex
		seen []int64
		bad  []string
	)
	db.Feed().Subscribe(func(c Change) {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM receipts WHERE stream_pos = $1`, c.Position).Scan(&n); err != nil || n != 1 {
			bad = append(bad, fmt.Sprintf("position %d announced, row found %d times (%v)", c.Position, n, err))
		}
		if db.Position() < c.Position {
			bad = append(bad, fmt.Sprintf("position %d announced while Position() is %d", c.Position, db.Position()))
		}
		mu.Lock()
		seen = append(seen, c.Position)
		mu.Unlock()
	})
	write := func(i int, fail bool) error {
		return db.Write(ctx, func(tx *Tx) error {
			pos := tx.NextPos(StreamReceipts)
			if _, err := tx.ExecContext(ctx, `INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, event_pos, ts, stream_pos)
				VALUES ($1, $2, 'm.read', '', '$e', 0, 0, $3)`, "!r", fmt.Sprint("@u", i, ":x"), pos); err != nil {
				return err
			}
			tx.Changed(Change{Kind: KindEvent, Stream: StreamReceipts, Position: pos})
			if fail {
				return errors.New("rolled back")
			}
			return nil
		})
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() { write(i, i%10 == 9) })
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	if len(seen) != 36 {
		t.Fatalf("%d changes announced, want 36 (4 writes rolled back)", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("announced out of commit order: %v", seen)
		}
	}
}
