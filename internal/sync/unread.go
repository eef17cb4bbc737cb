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

// countsEntry caches a user's counts in a room as of a read position and a
// stream position, so a sync after one new message evaluates one event
// rather than every unread one.
type countsEntry struct {
	readPos    int64
	upto       int64
	main       Counts
	threads    map[string]Counts
	threadRead map[string]int64
}

type countsKey struct{ room, user string }

// maxCountsEntries bounds the cache; it is rebuilt from storage on a miss.
const maxCountsEntries = 100000

// invalidateCounts drops a room's cached counts (after a redaction, which
// can lower them).
func (s *Service) invalidateCounts(roomID string) {
	s.countsMu.Lock()
	defer s.countsMu.Unlock()
	for k := range s.counts {
		if k.room == roomID {
			delete(s.counts, k)
		}
	}
}

// unreadCounts computes the notification and highlight counts of a room for
// a user up to stream position upto: events from others after the user's
// latest read receipt (or join) that the default push rules make notify.
// (Per-user push rules replace this rule set when the push rule engine lands.)
func (s *Service) unreadCounts(ctx context.Context, roomID, user string, threaded bool, upto int64) (Counts, map[string]Counts, error) {
	readPos, err := s.db.UserReadPosition(ctx, roomID, user)
	if err != nil {
		return Counts{}, nil, err
	}
	// Without a receipt, counting starts at the user's join: history from
	// before it is not "unread".
	if me, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", user); err == nil && me != nil && me.StreamPos > readPos {
		readPos = me.StreamPos
	}
	key := countsKey{roomID, user}
	s.countsMu.Lock()
	cached, ok := s.counts[key]
	s.countsMu.Unlock()
	var e countsEntry
	from := readPos
	if ok && cached.readPos == readPos && cached.upto <= upto && (cached.threadRead != nil) == threaded {
		e = cached
		e.threads = make(map[string]Counts, len(cached.threads))
		for k, v := range cached.threads {
			e.threads[k] = v
		}
		from = cached.upto
	} else {
		e = countsEntry{readPos: readPos, threads: map[string]Counts{}}
		if threaded {
			if e.threadRead, err = s.db.UserThreadReadPositions(ctx, roomID, user); err != nil {
				return Counts{}, nil, err
			}
		}
	}
	if from < upto {
		rows, err := s.db.UnreadEvents(ctx, roomID, user, from, upto, maxUnreadScan)
		if err != nil {
			return Counts{}, nil, err
		}
		evs, err := s.rooms.Wrap(ctx, rows)
		if err != nil {
			return Counts{}, nil, err
		}
		var names []string
		for _, ev := range evs {
			notify, highlight := s.evaluate(ctx, ev, user, &names)
			if !notify {
				continue
			}
			c := &e.main
			var tc Counts
			inThread := threaded && ev.ThreadRoot != ""
			if inThread {
				if ev.StreamPos <= e.threadRead[ev.ThreadRoot] {
					continue
				}
				tc = e.threads[ev.ThreadRoot]
				c = &tc
			}
			c.NotificationCount++
			if highlight {
				c.HighlightCount++
			}
			if inThread {
				e.threads[ev.ThreadRoot] = tc
			}
		}
		e.upto = upto
	}
	s.countsMu.Lock()
	if len(s.counts) >= maxCountsEntries {
		s.counts = map[countsKey]countsEntry{}
	}
	s.counts[key] = e
	s.countsMu.Unlock()
	return e.main, e.threads, nil
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
