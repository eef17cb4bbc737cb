package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// searchText returns the text an event contributes to the full-text index
// (event_search): a message's body, a room name or a topic. ok is false for
// events with nothing to index, encrypted ones among them.
func searchText(ev *Event) (body, name, topic string, ok bool) {
	var key string
	switch ev.Type {
	case "m.room.message":
		key = "body"
	case "m.room.name":
		key = "name"
	case "m.room.topic":
		key = "topic"
	default:
		return "", "", "", false
	}
	var p struct {
		Content map[string]json.RawMessage `json:"content"`
	}
	if json.Unmarshal(ev.PDU, &p) != nil {
		return "", "", "", false
	}
	var text string
	if json.Unmarshal(p.Content[key], &text) != nil || text == "" {
		return "", "", "", false
	}
	switch key {
	case "body":
		body = text
	case "name":
		name = text
	default:
		topic = text
	}
	return body, name, topic, true
}

// indexSearch adds an event's text to the full-text index, in the
// transaction that persists it: a search right after a send finds it.
func indexSearch(ctx context.Context, tx *Tx, ev *Event, pos int64) error {
	body, name, topic, ok := searchText(ev)
	if !ok {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO event_search (rowid, body, name, topic) VALUES ($1, $2, $3, $4)`,
		pos, body, name, topic); err != nil {
		return fmt.Errorf("index event text: %w", err)
	}
	return nil
}

// unindexSearch removes a redacted event's text from the index.
func unindexSearch(ctx context.Context, tx *Tx, eventID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM event_search WHERE rowid = (SELECT stream_pos FROM events WHERE event_id = $1)`,
		eventID); err != nil {
		return fmt.Errorf("unindex event text: %w", err)
	}
	return nil
}

// SearchQuery is a full-text query over the events of some rooms.
type SearchQuery struct {
	// Match is an FTS5 query expression (the caller builds it from
	// sanitised terms).
	Match string
	// Rooms restricts the search to these rooms.
	Rooms []string
	// ByRank orders by relevance (best first); otherwise newest first.
	ByRank bool
	// Offset skips results in rank order; Before bounds stream positions
	// (exclusive, 0 for none) in recency order.
	Offset int
	Before int64
	Limit  int
}

// SearchHit is one matching event with its relevance (higher is better).
type SearchHit struct {
	Event *Event
	Rank  float64
}

const searchFrom = ` FROM event_search JOIN events ON events.stream_pos = event_search.rowid
	WHERE event_search MATCH $1 AND events.room_id IN (SELECT value FROM json_each($2))`

// SearchEvents runs a full-text query.
func (db *DB) SearchEvents(ctx context.Context, q SearchQuery) ([]SearchHit, error) {
	rooms, err := json.Marshal(q.Rooms)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	cols := `SELECT ` + qualifiedEventCols + `, -bm25(event_search)`
	if q.ByRank {
		rows, err = db.read.QueryContext(ctx, cols+searchFrom+` ORDER BY bm25(event_search), events.stream_pos DESC LIMIT $3 OFFSET $4`,
			q.Match, string(rooms), q.Limit, q.Offset)
	} else {
		before := q.Before
		if before <= 0 {
			before = 1 << 62
		}
		rows, err = db.read.QueryContext(ctx, cols+searchFrom+` AND event_search.rowid < $3 ORDER BY event_search.rowid DESC LIMIT $4`,
			q.Match, string(rooms), before, q.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []SearchHit
	for rows.Next() {
		var h SearchHit
		if h.Event, err = scanEvent(rankScanner{rows, &h.Rank}); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// SearchCount counts the matches of a query in the rooms.
func (db *DB) SearchCount(ctx context.Context, match string, rooms []string) (int, error) {
	r, err := json.Marshal(rooms)
	if err != nil {
		return 0, err
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*)`+searchFrom, match, string(r)).Scan(&n); err != nil {
		return 0, fmt.Errorf("search count: %w", err)
	}
	return n, nil
}

// rankScanner scans an event row followed by one extra rank column.
type rankScanner struct {
	rows *sql.Rows
	rank *float64
}

func (r rankScanner) Scan(dest ...any) error { return r.rows.Scan(append(dest, r.rank)...) }

const qualifiedEventCols = `events.stream_pos, events.event_id, events.room_id, events.type, events.state_key, events.sender, events.depth,
	events.origin_ts, events.state_before, events.state_after, events.pdu, COALESCE(events.replaces, ''), COALESCE(events.redacted_by, ''),
	COALESCE(events.txn_device, ''), COALESCE(events.txn_id, ''), COALESCE(events.relates_to, ''), COALESCE(events.rel_type, ''),
	COALESCE(events.thread_root, '')`
