// Package storage owns the database: schema migrations, the single write path
// and the global stream counter. SQL is written once in the subset SQLite and
// PostgreSQL share ($n placeholders, ON CONFLICT, partial indexes).
package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

//go:embed migrations
var migrations embed.FS

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// DB is the database handle. Writes go through Write, which serialises them:
// SQLite has one writer anyway, and serial commits are what make the global
// stream position safe to publish as soon as a transaction commits.
type DB struct {
	readPool *sql.DB
	write    *sql.DB
	read     rdb
	wcache   *stmtCache

	writeMu sync.Mutex
	// pos is the last stream position whose transaction has committed.
	pos atomic.Int64
	// streamPos is, per stream, the last committed position of that stream:
	// sync skips the queries of streams that have not moved since a token.
	streamPos [numStreams]atomic.Int64
	// feed announces committed changes (feed.go).
	feed Feed

	// The search indexer (searchindex.go).
	indexMu   sync.Mutex
	indexWake chan struct{}
	indexStop chan struct{}
	indexDone chan struct{}
	logger    *slog.Logger
}

func (db *DB) log() *slog.Logger {
	if db.logger != nil {
		return db.logger
	}
	return slog.Default()
}

// Stream names one kind of update that carries stream positions.
type Stream int

// The streams, one per table with a stream_pos column.
const (
	StreamEvents Stream = iota
	StreamReceipts
	StreamAccountData
	StreamToDevice
	StreamPresence
	StreamDeviceLists
	numStreams
)

var streamTables = [numStreams]string{"events", "receipts", "account_data", "to_device", "presence", "device_list_changes"}

// Options adjust how the database is opened.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "normal" (also for "")
	// or "full". In WAL mode, normal syncs the log to disk only at
	// checkpoints: a crash of the process loses nothing committed, but a
	// power loss or OS crash can roll back the last commits (never corrupt
	// the file). full syncs at every commit, so acknowledged writes survive
	// power loss too, at the cost of an fsync per commit.
	Synchronous string
}

// Open opens (creating if needed) the SQLite database at path and migrates
// it, with the default options.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*DB, error) {
	var synchronous string
	switch opts.Synchronous {
	case "", "normal":
		synchronous = "NORMAL"
	case "full":
		synchronous = "FULL"
	default:
		return nil, fmt.Errorf("open database: synchronous must be normal or full, not %q", opts.Synchronous)
	}
	if err := restrictFiles(path); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// The pragmas are in the DSN so that every connection of both pools
	// gets them, not just the first.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + synchronous + ")" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(OFF)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Readers never block the writer in WAL mode; a handful is enough for 2 cores.
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	db := &DB{readPool: r, write: w, read: rdb{newStmtCache(r)}, wcache: newStmtCache(w)}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.loadPosition(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.startIndexer()
	return db, nil
}

