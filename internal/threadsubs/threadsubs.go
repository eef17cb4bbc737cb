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

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/mxid"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Waker wakes the long-polls of users; *sync.Notifier is one.
type Waker interface {
	Wake(users ...string)
}

// Service reads and changes thread subscriptions.
type Service struct {
	db    *storage.DB
	rooms *rooms.Service
	wake  Waker
}

// New creates the service.
func New(db *storage.DB, rs *rooms.Service, w Waker) *Service {
	return &Service{db: db, rooms: rs, wake: w}
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
	changed, err := s.db.SubscribeThread(ctx, user, roomID, rootID, cause != nil, causePos)
	if errors.Is(err, storage.ErrConflictingUnsubscription) {
		return mxerr.New(ErrCodeConflictingUnsubscription, "Unsubscribed from this thread after the cause event").WithStatus(http.StatusConflict)
	}
	if err != nil {
		return fmt.Errorf("subscribe to thread: %w", err)
	}
	if changed {
		s.wake.Wake(user)
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
	removed, err := s.db.UnsubscribeThread(ctx, user, roomID, rootID, s.db.StreamPosition(storage.StreamEvents))
	if err != nil {
		return fmt.Errorf("unsubscribe from thread: %w", err)
	}
	if removed {
		s.wake.Wake(user)
	}
	return nil
}
