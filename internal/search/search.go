// Package search answers server-side search (POST /search) over room events
// with the database's full-text index. Only text the server can read is
// indexed (message bodies, room names and topics), so encrypted rooms are not
// searchable here: their clients search locally. Results are limited to the
// rooms and history the user may see.
package search

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
)

// Service runs searches. It keeps no state of its own.
type Service struct {
	rooms *rooms.Service
	db    *storage.DB
}

// New returns a service over the database and the rooms service.
func New(db *storage.DB, rs *rooms.Service) *Service { return &Service{rooms: rs, db: db} }

// Request is the body of POST /search.
type Request struct {
	SearchCategories struct {
		RoomEvents *RoomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

// RoomEventsCriteria is the room_events search category.
type RoomEventsCriteria struct {
	SearchTerm   *string                 `json:"search_term"`
	Keys         []string                `json:"keys"`
	Filter       *filter.RoomEventFilter `json:"filter"`
	OrderBy      string                  `json:"order_by"`
	EventContext *EventContextCriteria   `json:"event_context"`
	IncludeState bool                    `json:"include_state"`
	Groupings    *Groupings              `json:"groupings"`
}

// Groupings asks for results grouped by room or sender.
type Groupings struct {
	GroupBy []Group `json:"group_by"`
}

// Group names a grouping key.
type Group struct {
	Key string `json:"key"`
}

// EventContextCriteria asks for events around each result.
type EventContextCriteria struct {
	BeforeLimit    *int `json:"before_limit"`
	AfterLimit     *int `json:"after_limit"`
	IncludeProfile bool `json:"include_profile"`
}

// Response is the body answered.
type Response struct {
	SearchCategories struct {
		RoomEvents *RoomEventsResult `json:"room_events,omitempty"`
	} `json:"search_categories"`
}

// RoomEventsResult is the room_events category of a response.
type RoomEventsResult struct {
	Count      int                                `json:"count"`
	Highlights []string                           `json:"highlights"`
	Results    []Result                           `json:"results"`
	NextBatch  string                             `json:"next_batch,omitempty"`
	State      map[string][]rooms.ClientEvent     `json:"state,omitempty"`
	Groups     map[string]map[string]*GroupResult `json:"groups,omitempty"`
}

// Result is one matching event.
type Result struct {
	Rank    float64           `json:"rank"`
	Result  rooms.ClientEvent `json:"result"`
	Context *Context          `json:"context,omitempty"`
}

// Context is the events around a result.
type Context struct {
	Start        string                  `json:"start"`
	End          string                  `json:"end"`
	EventsBefore []rooms.ClientEvent     `json:"events_before"`
	EventsAfter  []rooms.ClientEvent     `json:"events_after"`
	ProfileInfo  map[string]*ProfileInfo `json:"profile_info,omitempty"`
}

// ProfileInfo is a sender's profile in the room at the time of an event.
type ProfileInfo struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// GroupResult is one group of results.
type GroupResult struct {
	Results   []string `json:"results"`
	Order     int      `json:"order"`
	NextBatch string   `json:"next_batch,omitempty"`
}

// Limits on a page and on context.
const (
	DefaultLimit   = 10
	MaxLimit       = 100
	defaultContext = 5
	maxContext     = 50
)

var keyColumns = map[string]string{"content.body": "body", "content.name": "name", "content.topic": "topic"}

// Search runs the request for user. nextBatch is the next_batch of a
// previous page ("" for the first).
func (s *Service) Search(ctx context.Context, v rooms.Viewer, req Request, nextBatch string) (*Response, error) {
	resp := &Response{}
	c := req.SearchCategories.RoomEvents
	if c == nil {
		return resp, nil
	}
	res, err := s.searchRoomEvents(ctx, v, c, nextBatch)
	if err != nil {
		return nil, err
	}
	resp.SearchCategories.RoomEvents = res
	return resp, nil
}

func (s *Service) searchRoomEvents(ctx context.Context, v rooms.Viewer, c *RoomEventsCriteria, nextBatch string) (*RoomEventsResult, error) {
	if c.SearchTerm == nil {
		return nil, mxerr.MissingParam("search_term is required")
	}
	byRank := true
	switch c.OrderBy {
	case "", "rank":
	case "recent":
		byRank = false
	default:
		return nil, mxerr.InvalidParam("order_by must be rank or recent")
	}
	var columns []string
	for _, k := range c.Keys {
		col, ok := keyColumns[k]
		if !ok {
			return nil, mxerr.InvalidParam("unknown search key %q", k)
		}
		columns = append(columns, col)
	}
	groupBy := map[string]bool{}
	if c.Groupings != nil {
		for _, g := range c.Groupings.GroupBy {
			if g.Key != "room_id" && g.Key != "sender" {
				return nil, mxerr.InvalidParam("unknown grouping key %q", g.Key)
			}
			groupBy[g.Key] = true
		}
	}
	var before, after int
	if c.EventContext != nil {
		var err error
		if before, err = contextLimit(c.EventContext.BeforeLimit); err != nil {
			return nil, err
		}
		if after, err = contextLimit(c.EventContext.AfterLimit); err != nil {
			return nil, err
		}
	}
	cur, err := parseBatch(nextBatch, byRank)
	if err != nil {
		return nil, err
	}
	limit := DefaultLimit
	if c.Filter != nil && c.Filter.Limit != nil {
		if *c.Filter.Limit < 0 {
			return nil, mxerr.InvalidParam("filter.limit must not be negative")
		}
		limit = min(*c.Filter.Limit, MaxLimit)
	}

	res := &RoomEventsResult{Highlights: []string{}, Results: []Result{}}
	terms := Terms(*c.SearchTerm)
	roomIDs, err := s.searchableRooms(ctx, v.UserID, c.Filter)
	if err != nil {
		return nil, err
	}
	if len(terms) == 0 || len(roomIDs) == 0 || limit == 0 {
		return res, nil
	}
	q := storage.SearchQuery{Match: MatchExpr(terms, columns), Rooms: roomIDs, ByRank: byRank, Limit: max(limit*2, 20), RankFloor: cur.floor}
	if res.Count, err = s.visibleCount(ctx, v.UserID, &q); err != nil {
		return nil, err
	}

	// Fetch in batches until the page is full: hits the user may not see
	// (history visibility) or the filter rejects are skipped, and the
	// cursor counts every hit consumed so the next page resumes after them.
	var hits []storage.SearchHit
	more := true
	for len(hits) < limit && more {
		q.Offset, q.Before = cur.offset, cur.before
		raw, err := s.db.SearchEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		more = len(raw) == q.Limit
		rows := make([]*storage.Event, len(raw))
		for i, h := range raw {
			rows[i] = h.Event
		}
		evs, err := s.rooms.Wrap(ctx, rows)
		if err != nil {
			return nil, err
		}
		visible, err := s.visibleSet(ctx, v.UserID, evs)
		if err != nil {
			return nil, err
		}
		for i, h := range raw {
			if len(hits) == limit {
				more = true
				break
			}
			cur.offset++
			cur.before = h.Event.StreamPos
			ev := evs[i]
			if !visible[ev.EventID] || !c.Filter.AllowsEvent(ev.RoomID, ev.Type, ev.Sender, ev.PDU.Content) {
				continue
			}
			hits = append(hits, storage.SearchHit{Event: h.Event, Rank: h.Rank})
		}
	}
	// A full page gets a next_batch even when it happens to hold the last
	// hits: the spec only promises that an absent next_batch means no
	// more results, clients (and sytest) page on until a page comes back
	// short, and the next page then comes back empty, without one.
	if more || len(hits) == limit {
		cur.floor = q.RankFloor
		res.NextBatch = cur.String(byRank)
	}

	rows := make([]*storage.Event, len(hits))
	for i, h := range hits {
		rows[i] = h.Event
	}
	evs, err := s.rooms.Wrap(ctx, rows)
	if err != nil {
		return nil, err
	}
	highlights := map[string]bool{}
	groups := map[string]map[string]*GroupResult{}
	resultRooms := map[string]bool{}
	for i, ev := range evs {
		r := Result{Rank: hits[i].Rank, Result: s.rooms.Format(ctx, ev, v, rooms.FormatOpts{})}
		if c.EventContext != nil {
			if r.Context, err = s.context(ctx, v, ev, before, after, c.EventContext.IncludeProfile); err != nil {
				return nil, err
			}
		}
		res.Results = append(res.Results, r)
		resultRooms[ev.RoomID] = true
		for _, w := range highlightWords(ev.PDU.Content, terms) {
			highlights[w] = true
		}
		for key := range groupBy {
			val := ev.RoomID
			if key == "sender" {
				val = ev.Sender
			}
			if groups[key] == nil {
				groups[key] = map[string]*GroupResult{}
			}
			g := groups[key][val]
			if g == nil {
				g = &GroupResult{Order: len(groups[key]) + 1}
				groups[key][val] = g
			}
			g.Results = append(g.Results, ev.EventID)
		}
	}
	for w := range highlights {
		res.Highlights = append(res.Highlights, w)
	}
	sort.Strings(res.Highlights)
	if len(groupBy) > 0 {
		res.Groups = groups
		for key := range groupBy {
			if res.Groups[key] == nil {
				res.Groups[key] = map[string]*GroupResult{}
			}
		}
	}
	if c.IncludeState {
		res.State = map[string][]rooms.ClientEvent{}
		for roomID := range resultRooms {
			ok, err := s.rooms.CanReadRoom(ctx, roomID, v.UserID)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			state, err := s.rooms.CurrentState(ctx, roomID)
			if err != nil {
				return nil, err
			}
			ids := make([]string, 0, len(state))
			for _, id := range state {
				ids = append(ids, id)
			}
			stateEvs, err := s.rooms.Events(ctx, ids)
			if err != nil {
				return nil, err
			}
			sort.Slice(stateEvs, func(i, j int) bool { return stateEvs[i].StreamPos < stateEvs[j].StreamPos })
			res.State[roomID] = s.rooms.FormatAll(ctx, stateEvs, v, rooms.FormatOpts{NoAggregations: true})
		}
	}
	return res, nil
}

func contextLimit(p *int) (int, error) {
	if p == nil {
		return defaultContext, nil
	}
	if *p < 0 {
		return 0, mxerr.InvalidParam("event_context limits must not be negative")
	}
	return min(*p, maxContext), nil
}

// searchableRooms lists the rooms whose history the user may have seen
// (joined now, or once: left and banned rooms keep what was visible then),
// minus forgotten ones, narrowed by the filter's rooms and not_rooms.
func (s *Service) searchableRooms(ctx context.Context, user string, f *filter.RoomEventFilter) ([]string, error) {
	ms, err := s.rooms.UserMemberships(ctx, user)
	if err != nil {
		return nil, err
	}
	forgotten, err := s.db.ForgottenRooms(ctx, user)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, r := range forgotten {
		skip[r] = true
	}
	var out []string
	for _, m := range ms {
		switch m.Membership {
		case "join", "leave", "ban":
		default:
			continue
		}
		if skip[m.RoomID] || (f != nil && !filter.AllowsRoom(f.Rooms, f.NotRooms, m.RoomID)) {
			continue
		}
		out = append(out, m.RoomID)
	}
	sort.Strings(out)
	return out, nil
}

// visibleCount counts the matches of q the user may see: the matches in
// their rooms minus, in each room where history visibility hides part of
// the history from them (before they joined, after they left), the matches
// there. Counting hidden hits would let anyone probe a room they left for
// words said after they left.
func (s *Service) visibleCount(ctx context.Context, user string, q *storage.SearchQuery) (int, error) {
	n, err := s.db.SearchCount(ctx, q)
	if err != nil || n == 0 {
		return n, err
	}
	for _, roomID := range q.Rooms {
		ranges, err := s.rooms.VisibleRanges(ctx, roomID, user)
		if err != nil {
			return 0, err
		}
		if len(ranges) == 1 && ranges[0].From == 0 && ranges[0].To >= s.db.Position() {
			continue // all of it
		}
		hidden, err := s.db.SearchCountOutside(ctx, q.Match, roomID, ranges)
		if err != nil {
			return 0, err
		}
		n -= hidden
	}
	return max(n, 0), nil
}

// visibleSet returns the IDs of the events the user is shown: those they
// may see, minus those of users they ignore.
func (s *Service) visibleSet(ctx context.Context, user string, evs []*rooms.Event) (map[string]bool, error) {
	byRoom := map[string][]*rooms.Event{}
	for _, ev := range evs {
		byRoom[ev.RoomID] = append(byRoom[ev.RoomID], ev)
	}
	out := make(map[string]bool, len(evs))
	for _, list := range byRoom {
		vis, err := s.rooms.FilterShown(ctx, user, list)
		if err != nil {
			return nil, err
		}
		for _, ev := range vis {
			out[ev.EventID] = true
		}
	}
	return out, nil
}

// context returns the visible events around ev, with tokens for /messages
// and, when asked, the senders' profiles as they were in the room then.
func (s *Service) context(ctx context.Context, v rooms.Viewer, ev *rooms.Event, before, after int, profile bool) (*Context, error) {
	out := &Context{EventsBefore: []rooms.ClientEvent{}, EventsAfter: []rooms.ClientEvent{}}
	start, end := ev.StreamPos-1, ev.StreamPos
	var bEvs, aEvs []*rooms.Event
	if before > 0 {
		rows, err := s.db.RoomEventsBackward(ctx, ev.RoomID, ev.StreamPos, 0, before)
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 {
			start = rows[len(rows)-1].StreamPos - 1
		}
		if bEvs, err = s.wrapVisible(ctx, v.UserID, rows); err != nil {
			return nil, err
		}
	}
	if after > 0 {
		rows, err := s.db.RoomEventsForward(ctx, ev.RoomID, ev.StreamPos, int64(1)<<62, after)
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 {
			end = rows[len(rows)-1].StreamPos
		}
		if aEvs, err = s.wrapVisible(ctx, v.UserID, rows); err != nil {
			return nil, err
		}
	}
	out.Start, out.End = sync.Token{Pos: start}.String(), sync.Token{Pos: end}.String()
	out.EventsBefore = append(out.EventsBefore, s.rooms.FormatAll(ctx, bEvs, v, rooms.FormatOpts{})...)
	out.EventsAfter = append(out.EventsAfter, s.rooms.FormatAll(ctx, aEvs, v, rooms.FormatOpts{})...)
	if !profile {
		return out, nil
	}
	out.ProfileInfo = map[string]*ProfileInfo{}
	all := append(append([]*rooms.Event{ev}, bEvs...), aEvs...)
	for _, e := range all {
		if _, done := out.ProfileInfo[e.Sender]; done {
			continue
		}
		p, err := s.profileAt(ctx, e)
		if err != nil {
			return nil, err
		}
		out.ProfileInfo[e.Sender] = p
	}
	return out, nil
}

func (s *Service) wrapVisible(ctx context.Context, user string, rows []*storage.Event) ([]*rooms.Event, error) {
	evs, err := s.rooms.Wrap(ctx, rows)
	if err != nil {
		return nil, err
	}
	return s.rooms.FilterShown(ctx, user, evs)
}

// profileAt is the sender's member event content in the state before e.
func (s *Service) profileAt(ctx context.Context, e *rooms.Event) (*ProfileInfo, error) {
	state, err := s.rooms.StateAt(ctx, e.StateBefore)
	if err != nil {
		return nil, err
	}
	p := &ProfileInfo{}
	id, ok := state[storage.StateKey{Type: "m.room.member", StateKey: e.Sender}]
	if !ok {
		return p, nil
	}
	m, err := s.rooms.Event(ctx, id)
	if err != nil {
		var me *mxerr.Error
		if errors.As(err, &me) {
			return p, nil
		}
		return nil, err
	}
	var c struct {
		DisplayName string `json:"displayname"`
		AvatarURL   string `json:"avatar_url"`
	}
	_ = json.Unmarshal(m.PDU.Content, &c) // validated when accepted
	p.DisplayName, p.AvatarURL = c.DisplayName, c.AvatarURL
	return p, nil
}

// Terms splits a search term into lower-case words, the way the index's
// unicode61 tokenizer does (letters and digits; everything else separates).
func Terms(q string) []string {
	words := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r)
	})
	seen := map[string]bool{}
	out := words[:0]
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// MatchExpr builds the FTS5 query: every term must occur, each as a word
// prefix ("mess" finds "message"), in the given text columns (all when none).
// Terms hold only letters and digits, so quoting them is all the escaping
// the query syntax needs.
func MatchExpr(terms []string, columns []string) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = `"` + t + `"*`
	}
	if len(columns) == 0 {
		columns = []string{"body", "name", "topic"}
	}
	return "{" + strings.Join(columns, " ") + "} : (" + strings.Join(parts, " ") + ")"
}

