package sync

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/axon-matrix/axon/internal/rooms"
)

// maxUnreadScan bounds the events examined for counts; badges past this
// are shown as this number, which no client distinguishes from more.
const maxUnreadScan = 1000

// unreadCounts computes the notification and highlight counts of a room for
// a user: events from others after the user's latest read receipt that the
// default push rules make notify. (Per-user push rules replace this rule
// set when the push rule engine lands.)
func (s *Service) unreadCounts(ctx context.Context, roomID, user string, threaded bool) (Counts, map[string]Counts, error) {
	readPos, err := s.db.UserReadPosition(ctx, roomID, user)
	if err != nil {
		return Counts{}, nil, err
	}
	// Without a receipt, counting starts at the user's join: history from
	// before it is not "unread".
	if me, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", user); err == nil && me != nil && me.StreamPos > readPos {
		readPos = me.StreamPos
	}
	var threadRead map[string]int64
	if threaded {
		if threadRead, err = s.db.UserThreadReadPositions(ctx, roomID, user); err != nil {
			return Counts{}, nil, err
		}
	}
	rows, err := s.db.UnreadEvents(ctx, roomID, user, readPos, maxUnreadScan)
	if err != nil || len(rows) == 0 {
		return Counts{}, nil, err
	}
	evs, err := s.rooms.Wrap(ctx, rows)
	if err != nil {
		return Counts{}, nil, err
	}
	var main Counts
	threads := map[string]Counts{}
	var names []string
	for _, ev := range evs {
		notify, highlight := s.evaluate(ctx, ev, user, &names)
		if !notify {
			continue
		}
		c := &main
		var tc Counts
		if threaded && ev.ThreadRoot != "" {
			if ev.StreamPos <= threadRead[ev.ThreadRoot] {
				continue
			}
			tc = threads[ev.ThreadRoot]
			c = &tc
		}
		c.NotificationCount++
		if highlight {
			c.HighlightCount++
		}
		if threaded && ev.ThreadRoot != "" {
			threads[ev.ThreadRoot] = tc
		}
	}
	return main, threads, nil
}

type msgContent struct {
	MsgType  string `json:"msgtype"`
	Body     string `json:"body"`
	Mentions *struct {
		UserIDs []string `json:"user_ids"`
		Room    bool     `json:"room"`
	} `json:"m.mentions"`
	RelatesTo *struct {
		RelType string `json:"rel_type"`
	} `json:"m.relates_to"`
	Membership string `json:"membership"`
}

// evaluate applies the default push rules that decide counts.
func (s *Service) evaluate(ctx context.Context, ev *rooms.Event, user string, names *[]string) (notify, highlight bool) {
	var c msgContent
	json.Unmarshal(ev.PDU.Content, &c)
	if c.RelatesTo != nil && c.RelatesTo.RelType == "m.replace" {
		return false, false // .m.rule.suppress_edits
	}
	switch ev.Type {
	case "m.room.member":
		// .m.rule.invite_for_me notifies; other membership changes do not.
		return c.Membership == "invite" && ev.StateKey != nil && *ev.StateKey == user, false
	case "m.room.message":
		if c.MsgType == "m.notice" {
			return false, false // .m.rule.suppress_notices
		}
	case "m.room.encrypted", "m.sticker", "m.call.invite", "m.poll.start", "org.matrix.msc3381.poll.start":
		return true, false
	}
	if c.Mentions != nil {
		for _, u := range c.Mentions.UserIDs {
			if u == user {
				return true, true
			}
		}
		if c.Mentions.Room && s.mayNotifyRoom(ctx, ev) {
			return true, true
		}
		return true, false
	}
	if *names == nil {
		*names = s.mentionNames(ctx, ev.RoomID, user)
	}
	for _, n := range *names {
		if containsWord(c.Body, n) {
			return true, true
		}
	}
	if strings.Contains(c.Body, "@room") && s.mayNotifyRoom(ctx, ev) {
		return true, true
	}
	return true, false
}

func (s *Service) mayNotifyRoom(ctx context.Context, ev *rooms.Event) bool {
	pl, err := s.rooms.PowerLevels(ctx, ev.RoomID)
	if err != nil {
		return false
	}
	return pl.UserLevel(ev.Sender) >= pl.NotificationLevel("room")
}

// mentionNames are the strings that highlight for a user: their display
// name in the room and their full user ID (legacy body mentions).
func (s *Service) mentionNames(ctx context.Context, roomID, user string) []string {
	names := []string{user}
	if ev, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", user); err == nil && ev != nil {
		var c struct {
			DisplayName string `json:"displayname"`
		}
		json.Unmarshal(ev.PDU.Content, &c)
		if c.DisplayName != "" {
			names = append(names, c.DisplayName)
		}
	}
	return names
}

// containsWord matches name in body at word boundaries, case-insensitively.
func containsWord(body, name string) bool {
	if name == "" || body == "" {
		return false
	}
	idx := strings.Index(strings.ToLower(body), strings.ToLower(name))
	for idx >= 0 {
		before := idx == 0 || !isWordChar(body[idx-1])
		end := idx + len(name)
		after := end >= len(body) || !isWordChar(body[end])
		if before && after {
			return true
		}
		next := strings.Index(strings.ToLower(body[idx+1:]), strings.ToLower(name))
		if next < 0 {
			break
		}
		idx += 1 + next
	}
	return false
}

func isWordChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
