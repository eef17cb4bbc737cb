package storage

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkCachedQueryParallel measures the statement cache's hit path
// under concurrent readers with a query that costs next to nothing.
func BenchmarkCachedQueryParallel(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "axon.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var n int
			if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&n); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
