// Package filter implements the client-server API's event filters.
package filter

import (
	"encoding/json"
	"path"
	"slices"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/mxid"
)

// EventFilter selects events by type and sender.
type EventFilter struct {
	Limit      *int      `json:"limit,omitempty"`
	Types      *[]string `json:"types,omitempty"`
	NotTypes   []string  `json:"not_types,omitempty"`
	Senders    *[]string `json:"senders,omitempty"`
	NotSenders []string  `json:"not_senders,omitempty"`
}

// RoomEventFilter adds room and content conditions.
type RoomEventFilter struct {
	EventFilter
	Rooms                     *[]string `json:"rooms,omitempty"`
	NotRooms                  []string  `json:"not_rooms,omitempty"`
	ContainsURL               *bool     `json:"contains_url,omitempty"`
	LazyLoadMembers           bool      `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers   bool      `json:"include_redundant_members,omitempty"`
	UnreadThreadNotifications bool      `json:"unread_thread_notifications,omitempty"`
	// RelTypes and NotRelTypes select events by the rel_type of their
	// m.relates_to (MSC3874, under its unstable prefix only: the spec has
	// no such fields yet). With RelTypes, events without a relation are
	// left out; NotRelTypes never leaves them out.
	RelTypes    *[]string `json:"org.matrix.msc3874.rel_types,omitempty"`
	NotRelTypes []string  `json:"org.matrix.msc3874.not_rel_types,omitempty"`
}

// RoomFilter is the room part of a sync filter.
type RoomFilter struct {
	Rooms        *[]string       `json:"rooms,omitempty"`
	NotRooms     []string        `json:"not_rooms,omitempty"`
	IncludeLeave bool            `json:"include_leave,omitempty"`
	Timeline     RoomEventFilter `json:"timeline"`
	State        RoomEventFilter `json:"state"`
	Ephemeral    RoomEventFilter `json:"ephemeral"`
	AccountData  RoomEventFilter `json:"account_data"`
}

// Filter is a whole sync filter.
type Filter struct {
	EventFields []string    `json:"event_fields,omitempty"`
	EventFormat string      `json:"event_format,omitempty"`
	Presence    EventFilter `json:"presence"`
	AccountData EventFilter `json:"account_data"`
	Room        RoomFilter  `json:"room"`
}

// Parse decodes and validates a filter definition.
func Parse(b []byte) (*Filter, error) {
	var f Filter
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, mxerr.BadJSON("Invalid filter: %v", err)
	}
	if f.EventFormat != "" && f.EventFormat != "client" && f.EventFormat != "federation" {
		return nil, mxerr.BadJSON("event_format must be client or federation")
	}
	for _, l := range []*int{f.Presence.Limit, f.AccountData.Limit, f.Room.Timeline.Limit, f.Room.State.Limit, f.Room.Ephemeral.Limit} {
		if l != nil && *l < 0 {
			return nil, mxerr.BadJSON("limit must not be negative")
		}
	}
	if err := checkIDs("room", "rooms", f.Room.Rooms, f.Room.NotRooms, mxid.RoomID); err != nil {
		return nil, err
	}
	for name, ef := range map[string]*EventFilter{"presence": &f.Presence, "account_data": &f.AccountData} {
		if err := ef.check(name); err != nil {
			return nil, err
		}
	}
	for name, rf := range map[string]*RoomEventFilter{"room.timeline": &f.Room.Timeline, "room.state": &f.Room.State,
		"room.ephemeral": &f.Room.Ephemeral, "room.account_data": &f.Room.AccountData} {
		if err := rf.check(name); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// ParseRoomEventFilter decodes a RoomEventFilter (as /messages takes).
func ParseRoomEventFilter(b []byte) (*RoomEventFilter, error) {
	var f RoomEventFilter
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, mxerr.BadJSON("Invalid filter: %v", err)
	}
	if err := f.check("filter"); err != nil {
		return nil, err
	}
	return &f, nil
}

// check refuses senders that cannot be user IDs: the spec's schema
// requires them, and a filter naming "not_a_sender_id" would otherwise be
// stored and silently match nothing.
func (f *EventFilter) check(name string) error {
	return checkIDs(name, "senders", f.Senders, f.NotSenders, mxid.UserID)
}

// check is EventFilter.check plus the room lists.
func (f *RoomEventFilter) check(name string) error {
	if err := f.EventFilter.check(name); err != nil {
		return err
	}
	return checkIDs(name, "rooms", f.Rooms, f.NotRooms, mxid.RoomID)
}

// checkIDs checks the include list field and its exclude list not_field
// of the filter at path against one ID syntax.
func checkIDs(path, field string, include *[]string, exclude []string, valid func(string) bool) error {
	var in []string
	if include != nil {
		in = *include
	}
	for _, id := range in {
		if !valid(id) {
			return mxerr.BadJSON("%s.%s: %q is not a valid ID", path, field, id)
		}
	}
	for _, id := range exclude {
		if !valid(id) {
			return mxerr.BadJSON("%s.not_%s: %q is not a valid ID", path, field, id)
		}
	}
	return nil
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s {
			return true
		}
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// Allows reports whether an event of this type and sender passes.
func (f *EventFilter) Allows(typ, sender string) bool {
	if f == nil {
		return true
	}
	if matchAny(f.NotTypes, typ) {
		return false
	}
	if f.Types != nil && !matchAny(*f.Types, typ) {
		return false
	}
	for _, s := range f.NotSenders {
		if s == sender {
			return false
		}
	}
	if f.Senders != nil {
		found := false
		for _, s := range *f.Senders {
			if s == sender {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// AllowsRoom reports whether a room passes the filter's room conditions.
func AllowsRoom(rooms *[]string, notRooms []string, roomID string) bool {
	for _, r := range notRooms {
		if r == roomID {
			return false
		}
	}
	if rooms != nil {
		for _, r := range *rooms {
			if r == roomID {
				return true
			}
		}
		return false
	}
	return true
}

// AllowsEvent checks a room event filter against an event.
func (f *RoomEventFilter) AllowsEvent(roomID, typ, sender string, content []byte) bool {
	if f == nil {
		return true
	}
	if !AllowsRoom(f.Rooms, f.NotRooms, roomID) || !f.EventFilter.Allows(typ, sender) {
		return false
	}
	if f.ContainsURL != nil {
		var c struct {
			URL *string `json:"url"`
		}
		json.Unmarshal(content, &c)
		if (c.URL != nil) != *f.ContainsURL {
			return false
		}
	}
	if f.RelTypes != nil || len(f.NotRelTypes) > 0 {
		rel := relType(content)
		if rel != "" && slices.Contains(f.NotRelTypes, rel) {
			return false
		}
		if f.RelTypes != nil && (rel == "" || !slices.Contains(*f.RelTypes, rel)) {
			return false
		}
	}
	return true
}

// relType returns the rel_type of an event's m.relates_to, "" when it has
// none. Relations stay in clear content in encrypted events, so this
// works for them too.
func relType(content []byte) string {
	var c struct {
		RelatesTo struct {
			RelType string `json:"rel_type"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(content, &c) != nil {
		return ""
	}
	return c.RelatesTo.RelType
}

// LimitOr returns the filter's limit or def.
func (f *EventFilter) LimitOr(def int) int {
	if f == nil || f.Limit == nil {
		return def
	}
	return *f.Limit
}
