package storage

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements per query text. The SQLite driver
// prepares every statement from scratch otherwise, and parsing SQL was a
// fifth of the CPU time of a busy server.
//
// The cache is bounded and evicts the least recently used statement. A
// database/sql statement is prepared on each connection it runs on and
// lives until closed, so a statement that leaves the cache must be closed
// or it is leaked for good. Closing is safe for work already under way:
// Stmt.Close waits for calls in progress and keeps the statement alive
// until the Rows (and transaction statements) made from it are closed. It
// is not safe between handing a statement out and calling it: that call
// would fail with "statement is closed". So callers hold a reference from
// acquire to release, and an evicted statement is closed by whoever drops
// the last reference.
type stmtCache struct {
	db  *sql.DB
	max int

	mu  sync.Mutex
	m   map[string]*cachedStmt
	lru list.List // of *cachedStmt, most recently used first
}

type cachedStmt struct {
	st      *sql.Stmt
	q       string
	elem    *list.Element
	refs    int
	evicted bool
}

// maxCachedStmts bounds each pool's cache. Every query text in the code is
// a constant (list arguments are bound as one parameter, see listparam.go),
// so a few hundred entries hold them all; the bound is what keeps a query
// text built at run time from growing the cache without limit.
const maxCachedStmts = 512

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, max: maxCachedStmts, m: map[string]*cachedStmt{}}
}

// lookup returns the cached statement for q, or nil, marking it used and
// taking a reference the caller must give back with release.
func (c *stmtCache) lookup(q string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[q]
	if e != nil {
		e.refs++
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// acquire is lookup that prepares and caches the statement on a miss.
func (c *stmtCache) acquire(ctx context.Context, q string) (*cachedStmt, error) {
	if e := c.lookup(q); e != nil {
		return e, nil
	}
	// Prepare outside the lock so a slow prepare does not hold up hits.
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return c.insert(q, st, true), nil
}

// prepare caches the statement for q if it is not cached yet.
func (c *stmtCache) prepare(ctx context.Context, q string) error {
	if e := c.lookup(q); e != nil {
		c.release(e)
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return err
	}
	c.insert(q, st, false)
	return nil
}

// insert adds a freshly prepared statement, or, when another caller cached
// the same text meanwhile, closes it and uses theirs. It evicts the least
// recently used statements beyond the bound.
func (c *stmtCache) insert(q string, st *sql.Stmt, ref bool) *cachedStmt {
	var toClose []*sql.Stmt
	defer func() {
		for _, s := range toClose {
			s.Close()
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[q]
	if e != nil {
		toClose = append(toClose, st)
		c.lru.MoveToFront(e.elem)
	} else {
		e = &cachedStmt{st: st, q: q}
		e.elem = c.lru.PushFront(e)
		c.m[q] = e
	}
	if ref {
		e.refs++
	}
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.m, old.q)
		old.evicted = true
		if old.refs == 0 {
			toClose = append(toClose, old.st)
		}
	}
	return e
}

// release gives back a reference taken by lookup or acquire, closing the
// statement if it was evicted meanwhile and this was the last reference.
func (c *stmtCache) release(e *cachedStmt) {
	c.mu.Lock()
	e.refs--
	last := e.evicted && e.refs == 0
	c.mu.Unlock()
	if last {
		e.st.Close()
	}
}

// len is the number of cached statements.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// close evicts every statement; those in use close on their release.
func (c *stmtCache) close() {
	c.mu.Lock()
	var toClose []*sql.Stmt
	for _, e := range c.m {
		e.evicted = true
		if e.refs == 0 {
			toClose = append(toClose, e.st)
		}
	}
	c.m = map[string]*cachedStmt{}
	c.lru.Init()
	c.mu.Unlock()
	for _, st := range toClose {
		st.Close()
	}
}

// rdb is the read side with cached statements.
type rdb struct{ c *stmtCache }

func (r rdb) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	e, err := r.c.acquire(ctx, q)
	if err != nil {
		return nil, err
	}
	// The Rows keep the statement alive past release if it is evicted.
	defer r.c.release(e)
	return e.st.QueryContext(ctx, args...)
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
	e, err := r.c.acquire(ctx, q)
	if err != nil {
		return row{err: err}
	}
	defer r.c.release(e)
	return row{r: e.st.QueryRowContext(ctx, args...)}
}

// The writer pool has one connection, which an open transaction holds, so
// a statement cannot be prepared on the pool mid-transaction. A miss runs
// unprepared and is prepared by Write once the connection is free again;
// later transactions reuse it on that same connection.

// stmt returns the transaction's copy of the cached statement for q, or
// nil on a miss. The copy depends on the cached statement, which database/sql
// keeps open until the copy closes at commit or rollback, so the reference
// can go back at once.
func (tx *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	e := tx.cache.lookup(q)
	if e == nil {
		tx.misses = append(tx.misses, q)
		return nil
	}
	defer tx.cache.release(e)
	return tx.Tx.StmtContext(ctx, e.st)
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
