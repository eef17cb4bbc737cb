// Package slidingsync implements simplified sliding sync (MSC4186): a
// connection-oriented sync where the client asks for windows of its room
// list, ordered by recent activity, and the server sends only those rooms.
package slidingsync

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/axon-matrix/axon/internal/rooms"
)

// Request is the body of a sliding sync request.
type Request struct {
	ConnID            string                `json:"conn_id"`
	Lists             map[string]ListConfig `json:"lists"`
	RoomSubscriptions map[string]RoomConfig `json:"room_subscriptions"`
	// UnsubscribeRooms is sent by matrix-js-sdk, which sends each room
	// subscription once and later names the rooms it no longer wants.
	UnsubscribeRooms []string   `json:"unsubscribe_rooms"`
	Extensions       Extensions `json:"extensions"`
	// Pos and Timeout may come in the body (the MSC's current text) rather
	// than the query string (Synapse and today's clients).
	Pos         *string `json:"pos"`
	Timeout     *int64  `json:"timeout"`
	SetPresence *string `json:"set_presence"`

	// V4 is set for /v4/sync, whose responses use the MSC's current field
	// names (stripped_state, expanded_timeline, membership, lists) instead
	// of the unstable ones clients of the unstable path read.
	V4 bool `json:"-"`
}

// RoomConfig says what to send for a room.
type RoomConfig struct {
	TimelineLimit int           `json:"timeline_limit"`
	RequiredState RequiredState `json:"required_state"`
}

// RequiredState is the state a room config asks for. Clients send it as a
// list of [type, state_key] pairs ("*" wildcards, "$ME", "$LAZY"); the MSC's
// current text has an object {include, exclude, lazy_members} instead, which
// is read into the same pairs plus exclusions.
type RequiredState struct {
	Pairs   [][2]string
	Exclude [][2]string
}