// highlightWords returns the words of the event's text that matched a term
// (a client highlights these in the result).
func highlightWords(content []byte, terms []string) []string {
	var c struct {
		Body  string `json:"body"`
		Name  string `json:"name"`
		Topic string `json:"topic"`
	}
	if json.Unmarshal(content, &c) != nil {
		return nil
	}
	var out []string
	for _, w := range Terms(c.Body + " " + c.Name + " " + c.Topic) {
		for _, t := range terms {
			if strings.HasPrefix(w, t) {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

// cursor is where the next page starts: an offset in rank order (with the
// rank floor of the first page, so pages rank the same matches), or the
// stream position below which recency order continues.
type cursor struct {
	offset int
	floor  int64
	before int64
}

func (c cursor) String(byRank bool) string {
	if byRank {
		return "r" + strconv.Itoa(c.offset) + "." + strconv.FormatInt(c.floor, 10)
	}
	return "p" + strconv.FormatInt(c.before, 10)
}

func parseBatch(s string, byRank bool) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	bad := mxerr.InvalidParam("Invalid next_batch token")
	if len(s) < 2 || (s[0] == 'r') != byRank || (s[0] != 'r' && s[0] != 'p') {
		return c, bad
	}
	if byRank {
		off, floor, ok := strings.Cut(s[1:], ".")
		n, err1 := strconv.Atoi(off)
		f, err2 := strconv.ParseInt(floor, 10, 64)
		if !ok || err1 != nil || err2 != nil || n < 0 || f < 0 {
			return c, bad
		}
		c.offset, c.floor = n, f
		return c, nil
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	if err != nil || n < 0 {
		return c, bad
	}
	c.before = n
	return c, nil
}
