package storage

import (
	"context"
	"fmt"
	"time"
)

// The full-text index trails the events table: PersistEvent only signals,
// and a background indexer adds new events in batches (one FTS5 insert per
// send cost a third of send throughput). Searches call IndexPending first,
// so a search still finds every event committed before it; after a crash
// the indexer resumes from search_position.

// indexBatch is how many events one indexing transaction handles.
const indexBatch = 500

// indexDelay gathers events into batches under load.
const indexDelay = 50 * time.Millisecond

// startIndexer runs the background indexer until Close.
func (db *DB) startIndexer() {
	db.indexWake = make(chan struct{}, 1)
	db.indexStop = make(chan struct{})
	db.indexDone = make(chan struct{})
	go func() {
		defer close(db.indexDone)
		ctx := context.Background()
		for {
			select {
			case <-db.indexStop:
				return
			case <-db.indexWake:
			}
			select {
			case <-db.indexStop:
				return
			case <-time.After(indexDelay):
			}
			if err := db.IndexPending(ctx); err != nil {
				db.log().Error("search indexer", "err", err)
			}
		}
	}()
	db.wakeIndexer() // catch up with events stored before a crash
}

func (db *DB) wakeIndexer() {
	select {
	case db.indexWake <- struct{}{}:
	default:
	}
}

func (db *DB) stopIndexer() {
	close(db.indexStop)
	<-db.indexDone
}

// IndexPending adds every stored event not yet in the search index.
func (db *DB) IndexPending(ctx context.Context) error {
	db.indexMu.Lock()
	defer db.indexMu.Unlock()
	for {
		n := 0
		err := db.Write(ctx, func(tx *Tx) error {
			var from int64
			if err := tx.QueryRowContext(ctx, `SELECT pos FROM search_position WHERE id = 1`).Scan(&from); err != nil {
				return fmt.Errorf("search position: %w", err)
			}
			rows, err := tx.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE stream_pos > $1 ORDER BY stream_pos LIMIT $2`, from, indexBatch)
			if err != nil {
				return err
			}
			var evs []*Event
			for rows.Next() {
				ev, err := scanEvent(rows)
				if err != nil {
					rows.Close()
					return err
				}
				evs = append(evs, ev)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			n = len(evs)
			if n == 0 {
				return nil
			}
			for _, ev := range evs {
				if ev.RedactedBy != "" {
					continue
				}
				if err := indexSearch(ctx, tx, ev, ev.StreamPos); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, `UPDATE search_position SET pos = $1 WHERE id = 1`, evs[n-1].StreamPos)
			return err
		})
		if err != nil || n < indexBatch {
			return err
		}
	}
}
