package push

import (
	"context"
	"strconv"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
)

// NotificationItem is one entry of GET /notifications.
type NotificationItem struct {
	Actions    []any             `json:"actions"`
	Event      rooms.ClientEvent `json:"event"`
	ProfileTag string            `json:"profile_tag,omitempty"`
	Read       bool              `json:"read"`
	RoomID     string            `json:"room_id"`
	TS         int64             `json:"ts"`
}

// NotificationsPage is the response of GET /notifications.
type NotificationsPage struct {
	NextToken     string             `json:"next_token,omitempty"`
	Notifications []NotificationItem `json:"notifications"`
}

// maxNotificationScan bounds the events one request evaluates; a page that
// found fewer notifications than asked still returns a next_token.
const maxNotificationScan = 2000

// Notifications lists the events that notified the user, newest first.
//
// They are computed on demand from the events of the user's rooms rather
// than stored per recipient: storing a row per member for every message
// costs a write per member on every send in a big room, for a list clients
// read rarely, and rows would go stale when rules change. The scan is
// bounded per request; from is the stream position the previous page
// stopped at.
func (s *Service) Notifications(ctx context.Context, user, from string, limit int, onlyHighlight bool) (*NotificationsPage, error) {
	var before int64
	if from != "" {
		p, err := strconv.ParseInt(from, 10, 64)
		if err != nil || p <= 0 {
			return nil, mxerr.InvalidParam("Invalid from token")
		}
		before = p
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	page := &NotificationsPage{Notifications: []NotificationItem{}}
	type roomMarks struct {
		readPos    int64
		threadRead map[string]int64 // threaded receipts, "main" included
	}
	marks := map[string]roomMarks{}
	scanned := 0
	for scanned < maxNotificationScan {
		rows, err := s.db.NotificationCandidates(ctx, user, before, 200)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			return page, nil
		}
		evs, err := s.rooms.Wrap(ctx, rows)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			scanned++
			before = ev.StreamPos
			m, ok := marks[ev.RoomID]
			if !ok {
				var stamp int64
				m.readPos, stamp, _ = s.db.UserReadMarks(ctx, ev.RoomID, user)
				if stamp > 0 {
					m.threadRead, _ = s.db.UserThreadReadPositions(ctx, ev.RoomID, user)
				}
				marks[ev.RoomID] = m
			}
			// What notified the user is what arrived while they were
			// joined: their membership in the state the event was sent in,
			// not the position of their current member event, which a
			// display-name change moves.
			isInviteForMe := ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == user
			if !isInviteForMe {
				mb, err := s.rooms.MembershipBefore(ctx, ev, user)
				if err != nil {
					return nil, err
				}
				if mb != "join" {
					continue // before they joined, or while they had left
				}
			}
			o, err := s.eval.Evaluate(ctx, ev, user)
			if err != nil {
				return nil, err
			}
			if !o.Notify || (onlyHighlight && !o.Highlight) {
				continue
			}
			page.Notifications = append(page.Notifications, NotificationItem{
				Actions: o.Actions, Event: s.rooms.Format(ctx, ev, rooms.Viewer{UserID: user}, rooms.FormatOpts{NoAggregations: true}),
				Read: ev.StreamPos <= m.readPos || ev.StreamPos <= m.threadRead[timelineOf(ev)], RoomID: ev.RoomID, TS: ev.OriginTS,
			})
			if len(page.Notifications) == limit {
				page.NextToken = strconv.FormatInt(ev.StreamPos, 10)
				return page, nil
			}
		}
	}
	page.NextToken = strconv.FormatInt(before, 10)
	return page, nil
}

// timelineOf is the thread ID a threaded receipt names for an event's
// timeline: its thread root, or "main".
func timelineOf(ev *rooms.Event) string {
	if ev.ThreadRoot != "" {
		return ev.ThreadRoot
	}
	return "main"
}
