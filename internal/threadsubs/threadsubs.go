// Package threadsubs keeps users' thread subscriptions (MSC4306): which
// threads they follow, whether a client subscribed them automatically (on
// a mention) or they chose to, and when they last unsubscribed, so that a
// device that comes back late cannot subscribe them again because of a
// mention they had already seen.
package threadsubs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/mxid"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service reads and changes thread subscriptions.
type Service struct {
	db    *storage.DB
	rooms *rooms.Service
}

// New creates the service.
func New(db *storage.DB, rs *rooms.Service) *Service {
	return &Service{db: db, rooms: rs}
}

// Errors of thread subscriptions (MSC4306), under the MSC's unstable names.
const (
	ErrCodeNotInThread               = "IO.ELEMENT.MSC4306.M_NOT_IN_THREAD"
	ErrCodeConflictingUnsubscription = "IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION"
)

// threadRoot checks the IDs and that the user may see the thread's root
// event: a thread the user cannot see does not exist for them.
func (s *Service) threadRoot(ctx context.Context, roomID, rootID, user string) error {
	if !mxid.RoomID(roomID) {
		return mxerr.InvalidParam("%q is not a room ID", roomID)
	}
	if !mxid.EventID(rootID) {
		return mxerr.InvalidParam("%q is not an event ID", rootID)
	}
	_, err := s.rooms.VisibleEvent(ctx, roomID, rootID, user)
	return err
}

// ThreadSubscription returns whether the user's subscription to a thread
// was automatic; M_NOT_FOUND when they are not subscribed.
func (s *Service) ThreadSubscription(ctx context.Context, roomID, rootID, user string) (automatic bool, err error) {
	if err := s.threadRoot(ctx, roomID, rootID, user); err != nil {
		return false, err
	}
	sub, err := s.db.GetThreadSubscription(ctx, user, roomID, rootID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, mxerr.NotFound("Not subscribed to this thread")
	}
	if err != nil {
		return false, fmt.Errorf("thread subscription: %w", err)
	}
	return sub.Automatic, nil
}

// SubscribeThread subscribes the user to a thread: manually when cause is
// nil, else automatically because of the cause event, which must be in the
// thread and newer than the user's last unsubscription from it.
func (s *Service) SubscribeThread(ctx context.Context, roomID, rootID, user string, cause *string) error {
	if err := s.threadRoot(ctx, roomID, rootID, user); err != nil {
		return err
	}
	var causePos int64
	if cause != nil {
		if !mxid.EventID(*cause) {
			return mxerr.InvalidParam("automatic: %q is not an event ID", *cause)
		}
		ev, err := s.rooms.VisibleEvent(ctx, roomID, *cause, user)
		if _, ok := mxerr.As(err); ok {
			return mxerr.New(ErrCodeNotInThread, "The cause event is not in this thread")
		}
		if err != nil {
			return err
		}
		if ev.ThreadRoot != rootID {
			return mxerr.New(ErrCodeNotInThread, "The cause event is not in this thread")
		}
		causePos = ev.StreamPos
	}
	// A change is announced on the change feed, which wakes the user's
	// syncs.
	_, err := s.db.SubscribeThread(ctx, user, roomID, rootID, cause != nil, causePos)
	if errors.Is(err, storage.ErrConflictingUnsubscription) {
		return mxerr.New(ErrCodeConflictingUnsubscription, "Unsubscribed from this thread after the cause event").WithStatus(http.StatusConflict)
	}
	if err != nil {
		return fmt.Errorf("subscribe to thread: %w", err)
	}
	return nil
}

// UnsubscribeThread removes the user's subscription to a thread (none is
// fine). Automatic subscriptions caused by events the server has now are
// refused from then on.
func (s *Service) UnsubscribeThread(ctx context.Context, roomID, rootID, user string) error {
	if err := s.threadRoot(ctx, roomID, rootID, user); err != nil {
		return err
	}
	// A removal is announced on the change feed, which wakes the user's
	// syncs.
	if _, err := s.db.UnsubscribeThread(ctx, user, roomID, rootID, s.db.StreamPosition(storage.StreamEvents)); err != nil {
		return fmt.Errorf("unsubscribe from thread: %w", err)
	}
	return nil
}

