package rooms

import (
	"context"
	"encoding/json"
	"time"

	"maunium.net/go/mautrix/federation/pdu"

	"github.com/axon-matrix/axon/internal/storage"
)

// ClientEvent is the client-server API form of an event.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	Unsigned       map[string]any  `json:"unsigned,omitempty"`
}

// Viewer is who an event is formatted for.
type Viewer struct {
	UserID   string
	DeviceID string
}

// FormatOpts adjusts formatting.
type FormatOpts struct {
	// OmitRoomID drops room_id, as /sync does inside a room section.
	OmitRoomID bool
	// NoAggregations skips thread summaries (used on hot paths).
	NoAggregations bool
}

// Format renders an event for a client.
func (s *Service) Format(ctx context.Context, ev *Event, v Viewer, opts FormatOpts) ClientEvent {
	ce := ClientEvent{
		Content:        json.RawMessage(ev.PDU.Content),
		EventID:        ev.EventID,
		OriginServerTS: ev.OriginTS,
		Sender:         ev.Sender,
		StateKey:       ev.StateKey,
		Type:           ev.Type,
		Unsigned:       map[string]any{},
	}
	if !opts.OmitRoomID {
		ce.RoomID = ev.RoomID
	}
	// Only a real redaction (no state key) redacts: a state event of type
	// m.room.redaction with content.redacts is ordinary state, and a
	// top-level redacts would make clients hide its "target".
	switch {
	case ev.StateKey != nil:
	case ev.PDU.Redacts != nil:
		ce.Redacts = string(*ev.PDU.Redacts)
	case ev.Type == "m.room.redaction":
		var c struct {
			Redacts string `json:"redacts"`
		}
		json.Unmarshal(ev.PDU.Content, &c)
		ce.Redacts = c.Redacts
	}
	ce.Unsigned["age"] = time.Since(time.UnixMilli(ev.OriginTS)).Milliseconds()
	if ev.TxnID != "" && v.UserID == ev.Sender && v.DeviceID == ev.TxnDevice {
		ce.Unsigned["transaction_id"] = ev.TxnID
	}
	if v.UserID != "" {
		ce.Unsigned["membership"] = s.membershipAfter(ctx, ev, v.UserID)
	}
	if ev.RedactedBy != "" {
		ce.Content = json.RawMessage(pdu.RedactContent(ev.Type, ev.PDU.Content, ev.Version))
		if red, err := s.Event(ctx, ev.RedactedBy); err == nil {
			rc := s.Format(ctx, red, v, FormatOpts{OmitRoomID: opts.OmitRoomID, NoAggregations: true})
			ce.Unsigned["redacted_because"] = rc
		}
	}
	if ev.Replaces != "" {
		ce.Unsigned["replaces_state"] = ev.Replaces
		if prev, err := s.Event(ctx, ev.Replaces); err == nil {
			content := prev.PDU.Content
			if prev.RedactedBy != "" {
				content = pdu.RedactContent(prev.Type, content, prev.Version)
			}
			ce.Unsigned["prev_content"] = json.RawMessage(content)
			ce.Unsigned["prev_sender"] = prev.Sender
		}
	}
	if !opts.NoAggregations && ev.RedactedBy == "" {
		if rel := s.threadSummary(ctx, ev, v); rel != nil {
			ce.Unsigned["m.relations"] = map[string]any{"m.thread": rel}
		}
	}
	return ce
}

// membershipAfter is the viewer's membership in the room's state after ev,
// "leave" when there is none (MSC4115's unsigned.membership, which tells a
// client whether it could decrypt the event: a member when it was sent).
//
// Only the viewer's own member event changes it, so every other event is
// judged by the state before it: the group history visibility has just
// read for the same event, not the state after each state event (which
// would read a state group per state event of a timeline).
func (s *Service) membershipAfter(ctx context.Context, ev *Event, user string) string {
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == user {
		if m := membershipOf(ev); m != "" {
			return m
		}
		return "leave"
	}
	state, err := s.StateAt(ctx, ev.StateBefore)
	if err != nil {
		return "leave"
	}
	if m := s.membershipIn(ctx, state, user); m != "" {
		return m
	}
	return "leave"
}

