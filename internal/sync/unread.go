package sync

import (
	"context"

	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/rooms"
)

// maxUnreadScan bounds the events examined for counts; badges past this
// are shown as this number, which no client distinguishes from more.
const maxUnreadScan = 1000

// countsEntry caches a user's counts in a room as of a read position and a
// stream position, so a sync after one new message evaluates one event
// rather than every unread one.
type countsEntry struct {
	readPos     int64
	threadStamp int64 // newest thread receipt: a new one invalidates the entry
	upto        int64
	main        Counts
	threads     map[string]Counts
	threadRead  map[string]int64
}

type countsKey struct {
	room, user string
	threaded   bool
}

// maxCountsEntries bounds the cache; it is rebuilt from storage on a miss.
const maxCountsEntries = 100000

// invalidateCounts drops a room's cached counts (after a redaction, which
// can lower them).
func (s *Service) invalidateCounts(roomID string) {
	s.counts.ForgetFunc(func(k countsKey) bool { return k.room == roomID })
}

// unreadCounts computes the notification and highlight counts of a room for
// a user up to stream position upto: events from others that the user's
// push rules make notify, after the user's join and newest unthreaded read
// receipt, and after their threaded receipt for the event's own timeline
// (the main one or a thread). Thread events count in their thread when
// threaded, else in the room's counts.
func (s *Service) unreadCounts(ctx context.Context, roomID, user string, threaded bool, upto int64) (Counts, map[string]Counts, error) {
	readPos, threadStamp, err := s.db.UserReadMarks(ctx, roomID, user)
	if err != nil {
		return Counts{}, nil, err
	}
	// Without a receipt, counting starts at the user's join: history from
	// before it is not "unread".
	if me, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.member", user); err == nil && me != nil && me.StreamPos > readPos {
		readPos = me.StreamPos
	}
	key := countsKey{roomID, user, threaded}
	// An invalidation while this runs (a redaction) keeps what it computes
	// out of the cache.
	cached, ok, since := s.counts.Lookup(key)
	var e countsEntry
	from := readPos
	if ok && cached.readPos == readPos && cached.threadStamp == threadStamp && cached.upto <= upto {
		e = cached
		e.threads = make(map[string]Counts, len(cached.threads))
		for k, v := range cached.threads {
			e.threads[k] = v
		}
		from = cached.upto
	} else {
		e = countsEntry{readPos: readPos, threadStamp: threadStamp, threads: map[string]Counts{}}
		if threadStamp > 0 {
			if e.threadRead, err = s.db.UserThreadReadPositions(ctx, roomID, user); err != nil {
				return Counts{}, nil, err
			}
		}
	}
	if from < upto {
		rows, err := s.db.NotifiableEvents(ctx, roomID, user, from, upto, maxUnreadScan)
		if err != nil {
			return Counts{}, nil, err
		}
		evs, err := s.rooms.Wrap(ctx, rows)
		if err != nil {
			return Counts{}, nil, err
		}
		for _, ev := range evs {
			notify, highlight := s.evaluate(ctx, ev, user)
			if !notify {
				continue
			}
			// Threaded receipts read their own timeline whether or not
			// the client asked for per-thread counts (the unthreaded
			// receipt, readPos, was the scan's start).
			timeline := ev.ThreadRoot
			if timeline == "" {
				timeline = "main"
			}
			if ev.StreamPos <= e.threadRead[timeline] {
				continue
			}
			c := &e.main
			var tc Counts
			inThread := threaded && ev.ThreadRoot != ""
			if inThread {
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
	} else if e.upto < from {
		// Nothing to scan: the entry is complete up to the read position
		// (left at 0 it would make the next call rescan the whole room).
		e.upto = from
	}
	s.counts.PutUnlessChanged(key, e, since)
	return e.main, e.threads, nil
}

// evaluate applies the user's push rules: notify and highlight decide the
// counts.
func (s *Service) evaluate(ctx context.Context, ev *rooms.Event, user string) (notify, highlight bool) {
	o, err := s.push.Evaluate(ctx, ev, user)
	if err != nil {
		s.log.Error("evaluate push rules", "user", user, "event", ev.EventID, "err", err)
		return false, false
	}
	return o.Notify, o.Highlight
}

// DefaultPushRules is the m.push_rules content of a user who never changed
// a rule, which initial syncs show.
func (s *Service) DefaultPushRules(user string) map[string]any {
	return s.push.DefaultContent(user)
}

// SetPushEvaluator makes counts follow each user's own push rules (the
// default is the server-default rules for everyone).
func (s *Service) SetPushEvaluator(e *push.Evaluator) {
	s.push = e
}

// invalidateUserCounts drops a user's cached counts (their rules or their
// ignore list changed).
func (s *Service) invalidateUserCounts(user string) {
	s.counts.ForgetFunc(func(k countsKey) bool { return k.user == user })
}

// UnreadTotal is the user's notification count over all joined rooms, as
// the badge a push gateway shows: the sum of the per-room and per-thread
// counts /sync reports, as of now.
func (s *Service) UnreadTotal(ctx context.Context, user string) (int, error) {
	roomIDs, err := s.db.JoinedRooms(ctx, user)
	if err != nil {
		return 0, err
	}
	pos := s.db.Position()
	total := 0
	for _, roomID := range roomIDs {
		main, threads, err := s.unreadCounts(ctx, roomID, user, true, pos)
		if err != nil {
			return 0, err
		}
		total += main.NotificationCount
		for _, c := range threads {
			total += c.NotificationCount
		}
	}
	return total, nil
}
