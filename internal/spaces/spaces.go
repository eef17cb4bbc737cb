// Package spaces answers the space hierarchy (GET /v1/rooms/{roomId}/hierarchy):
// a breadth-first walk over m.space.child events from a root room, showing
// the rooms the requesting user may see. Children on other servers that this
// server does not know are skipped; walking them needs federation.
package spaces

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service walks space hierarchies. It keeps no state of its own.
type Service struct {
	rooms *rooms.Service
	db    *storage.DB
}

// New returns a service over the database and the rooms service.
func New(db *storage.DB, rs *rooms.Service) *Service { return &Service{rooms: rs, db: db} }

// Request is one page request of a hierarchy.
type Request struct {
	RoomID        string
	User          string
	SuggestedOnly bool
	MaxDepth      int // < 0: no limit
	Limit         int
	From          string
}

// ChildState is a stripped m.space.child event with its timestamp.
type ChildState struct {
	Content        json.RawMessage `json:"content"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Sender         string          `json:"sender"`
	StateKey       string          `json:"state_key"`
	Type           string          `json:"type"`
}

// Summary describes a room to someone who may not be in it: the fields
// shared by hierarchy entries and GET /v1/room_summary.
type Summary struct {
	RoomID           string   `json:"room_id"`
	Name             string   `json:"name,omitempty"`
	Topic            string   `json:"topic,omitempty"`
	CanonicalAlias   string   `json:"canonical_alias,omitempty"`
	AvatarURL        string   `json:"avatar_url,omitempty"`
	NumJoinedMembers int      `json:"num_joined_members"`
	WorldReadable    bool     `json:"world_readable"`
	GuestCanJoin     bool     `json:"guest_can_join"`
	JoinRule         string   `json:"join_rule,omitempty"`
	RoomType         string   `json:"room_type,omitempty"`
	RoomVersion      string   `json:"room_version,omitempty"`
	Encryption       string   `json:"encryption,omitempty"`
	AllowedRoomIDs   []string `json:"allowed_room_ids,omitempty"`
}

// Room is one entry of the hierarchy.
type Room struct {
	Summary
	ChildrenState []ChildState `json:"children_state"`

	children []child
}

// Page is one page of the hierarchy.
type Page struct {
	Rooms     []Room `json:"rooms"`
	NextBatch string `json:"next_batch,omitempty"`
}

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// token is the pagination state: the number of rooms already returned of a
// walk with the same parameters. The walk is deterministic, so a page
// resumes by walking again and skipping what was returned.
type token struct {
	Skip          int  `json:"s"`
	SuggestedOnly bool `json:"o"`
	MaxDepth      int  `json:"d"`
}

func (t token) String() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseToken(s string) (token, error) {
	var t token
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Skip < 0 {
		return t, mxerr.InvalidParam("Unknown pagination token")
	}
	return t, nil
}

type child struct {
	roomID    string
	order     string
	hasOrder  bool
	ts        int64
	suggested bool
}

// Hierarchy returns one page of the space hierarchy below req.RoomID.
func (s *Service) Hierarchy(ctx context.Context, req Request) (*Page, error) {
	if req.Limit <= 0 {
		req.Limit = DefaultLimit
	}
	if req.Limit > MaxLimit {
		req.Limit = MaxLimit
	}
	skip := 0
	if req.From != "" {
		t, err := parseToken(req.From)
		if err != nil {
			return nil, err
		}
		if t.SuggestedOnly != req.SuggestedOnly || t.MaxDepth != req.MaxDepth {
			return nil, mxerr.InvalidParam("suggested_only and max_depth must not change between pages")
		}
		skip = t.Skip
	}
	root, err := s.summary(ctx, req.RoomID, req.User, "")
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, mxerr.Forbidden("You may not preview this room")
	}

	type item struct {
		room  *Room
		depth int
	}
	queue := []item{{root, 0}}
	seen := map[string]bool{req.RoomID: true}
	page := &Page{Rooms: []Room{}}
	n := 0
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if n >= skip {
			if len(page.Rooms) == req.Limit {
				page.NextBatch = token{Skip: n, SuggestedOnly: req.SuggestedOnly, MaxDepth: req.MaxDepth}.String()
				break
			}
			page.Rooms = append(page.Rooms, *it.room)
		}
		n++
		if req.MaxDepth >= 0 && it.depth >= req.MaxDepth {
			continue
		}
		for _, c := range it.room.children {
			if seen[c.roomID] || (req.SuggestedOnly && !c.suggested) {
				continue
			}
			seen[c.roomID] = true
			sub, err := s.summary(ctx, c.roomID, req.User, it.room.RoomID)
			if err != nil {
				return nil, err
			}
			if sub != nil {
				queue = append(queue, item{sub, it.depth + 1})
			}
		}
	}
	return page, nil
}

// summary describes a room for user, or returns nil when the room is unknown
// here (a remote child) or the user may not see it. parent is the space the
// room was reached from ("" for the root).
func (s *Service) summary(ctx context.Context, roomID, user, parent string) (*Room, error) {
	sum, childIDs, err := s.describe(ctx, roomID)
	if err != nil {
		var me *mxerr.Error
		if parent != "" && errors.As(err, &me) && me.Code == "M_NOT_FOUND" {
			return nil, nil
		}
		return nil, err
	}
	ok, err := s.accessible(ctx, sum, user)
	if err != nil || !ok {
		return nil, err
	}
	room := &Room{Summary: *sum, ChildrenState: []ChildState{}}
	childEvs, err := s.rooms.Events(ctx, childIDs)
	if err != nil {
		return nil, err
	}
	for _, ev := range childEvs {
		var c struct {
			Via       []string        `json:"via"`
			Order     json.RawMessage `json:"order"`
			Suggested json.RawMessage `json:"suggested"`
		}
		if json.Unmarshal(ev.PDU.Content, &c) != nil || len(c.Via) == 0 || ev.StateKey == nil {
			continue // no via: the child was removed
		}
		ch := child{roomID: *ev.StateKey, ts: ev.OriginTS, suggested: string(c.Suggested) == "true"}
		var order string
		if json.Unmarshal(c.Order, &order) == nil && validOrder(order) {
			ch.order, ch.hasOrder = order, true
		}
		room.children = append(room.children, ch)
		room.ChildrenState = append(room.ChildrenState, ChildState{
			Content: json.RawMessage(ev.PDU.Content), OriginServerTS: ev.OriginTS, Sender: ev.Sender, StateKey: *ev.StateKey, Type: ev.Type,
		})
	}
	sortChildren(room.children)
	byRoom := make(map[string]int, len(room.children))
	for i, c := range room.children {
		byRoom[c.roomID] = i
	}
	sort.SliceStable(room.ChildrenState, func(i, j int) bool {
		return byRoom[room.ChildrenState[i].StateKey] < byRoom[room.ChildrenState[j].StateKey]
	})
	return room, nil
}

// describe builds a room's summary from its current state, whoever asks,
// and returns the event IDs of its m.space.child events. An unknown room is
// M_NOT_FOUND.
func (s *Service) describe(ctx context.Context, roomID string) (*Summary, []string, error) {
	state, err := s.rooms.CurrentState(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	var ids, childIDs []string
	for k, v := range state {
		switch k.Type {
		case "m.space.child":
			childIDs = append(childIDs, v)
		case "m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
			"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption":
			if k.StateKey == "" {
				ids = append(ids, v)
			}
		}
	}
	evs, err := s.rooms.Events(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	sum := &Summary{RoomID: roomID, JoinRule: "invite"}
	var allow []string
	for _, ev := range evs {
		var c struct {
			Type              string `json:"type"`
			Name              string `json:"name"`
			Topic             string `json:"topic"`
			Alias             string `json:"alias"`
			URL               string `json:"url"`
			JoinRule          string `json:"join_rule"`
			HistoryVisibility string `json:"history_visibility"`
			GuestAccess       string `json:"guest_access"`
			Algorithm         string `json:"algorithm"`
			Allow             []struct {
				Type   string `json:"type"`
				RoomID string `json:"room_id"`
			} `json:"allow"`
		}
		// Content was validated when accepted; a field of an unexpected
		// type just leaves that part of the entry empty.
		_ = json.Unmarshal(ev.PDU.Content, &c)
		switch ev.Type {
		case "m.room.create":
			sum.RoomType = c.Type
			sum.RoomVersion = string(ev.Version)
		case "m.room.name":
			sum.Name = c.Name
		case "m.room.topic":
			sum.Topic = c.Topic
		case "m.room.canonical_alias":
			sum.CanonicalAlias = c.Alias
		case "m.room.avatar":
			sum.AvatarURL = c.URL
		case "m.room.join_rules":
			sum.JoinRule = c.JoinRule
			for _, a := range c.Allow {
				if a.Type == "m.room_membership" && a.RoomID != "" {
					allow = append(allow, a.RoomID)
				}
			}
		case "m.room.history_visibility":
			sum.WorldReadable = c.HistoryVisibility == "world_readable"
		case "m.room.guest_access":
			sum.GuestCanJoin = c.GuestAccess == "can_join"
		case "m.room.encryption":
			sum.Encryption = c.Algorithm
		}
	}
	if sum.JoinRule == "restricted" || sum.JoinRule == "knock_restricted" {
		sum.AllowedRoomIDs = allow
	}
	if sum.NumJoinedMembers, err = s.db.JoinedMemberCount(ctx, roomID); err != nil {
		return nil, nil, err
	}
	return sum, childIDs, nil
}

// RoomSummary is the answer of GET /v1/room_summary: the room's summary and,
// for an authenticated caller, the caller's membership.
type RoomSummary struct {
	Summary
	Membership string `json:"membership,omitempty"`
}

// RoomSummary describes a room (by ID or alias) to user ("" when the caller
// is unauthenticated). Rooms the user may not preview are M_NOT_FOUND, like
// unknown ones, so that the answer does not reveal that a private room
// exists. Remote rooms would need federation, which this server does not
// speak yet: they are unknown here.
func (s *Service) RoomSummary(ctx context.Context, roomIDOrAlias, user string) (*RoomSummary, error) {
	roomID, err := s.rooms.ResolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return nil, err
	}
	sum, _, err := s.describe(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ok, err := s.accessible(ctx, sum, user)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mxerr.NotFound("Room not found")
	}
	out := &RoomSummary{Summary: *sum}
	if user != "" {
		if out.Membership, err = s.rooms.Membership(ctx, roomID, user); err != nil {
			return nil, err
		}
		if out.Membership == "" {
			out.Membership = "leave"
		}
	}
	return out, nil
}

// accessible reports whether user may see the room in a hierarchy: members
// (joined, invited, knocking), and anyone when the room is world-readable,
// can be joined or knocked on, or is restricted to a room the user is in.
func (s *Service) accessible(ctx context.Context, room *Summary, user string) (bool, error) {
	m := ""
	if user != "" {
		var err error
		if m, err = s.rooms.Membership(ctx, room.RoomID, user); err != nil {
			return false, err
		}
	}
	switch m {
	case "join", "invite", "knock":
		return true, nil
	case "ban":
		return false, nil
	}
	if room.WorldReadable {
		return true, nil
	}
	switch room.JoinRule {
	case "public", "knock":
		return true, nil
	case "restricted", "knock_restricted":
		if user == "" {
			return room.JoinRule == "knock_restricted", nil
		}
		for _, a := range room.AllowedRoomIDs {
			am, err := s.rooms.Membership(ctx, a, user)
			if err != nil {
				var me *mxerr.Error
				if errors.As(err, &me) && me.Code == "M_NOT_FOUND" {
					continue
				}
				return false, err
			}
			if am == "join" {
				return true, nil
			}
		}
		return room.JoinRule == "knock_restricted", nil
	}
	return false, nil
}

// validOrder is the spec's test for m.space.child's order: at most 50
// characters in the printable ASCII range.
func validOrder(s string) bool {
	if len(s) > 50 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sortChildren orders children as the spec says: those with an order first,
// lexicographically by it; then by the child event's timestamp, then room ID.
func sortChildren(cs []child) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.hasOrder != b.hasOrder {
			return a.hasOrder
		}
		if a.hasOrder && a.order != b.order {
			return a.order < b.order
		}
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		return a.roomID < b.roomID
	})
}

// ParseMaxDepth parses the max_depth query parameter ("" is no limit).
func ParseMaxDepth(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, mxerr.InvalidParam("max_depth must be a non-negative integer")
	}
	return n, nil
}