func (s *Service) threadSummary(ctx context.Context, ev *Event, v Viewer) map[string]any {
	if !s.IsThreadRoot(ctx, ev.EventID) {
		return nil
	}
	// Replies of users the viewer ignores neither count nor show as the
	// latest; a thread of only theirs has no summary.
	ignored, err := s.IgnoredUsers(ctx, v.UserID)
	if err != nil {
		return nil
	}
	var exclude []string
	for u := range ignored {
		exclude = append(exclude, u)
	}
	count, latest, err := s.visibleThread(ctx, ev, v.UserID, exclude)
	if err != nil || latest == nil {
		return nil
	}
	participated, _ := s.db.UserParticipatedInThread(ctx, ev.EventID, v.UserID)
	return map[string]any{
		"count":                     count,
		"latest_event":              s.Format(ctx, latest, v, FormatOpts{NoAggregations: true}),
		"current_user_participated": participated,
	}
}

// visibleThread counts the replies of a thread root that user may see
// and returns the latest of them: a user who left sees neither the count
// nor the latest reply move on after their departure. Those who have been
// joined since before the root was sent (the usual case) see every reply,
// and are counted by storage alone.
func (s *Service) visibleThread(ctx context.Context, root *Event, user string, exclude []string) (int64, *Event, error) {
	since, err := s.JoinedSince(ctx, root.RoomID, user)
	if err != nil {
		return 0, nil, err
	}
	if since != 0 && since < root.StreamPos {
		count, latest, err := s.db.ThreadSummary(ctx, root.EventID, s.db.Position(), exclude)
		if err != nil || latest == nil {
			return 0, nil, err
		}
		evs, err := s.Wrap(ctx, []*storage.Event{latest})
		if err != nil {
			return 0, nil, err
		}
		return count, evs[0], nil
	}
	r, err := s.ReachOf(ctx, root.RoomID, user)
	if err != nil {
		return 0, nil, err
	}
	upto := s.db.Position()
	if !r.Live && r.Departure != nil {
		upto = r.Departure.StreamPos
	}
	rows, err := s.db.ThreadReplies(ctx, root.EventID, upto, exclude)
	if err != nil {
		return 0, nil, err
	}
	evs, err := s.Wrap(ctx, rows)
	if err != nil {
		return 0, nil, err
	}
	if evs, err = s.FilterVisible(ctx, user, evs); err != nil || len(evs) == 0 {
		return 0, nil, err
	}
	return int64(len(evs)), evs[len(evs)-1], nil
}

// FormatAll formats a list of events.
func (s *Service) FormatAll(ctx context.Context, evs []*Event, v Viewer, opts FormatOpts) []ClientEvent {
	out := make([]ClientEvent, 0, len(evs))
	for _, ev := range evs {
		out = append(out, s.Format(ctx, ev, v, opts))
	}
	return out
}

// StrippedState is the stripped form of state events sent with invites.
type StrippedState struct {
	Content  json.RawMessage `json:"content"`
	Sender   string          `json:"sender"`
	StateKey string          `json:"state_key"`
	Type     string          `json:"type"`
}

// InviteState returns the stripped state a user sees for an invite or knock.
func (s *Service) InviteState(ctx context.Context, roomID string, group int64, target string) []StrippedState {
	keep := map[string]bool{"m.room.create": true, "m.room.join_rules": true, "m.room.name": true, "m.room.avatar": true,
		"m.room.canonical_alias": true, "m.room.encryption": true, "m.room.topic": true}
	evs, err := s.StateEventsAt(ctx, group, func(k storage.StateKey) bool {
		return keep[k.Type] || (k.Type == "m.room.member" && k.StateKey == target)
	})
	if err != nil {
		return nil
	}
	out := make([]StrippedState, 0, len(evs))
	for _, ev := range evs {
		out = append(out, StrippedState{Content: json.RawMessage(ev.PDU.Content), Sender: ev.Sender, StateKey: *ev.StateKey, Type: ev.Type})
	}
	return out
}
