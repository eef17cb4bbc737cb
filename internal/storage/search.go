package storage

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
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
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO event_search (rowid, body, name, topic, room) VALUES ($1, $2, $3, $4, $5)`,
		pos, body, name, topic, roomToken(ev.RoomID)); err != nil {
		return fmt.Errorf("index event text: %w", err)
	}
	return nil
}

// roomToken is the single index token standing for a room (as the
// migration computes it: 'r' || lower(hex(room_id))).
func roomToken(roomID string) string { return "r" + hex.EncodeToString([]byte(roomID)) }

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
	// Match is an FTS5 query expression over the text columns (body,
	// name, topic), built by the caller from sanitised terms.
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
	// RankFloor, when set, ranks only matches at or above this stream
	// position: SearchCount sets it for terms with more than maxRanked
	// matches to the position of the maxRanked-th newest, since scoring
	// costs a few microseconds per match.
	RankFloor int64

	// checkRooms makes the query check each match's room by reading its
	// event instead of naming the rooms in the full-text query: cheaper
	// when the terms match few events (SearchCount decides).
	checkRooms bool
}

// SearchHit is one matching event with its relevance (higher is better).
type SearchHit struct {
	Event *Event
	Rank  float64
}

// maxRoomTokens bounds the rooms named inside a full-text query; with more,
// matches are checked against the rooms by looking up their events.
const maxRoomTokens = 100

// searchExpr returns the FTS5 expression and the SQL condition (after the
// MATCH) that limit q.Match to q.Rooms.
func searchExpr(q SearchQuery) (match, cond string, args []any, err error) {
	if len(q.Rooms) <= maxRoomTokens && !q.checkRooms {
		toks := make([]string, len(q.Rooms))
		for i, r := range q.Rooms {
			toks[i] = roomToken(r)
		}
		return "(" + q.Match + ") AND room : (" + strings.Join(toks, " OR ") + ")", "", nil, nil
	}
	rooms, err := json.Marshal(q.Rooms)
	if err != nil {
		return "", "", nil, err
	}
	return q.Match, ` AND (SELECT room_id FROM events WHERE events.stream_pos = event_search.rowid) IN (SELECT value FROM json_each($2))`,
		[]any{string(rooms)}, nil
}

// bm25 weighs the text columns alike and the room column not at all.
const bm25 = `bm25(event_search, 1.0, 1.0, 1.0, 0.0)`

// SearchEvents runs a full-text query: the index alone picks the page,
// then the page's events are read.
func (db *DB) SearchEvents(ctx context.Context, q SearchQuery) ([]SearchHit, error) {
	if err := db.IndexPending(ctx); err != nil {
		return nil, err
	}
	if len(q.Rooms) == 0 || q.Limit <= 0 {
		return nil, nil
	}
	match, cond, extra, err := searchExpr(q)
	if err != nil {
		return nil, err
	}
	args := append([]any{match}, extra...)
	n := len(args)
	var query string
	if q.ByRank {
		query = fmt.Sprintf(`SELECT rowid, -%s FROM event_search WHERE event_search MATCH $1%s AND rowid >= $%d
			ORDER BY %s, rowid DESC LIMIT $%d OFFSET $%d`, bm25, cond, n+1, bm25, n+2, n+3)
		args = append(args, q.RankFloor, q.Limit, q.Offset)
	} else {
		before := q.Before
		if before <= 0 {
			before = 1 << 62
		}
		query = fmt.Sprintf(`SELECT rowid, 0.0 FROM event_search WHERE event_search MATCH $1%s AND rowid < $%d ORDER BY rowid DESC LIMIT $%d`,
			cond, n+1, n+2)
		args = append(args, before, q.Limit)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var hits []SearchHit
	var pos []int64
	for rows.Next() {
		var p int64
		var h SearchHit
		if err := rows.Scan(&p, &h.Rank); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search: %w", err)
		}
		hits = append(hits, h)
		pos = append(pos, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	evs, err := db.eventsAt(ctx, pos)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	inRooms := make(map[string]bool, len(q.Rooms))
	for _, r := range q.Rooms {
		inRooms[r] = true
	}
	out := hits[:0]
	for i, h := range hits {
		if ev := evs[pos[i]]; ev != nil && inRooms[ev.RoomID] {
			h.Event = ev
			out = append(out, h)
		}
	}
	return out, nil
}

// eventsAt reads events by stream position.
func (db *DB) eventsAt(ctx context.Context, pos []int64) (map[int64]*Event, error) {
	out := make(map[int64]*Event, len(pos))
	if len(pos) == 0 {
		return out, nil
	}
	list, err := json.Marshal(pos)
	if err != nil {
		return nil, err
	}
	evs, err := db.queryEvents(ctx, `WHERE stream_pos IN (SELECT value FROM json_each($1))`, string(list))
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		out[ev.StreamPos] = ev
	}
	return out, nil
}

// fewMatches is the number of matches below which checking each match's
// room costs less than merging the rooms' token lists in the index.
const fewMatches = 1000

// SearchCount counts the matches of q in its rooms, and picks how later
// SearchEvents calls with q limit the rooms: by room tokens when the terms
// are common, by reading the few matches' events when they are rare.
func (db *DB) SearchCount(ctx context.Context, q *SearchQuery) (int, error) {
	if err := db.IndexPending(ctx); err != nil {
		return 0, err
	}
	if len(q.Rooms) == 0 {
		return 0, nil
	}
	if len(q.Rooms) <= maxRoomTokens {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM event_search WHERE event_search MATCH $1 LIMIT $2) AS hits`,
			q.Match, fewMatches).Scan(&n); err != nil {
			return 0, fmt.Errorf("search count: %w", err)
		}
		q.checkRooms = n < fewMatches
	}
	m, cond, extra, err := searchExpr(*q)
	if err != nil {
		return 0, err
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_search WHERE event_search MATCH $1`+cond,
		append([]any{m}, extra...)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("search count: %w", err)
	}
	if q.ByRank && q.RankFloor == 0 && n > maxRanked {
		if err := db.read.QueryRowContext(ctx, fmt.Sprintf(`SELECT rowid FROM event_search WHERE event_search MATCH $1%s
			ORDER BY rowid DESC LIMIT 1 OFFSET $%d`, cond, len(extra)+2), append(append([]any{m}, extra...), maxRanked-1)...).Scan(&q.RankFloor); err != nil {
			return 0, fmt.Errorf("search rank floor: %w", err)
		}
	}
	return n, nil
}

// PosRange is the stream positions (From, To].
type PosRange struct{ From, To int64 }

// SearchCountOutside counts the matches of match in one room outside the
// given stream ranges: the hits a user may not see there, which a search's
// count must leave out.
func (db *DB) SearchCountOutside(ctx context.Context, match, roomID string, ranges []PosRange) (int, error) {
	if err := db.IndexPending(ctx); err != nil {
		return 0, err
	}
	args := []any{"(" + match + ") AND room : " + roomToken(roomID)}
	cond := ""
	for _, r := range ranges {
		cond += fmt.Sprintf(` AND NOT (rowid > $%d AND rowid <= $%d)`, len(args)+1, len(args)+2)
		args = append(args, r.From, r.To)
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_search WHERE event_search MATCH $1`+cond, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("search count: %w", err)
	}
	return n, nil
}

// maxRanked is how many of the newest matches a search by rank scores.
const maxRanked = 2000
