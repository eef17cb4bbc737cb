package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
)

// StatementMemory returns the bytes SQLite holds for prepared statements on
// the open connections of both pools: what a statement leak grows. It is
// for tests and diagnostics: it takes every open connection in turn, so it
// waits for busy ones.
func (db *DB) StatementMemory(ctx context.Context) (int64, error) {
	var total int64
	for _, pool := range []*sql.DB{db.readPool, db.write} {
		n, err := statementMemory(ctx, pool)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func statementMemory(ctx context.Context, pool *sql.DB) (int64, error) {
	// Holding the connections until all are read makes the pool hand out
	// each open one once instead of the same idle one again.
	n := pool.Stats().OpenConnections
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var total int64
	for range n {
		c, err := pool.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("statement memory: %w", err)
		}
		conns = append(conns, c)
		err = c.Raw(func(dc any) error {
			st, ok := dc.(sqlite.DBStatus)
			if !ok {
				return errors.New("driver reports no status")
			}
			cur, _, err := st.Status(sqlite.DBStatusStmtUsed, false)
			total += int64(cur)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("statement memory: %w", err)
		}
	}
	return total, nil
}