// DefaultLimit and MaxLimit bound the changes one answer carries (MSC4308:
// 100 unless the client asks otherwise; servers may cap it).
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is a window of changes to a user's thread subscriptions, newest
// kept when there are more (MSC4308), in the MSC's response shape.
type Page struct {
	Subscribed   map[string]map[string]any `json:"subscribed,omitempty"`
	Unsubscribed map[string]map[string]any `json:"unsubscribed,omitempty"`
	// More is the token for the older changes left out, "" when none.
	More string `json:"-"`
}

// Len is the number of changes in the page.
func (p *Page) Len() int {
	n := 0
	for _, m := range p.Subscribed {
		n += len(m)
	}
	for _, m := range p.Unsubscribed {
		n += len(m)
	}
	return n
}

// Changes returns the newest (up to limit) changes to the user's thread
// subscriptions in (lower, upper]; initial leaves out unsubscriptions,
// which a client that never saw the subscription has nothing to do with.
// The stream position of a change is its bump_stamp.
func (s *Service) Changes(ctx context.Context, user string, lower, upper int64, limit int, initial bool) (*Page, error) {
	if limit < 1 {
		return nil, mxerr.InvalidParam("limit must be greater than zero")
	}
	limit = min(limit, MaxLimit)
	rows, err := s.db.ThreadSubscriptionChanges(ctx, user, lower, upper, limit+1)
	if err != nil {
		return nil, fmt.Errorf("thread subscription changes: %w", err)
	}
	p := &Page{}
	if len(rows) > limit {
		rows = rows[:limit]
		p.More = fmt.Sprintf("%d_%d", rows[limit-1].StreamPos-1, lower)
	}
	add := func(m *map[string]map[string]any, roomID, rootID string, v map[string]any) {
		if *m == nil {
			*m = map[string]map[string]any{}
		}
		if (*m)[roomID] == nil {
			(*m)[roomID] = map[string]any{}
		}
		(*m)[roomID][rootID] = v
	}
	for _, r := range rows {
		if r.Subscribed {
			add(&p.Subscribed, r.RoomID, r.RootID, map[string]any{"automatic": r.Automatic, "bump_stamp": r.StreamPos})
		} else if !initial {
			add(&p.Unsubscribed, r.RoomID, r.RootID, map[string]any{"bump_stamp": r.StreamPos})
		}
	}
	return p, nil
}

// parseToken reads a token of Changes ("upper_lower").
func parseToken(tok string) (upper, lower int64, ok bool) {
	u, l, found := strings.Cut(tok, "_")
	if !found {
		return 0, 0, false
	}
	upper, err1 := strconv.ParseInt(u, 10, 64)
	lower, err2 := strconv.ParseInt(l, 10, 64)
	return upper, lower, err1 == nil && err2 == nil && lower >= 0 && upper >= lower
}

// Paginate answers MSC4308's companion endpoint: older changes, from a
// token of a sliding sync answer or of an earlier page (or from now when
// from is ""), down to the lower bound the from token carries. The MSC's
// to (the pos of the sliding sync request) is not needed: a sliding sync
// pos names no stream position here, and the from token already ends
// where that sync began.
func (s *Service) Paginate(ctx context.Context, user, dir, from string, limit int) (*Page, error) {
	if dir != "b" {
		return nil, mxerr.InvalidParam("dir must be b")
	}
	upper, lower := s.db.Position(), int64(0)
	if from != "" {
		var ok bool
		if upper, lower, ok = parseToken(from); !ok {
			return nil, mxerr.InvalidParam("Invalid from token")
		}
	}
	return s.Changes(ctx, user, lower, upper, limit, false)
}