// UnmarshalJSON reads either form.
func (rs *RequiredState) UnmarshalJSON(b []byte) error {
	*rs = RequiredState{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '[' {
		var pairs [][]string
		if err := json.Unmarshal(b, &pairs); err != nil {
			return err
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return fmt.Errorf("required_state entries are [type, state_key] pairs")
			}
			rs.Pairs = append(rs.Pairs, [2]string{p[0], p[1]})
		}
		return nil
	}
	type elem struct {
		Type     *string `json:"type"`
		StateKey *string `json:"state_key"`
	}
	var obj struct {
		Include     []elem `json:"include"`
		Exclude     []elem `json:"exclude"`
		LazyMembers bool   `json:"lazy_members"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	pair := func(e elem) [2]string {
		p := [2]string{"*", "*"}
		if e.Type != nil {
			p[0] = *e.Type
		}
		if e.StateKey != nil {
			p[1] = *e.StateKey
		}
		return p
	}
	for _, e := range obj.Include {
		rs.Pairs = append(rs.Pairs, pair(e))
	}
	for _, e := range obj.Exclude {
		rs.Exclude = append(rs.Exclude, pair(e))
	}
	if obj.LazyMembers {
		rs.Pairs = append(rs.Pairs, [2]string{"m.room.member", "$LAZY"})
	}
	return nil
}

// ListConfig is one list: ranges over the filtered, ordered rooms.
type ListConfig struct {
	RoomConfig
	Ranges [][]int `json:"ranges"`
	// Range is the MSC's current single range.
	Range   []int    `json:"range"`
	Filters *Filters `json:"filters"`
}

// Filters select the rooms of a list.
type Filters struct {
	IsDM        *bool    `json:"is_dm"`
	Spaces      []string `json:"spaces"`
	IsEncrypted *bool    `json:"is_encrypted"`
	IsInvite    *bool    `json:"is_invite"`
	IsInvited   *bool    `json:"is_invited"` // the MSC's current name

	RoomTypes    []*string `json:"room_types"`
	NotRoomTypes []*string `json:"not_room_types"`
}

// Extensions are the extension requests (MSC3884, 3885, 3959, 3960, 3961).
type Extensions struct {
	ToDevice    *ToDeviceExt `json:"to_device"`
	E2EE        *Ext         `json:"e2ee"`
	AccountData *Ext         `json:"account_data"`
	Receipts    *Ext         `json:"receipts"`
	Typing      *Ext         `json:"typing"`
	// ThreadSubscriptions is MSC4308's extension, under its unstable name
	// (served with thread subscriptions on, ignored otherwise).
	ThreadSubscriptions *ThreadSubsExt `json:"io.element.msc4308.thread_subscriptions"`
}

// ThreadSubsExt is the thread subscriptions extension request.
type ThreadSubsExt struct {
	Enabled *bool `json:"enabled"`
	Limit   *int  `json:"limit"`
}

// Ext is an extension's common request: enabled and its lists/rooms scope.
type Ext struct {
	Enabled *bool    `json:"enabled"`
	Lists   []string `json:"lists"`
	Rooms   []string `json:"rooms"`
}

func (e *Ext) on() bool { return e != nil && e.Enabled != nil && *e.Enabled }

// ToDeviceExt is the to-device extension request.
type ToDeviceExt struct {
	Enabled *bool  `json:"enabled"`
	Limit   int    `json:"limit"`
	Since   string `json:"since"`
}

// Response is a sliding sync response.
type Response struct {
	Pos        string                `json:"pos"`
	Lists      map[string]ListResult `json:"lists"`
	Rooms      map[string]*Room      `json:"rooms"`
	Extensions map[string]any        `json:"extensions"`
}

// ListResult is a list's count of matching rooms.
type ListResult struct {
	Count int `json:"count"`
}

// Hero is a member shown for an unnamed room.
type Hero struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// Room is one room in a response.
type Room struct {
	Name string `json:"name,omitempty"`
	// Avatar is the avatar's URL as a JSON string, or null when it was
	// removed (matrix-rust-sdk then clears it).
	Avatar  json.RawMessage `json:"avatar,omitempty"`
	Heroes  []Hero          `json:"heroes,omitempty"`
	Initial bool            `json:"initial,omitempty"`
	// UnstableExpandedTimeline is what Synapse and the clients of the
	// unstable path (matrix-rust-sdk) read; ExpandedTimeline is /v4's.
	UnstableExpandedTimeline bool     `json:"unstable_expanded_timeline,omitempty"`
	ExpandedTimeline         bool     `json:"expanded_timeline,omitempty"`
	Membership               string   `json:"membership,omitempty"` // /v4 only
	Lists                    []string `json:"lists,omitempty"`      // /v4 only
	// IsDM is set when the room is a DM, and false when it stopped being one.
	IsDM              *bool                 `json:"is_dm,omitempty"`
	RequiredState     []rooms.ClientEvent   `json:"required_state,omitempty"`
	Timeline          []rooms.ClientEvent   `json:"timeline,omitempty"`
	PrevBatch         string                `json:"prev_batch,omitempty"`
	Limited           bool                  `json:"limited,omitempty"`
	NumLive           *int                  `json:"num_live,omitempty"`
	BumpStamp         int64                 `json:"bump_stamp,omitempty"`
	JoinedCount       *int                  `json:"joined_count,omitempty"`
	InvitedCount      *int                  `json:"invited_count,omitempty"`
	NotificationCount int                   `json:"notification_count"`
	HighlightCount    int                   `json:"highlight_count"`
	InviteState       []rooms.StrippedState `json:"invite_state,omitempty"`
	StrippedState     []rooms.StrippedState `json:"stripped_state,omitempty"` // /v4's invite_state
}

type rawEvent struct {
	Type    string          `json:"type"`
	Sender  string          `json:"sender,omitempty"`
	Content json.RawMessage `json:"content"`
}