// restrictFiles makes the database readable by its owner only: it holds
// password hashes, access tokens and private messages. SQLite creates its
// files with mode 0644 (less the umask) and gives the -wal and -shm files
// the mode of the database file, so creating that one 0600 covers all
// three; files made by older versions are tightened.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	if db.indexStop != nil {
		db.stopIndexer()
	}
	db.read.c.close()
	db.wcache.close()
	return errors.Join(db.readPool.Close(), db.write.Close())
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrations, "migrations/sqlite")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := db.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile("migrations/sqlite/" + name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		for _, stmt := range splitStatements(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate %s: %w", name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// splitStatements splits a migration file on semicolons at line ends; our
// migrations contain no semicolons inside literals.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

func (db *DB) loadPosition(ctx context.Context) error {
	var maxPos int64
	for i, t := range streamTables {
		var p sql.NullInt64
		if err := db.read.QueryRowContext(ctx, `SELECT MAX(stream_pos) FROM `+t).Scan(&p); err != nil {
			return fmt.Errorf("load stream position: %w", err)
		}
		db.streamPos[i].Store(p.Int64)
		if p.Int64 > maxPos {
			maxPos = p.Int64
		}
	}
	db.pos.Store(maxPos)
	return nil
}

// Position is the newest committed stream position.
func (db *DB) Position() int64 { return db.pos.Load() }

// StreamPosition is the newest committed position of one stream.
func (db *DB) StreamPosition(s Stream) int64 { return db.streamPos[s].Load() }

// Tx is a write transaction with access to the stream counter.
type Tx struct {
	*sql.Tx
	cache   *stmtCache
	misses  []string
	next    int64
	used    bool
	streams [numStreams]int64
	// changes and onCommit are what the transaction announces and runs
	// after its commit (feed.go).
	changes  []Change
	onCommit []func()
}

// NextPos allocates the next global stream position for a row of stream s.
func (tx *Tx) NextPos(s Stream) int64 {
	tx.next++
	tx.used = true
	tx.streams[s] = tx.next
	return tx.next
}

// nextOutsidePos allocates a position outside the stream for an event
// clients must not see arrive: below every position in use, so that no
// stream range (pos > since) ever includes it. The single writer makes
// MIN()-1 safe here; a multi-writer backend allocates from a sequence.
func (tx *Tx) nextOutsidePos(ctx context.Context) (int64, error) {
	var lowest int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MIN(stream_pos), 0) FROM events`).Scan(&lowest); err != nil {
		return 0, fmt.Errorf("allocate outside position: %w", err)
	}
	return min(lowest, 0) - 1, nil
}

// A counter is a number a table hands out per scope (a user, a device):
// filter IDs, backup versions, the upload order of one-time keys. Callers
// rely on values being unique in their scope and larger than every earlier
// one, never on them being dense; so a backend with several writers may
// take them from one sequence, where SQLite's single writer takes the
// largest in use plus one.
type counter struct {
	name  string // table.column, for errors
	query string // the next value; the scope's columns are $1, $2, ...
}

// newCounter describes the counter in table.column, scoped by the columns
// in scope; first is the value of an empty scope.
func newCounter(table, column string, first int64, scope ...string) counter {
	where := make([]string, len(scope))
	for i, col := range scope {
		where[i] = fmt.Sprintf("%s = $%d", col, i+1)
	}
	return counter{
		name:  table + "." + column,
		query: fmt.Sprintf(`SELECT COALESCE(MAX(%s) + 1, %d) FROM %s WHERE %s`, column, first, table, strings.Join(where, " AND ")),
	}
}

// The counters; nextInScope is the only way their values are allocated.
var (
	filterIDs         = newCounter("filters", "filter_id", 0, "user_id")
	backupVersions    = newCounter("backup_versions", "version", 1, "user_id")
	oneTimeKeyUploads = newCounter("one_time_keys", "upload_seq", 1, "user_id", "device_id")
)

// nextInScope allocates the next value of counter c in the scope named by
// scope (one value per scope column).
func (tx *Tx) nextInScope(ctx context.Context, c counter, scope ...any) (int64, error) {
	var v int64
	if err := tx.QueryRowContext(ctx, c.query, scope...).Scan(&v); err != nil {
		return 0, fmt.Errorf("allocate %s: %w", c.name, err)
	}
	return v, nil
}

// Write runs fn in a write transaction. Positions allocated with tx.NextPos
// become visible through Position only after the commit succeeds, so a
// reader that sees position p sees every row at or below p. The changes fn
// records with tx.Changed are then announced on the feed, in commit order.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) error {
	db.writeMu.Lock()
	tx, err := db.writeLocked(ctx, fn)
	if err != nil || len(tx.changes) == 0 {
		db.writeMu.Unlock()
		return err
	}
	// Hand over to the delivery lock before letting the next writer in:
	// its changes are delivered after these.
	db.feed.deliver.Lock()
	db.writeMu.Unlock()
	defer db.feed.deliver.Unlock()
	db.feed.deliverLocked(tx.changes)
	return nil
}

func (db *DB) writeLocked(ctx context.Context, fn func(tx *Tx) error) (*Tx, error) {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, cache: db.wcache, next: db.pos.Load()}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return nil, err
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	for _, q := range tx.misses {
		db.wcache.prepare(ctx, q) // best effort: a failure just means no cache
	}
	for _, fn := range tx.onCommit {
		fn()
	}
	if tx.used {
		for i, p := range tx.streams {
			if p != 0 {
				db.streamPos[i].Store(p)
			}
		}
		db.pos.Store(tx.next)
	}
	return tx, nil
}

// Reader is the read-only pool.
func (db *DB) Reader() *sql.DB { return db.readPool }
