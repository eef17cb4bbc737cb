package directory

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/axon-matrix/axon/internal/storage"
)

// PublicRoom is one entry of the published room directory.
type PublicRoom struct {
	RoomID           string `json:"room_id"`
	Name             string `json:"name,omitempty"`
	Topic            string `json:"topic,omitempty"`
	CanonicalAlias   string `json:"canonical_alias,omitempty"`
	NumJoinedMembers int    `json:"num_joined_members"`
	WorldReadable    bool   `json:"world_readable"`
	GuestCanJoin     bool   `json:"guest_can_join"`
	JoinRule         string `json:"join_rule,omitempty"`
	AvatarURL        string `json:"avatar_url,omitempty"`
	RoomType         string `json:"room_type,omitempty"`

	altAliases []string
}

// summaryTypes are the state events a directory entry is built from.
var summaryTypes = []string{
	"m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
	"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access",
}

// summarise builds a room's directory entry from its current state.
func (s *Service) summarise(ctx context.Context, roomID string) (*PublicRoom, error) {
	state, err := s.rooms.CurrentState(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(summaryTypes))
	for _, t := range summaryTypes {
		if id, ok := state[storage.StateKey{Type: t}]; ok {
			ids = append(ids, id)
		}
	}
	evs, err := s.rooms.Events(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("room summary: %w", err)
	}
	pr := &PublicRoom{RoomID: roomID, JoinRule: "invite"}
	for _, ev := range evs {
		var c struct {
			Type              string   `json:"type"`
			Name              string   `json:"name"`
			Topic             string   `json:"topic"`
			Alias             string   `json:"alias"`
			AltAliases        []string `json:"alt_aliases"`
			URL               string   `json:"url"`
			JoinRule          string   `json:"join_rule"`
			HistoryVisibility string   `json:"history_visibility"`
			GuestAccess       string   `json:"guest_access"`
			MTopic            struct {
				Content []struct {
					MimeType string `json:"mimetype"`
					Body     string `json:"body"`
				} `json:"m.text"`
			} `json:"m.topic"`
		}
		// Content was validated when the event was accepted; a field of an
		// unexpected type just leaves that part of the entry empty.
		_ = json.Unmarshal(ev.PDU.Content, &c)
		switch ev.Type {
		case "m.room.create":
			pr.RoomType = c.Type
		case "m.room.name":
			pr.Name = c.Name
		case "m.room.topic":
			pr.Topic = c.Topic
			for _, t := range c.MTopic.Content {
				if t.MimeType == "" || t.MimeType == "text/plain" {
					pr.Topic = t.Body
					break
				}
			}
		case "m.room.canonical_alias":
			pr.CanonicalAlias = c.Alias
			pr.altAliases = c.AltAliases
		case "m.room.avatar":
			pr.AvatarURL = c.URL
		case "m.room.join_rules":
			pr.JoinRule = c.JoinRule
		case "m.room.history_visibility":
			pr.WorldReadable = c.HistoryVisibility == "world_readable"
		case "m.room.guest_access":
			pr.GuestCanJoin = c.GuestAccess == "can_join"
		}
	}
	n, err := s.db.JoinedMemberCount(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("room summary: %w", err)
	}
	pr.NumJoinedMembers = n
	return pr, nil
}

// peekable reports whether anyone may find and join (or read) the room:
// the rooms a directory may show and whose members are discoverable.
func (pr *PublicRoom) peekable() bool {
	switch pr.JoinRule {
	case "public", "knock", "knock_restricted":
		return true
	}
	return pr.WorldReadable
}
