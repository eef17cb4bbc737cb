// Package slidingsync implements simplified sliding sync (MSC4186): a
// connection-oriented sync where the client asks for windows of its room
// list, ordered by recent activity, and the server sends only those rooms.
package slidingsync

import (
	"encoding/json"

	"github.com/axon-matrix/axon/internal/rooms"
)

// Request is the body of a sliding sync request.
type Request struct {
	ConnID            string                `json:"conn_id"`
	Lists             map[string]ListConfig `json:"lists"`
	RoomSubscriptions map[string]RoomConfig `json:"room_subscriptions"`
	Extensions        Extensions            `json:"extensions"`
}

// RoomConfig says what to send for a room.
type RoomConfig struct {
	TimelineLimit int        `json:"timeline_limit"`
	RequiredState [][]string `json:"required_state"`
}

// ListConfig is one list: ranges over the filtered, ordered rooms.
type ListConfig struct {
	RoomConfig
	Ranges  [][]int  `json:"ranges"`
	Filters *Filters `json:"filters"`
}

// Filters select the rooms of a list.
type Filters struct {
	IsDM         *bool     `json:"is_dm"`
	Spaces       []string  `json:"spaces"`
	IsEncrypted  *bool     `json:"is_encrypted"`
	IsInvite     *bool     `json:"is_invite"`
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
	Name              string                `json:"name,omitempty"`
	Avatar            string                `json:"avatar,omitempty"`
	Heroes            []Hero                `json:"heroes,omitempty"`
	Initial           bool                  `json:"initial,omitempty"`
	ExpandedTimeline  bool                  `json:"expanded_timeline,omitempty"`
	IsDM              bool                  `json:"is_dm,omitempty"`
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
}

type rawEvent struct {
	Type    string          `json:"type"`
	Sender  string          `json:"sender,omitempty"`
	Content json.RawMessage `json:"content"`
}
