package storage

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements per query text. The SQLite driver
// prepares every statement from scratch otherwise, and parsing SQL was a
// fifth of the CPU time of a busy server.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache; queries with generated IN lists could
// otherwise grow it without limit.
const maxCachedStmts = 512

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[q]
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := c.lookup(q); st != nil {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(c.m) < maxCachedStmts {
		c.m[q] = st
	}
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// rdb is the read side with cached statements.
type rdb struct{ c *stmtCache }

func (r rdb) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// errRow defers a prepare error to Scan, like sql.Row does.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (r rdb) QueryRowContext(ctx context.Context, q string, args ...any) row {
	st, err := r.c.get(ctx, q)
	if err != nil {
		return row{err: err}
	}
	return row{r: st.QueryRowContext(ctx, args...)}
}

// The writer pool has one connection, which an open transaction holds, so
// a statement cannot be prepared on the pool mid-transaction. A miss runs
// unprepared and is prepared by Write once the connection is free again;
// later transactions reuse it on that same connection.

func (tx *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st := tx.cache.lookup(q); st != nil {
		return tx.Tx.StmtContext(ctx, st)
	}
	tx.misses = append(tx.misses, q)
	return nil
}

// ExecContext runs a statement inside the write transaction.
func (tx *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, q, args...)
}

// QueryContext queries inside the write transaction.
func (tx *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := tx.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, q, args...)
}

// QueryRowContext queries one row inside the write transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, q string, args ...any) row {
	if st := tx.stmt(ctx, q); st != nil {
		return row{r: st.QueryRowContext(ctx, args...)}
	}
	return row{r: tx.Tx.QueryRowContext(ctx, q, args...)}
}
