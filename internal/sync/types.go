package sync

import (
	"encoding/json"

	"github.com/axon-matrix/axon/internal/rooms"
)

// Response is the /sync response body.
type Response struct {
	NextBatch              string         `json:"next_batch"`
	Rooms                  RoomsSection   `json:"rooms"`
	Presence               EventList      `json:"presence"`
	AccountData            EventList      `json:"account_data"`
	ToDevice               EventList      `json:"to_device"`
	DeviceLists            DeviceLists    `json:"device_lists"`
	DeviceOneTimeKeysCount map[string]int `json:"device_one_time_keys_count"`
	UnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
}

// RoomsSection groups rooms by the user's membership.
type RoomsSection struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite"`
	Leave  map[string]*LeftRoom    `json:"leave"`
	Knock  map[string]*KnockedRoom `json:"knock"`
}

// EventList is {"events": [...]}.
type EventList struct {
	Events []any `json:"events"`
}

// DeviceLists lists users whose devices changed.
type DeviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

// Timeline is a room's timeline section.
type Timeline struct {
	Events    []rooms.ClientEvent `json:"events"`
	Limited   bool                `json:"limited"`
	PrevBatch string              `json:"prev_batch,omitempty"`
}

// StateSection is a list of state events.
type StateSection struct {
	Events []rooms.ClientEvent `json:"events"`
}

// Summary is the room summary.
type Summary struct {
	Heroes       []string `json:"m.heroes,omitempty"`
	JoinedCount  *int     `json:"m.joined_member_count,omitempty"`
	InvitedCount *int     `json:"m.invited_member_count,omitempty"`
}

// Counts are notification counts.
type Counts struct {
	NotificationCount int `json:"notification_count"`
	HighlightCount    int `json:"highlight_count"`
}

// JoinedRoom is a room the user is joined to. Exactly one of State and
// StateAfter is set: StateAfter when the client asked for use_state_after
// (MSC4222, spec v1.16).
type JoinedRoom struct {
	Summary                   *Summary          `json:"summary,omitempty"`
	State                     *StateSection     `json:"state,omitempty"`
	StateAfter                *StateSection     `json:"state_after,omitempty"`
	Timeline                  Timeline          `json:"timeline"`
	Ephemeral                 EventList         `json:"ephemeral"`
	AccountData               EventList         `json:"account_data"`
	UnreadNotifications       Counts            `json:"unread_notifications"`
	UnreadThreadNotifications map[string]Counts `json:"unread_thread_notifications,omitempty"`
}

// InvitedRoom is a room the user is invited to.
type InvitedRoom struct {
	InviteState struct {
		Events []rooms.StrippedState `json:"events"`
	} `json:"invite_state"`
}

// KnockedRoom is a room the user knocked on.
type KnockedRoom struct {
	KnockState struct {
		Events []rooms.StrippedState `json:"events"`
	} `json:"knock_state"`
}

// LeftRoom is a room the user left or was removed from; State and
// StateAfter as in JoinedRoom.
type LeftRoom struct {
	State       *StateSection `json:"state,omitempty"`
	StateAfter  *StateSection `json:"state_after,omitempty"`
	Timeline    Timeline      `json:"timeline"`
	AccountData EventList     `json:"account_data"`
}

type rawEvent struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	Sender  string          `json:"sender,omitempty"`
	RoomID  string          `json:"room_id,omitempty"`
}
