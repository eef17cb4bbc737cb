// Package receipts handles read receipts and the fully-read marker: it
// validates them against the room, stores them on their streams and wakes
// the users who should see them.
package receipts

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/accountdata"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Receipt and marker types.
const (
	Read        = "m.read"
	ReadPrivate = "m.read.private"
	FullyRead   = "m.fully_read"
)

// Service stores receipts and read markers.
type Service struct {
	db          *storage.DB
	rooms       *rooms.Service
	accountData *accountdata.Service
	now         func() time.Time
}

// New creates the service.
func New(db *storage.DB, rs *rooms.Service) *Service {
	return &Service{db: db, rooms: rs, accountData: accountdata.New(db), now: time.Now}
}

// Post sets the user's receipt (or, for m.fully_read, the read marker) of
// receiptType in a room to eventID. threadID is nil for an unthreaded
// receipt, else "main" or a thread root's event ID.
func (s *Service) Post(ctx context.Context, userID, roomID, receiptType, eventID string, threadID *string) error {
	switch receiptType {
	case Read, ReadPrivate, FullyRead:
	default:
		return mxerr.InvalidParam("Unknown receipt type %q", receiptType)
	}
	thread := ""
	if threadID != nil {
		if receiptType == FullyRead {
			return mxerr.InvalidParam("thread_id cannot be used with m.fully_read")
		}
		thread = *threadID
		if thread == "" {
			return mxerr.InvalidParam("thread_id field must be a non-empty string")
		}
		if thread != "main" && !strings.HasPrefix(thread, "$") {
			return mxerr.InvalidParam("thread_id must be \"main\" or an event ID")
		}
	}
	if err := s.requireJoined(ctx, roomID, userID); err != nil {
		return err
	}
	ev, err := s.roomEvent(ctx, roomID, eventID)
	if err != nil {
		return err
	}
	if receiptType == FullyRead {
		return s.setFullyRead(ctx, userID, roomID, ev)
	}
	if err := checkThread(ev, thread); err != nil {
		return err
	}
	return s.putReceipt(ctx, userID, roomID, receiptType, thread, ev)
}

// Markers is the body of /read_markers; empty fields are not changed.
type Markers struct {
	FullyRead   string
	Read        string
	ReadPrivate string
}

// SetMarkers applies /read_markers: every event is checked before anything
// is written, so a bad request changes nothing.
func (s *Service) SetMarkers(ctx context.Context, userID, roomID string, m Markers) error {
	if err := s.requireJoined(ctx, roomID, userID); err != nil {
		return err
	}
	events := map[string]*rooms.Event{}
	for _, id := range []string{m.FullyRead, m.Read, m.ReadPrivate} {
		if id == "" || events[id] != nil {
			continue
		}
		ev, err := s.roomEvent(ctx, roomID, id)
		if err != nil {
			return err
		}
		events[id] = ev
	}
	if m.FullyRead != "" {
		if err := s.setFullyRead(ctx, userID, roomID, events[m.FullyRead]); err != nil {
			return err
		}
	}
	if m.Read != "" {
		if err := s.putReceipt(ctx, userID, roomID, Read, "", events[m.Read]); err != nil {
			return err
		}
	}
	if m.ReadPrivate != "" {
		if err := s.putReceipt(ctx, userID, roomID, ReadPrivate, "", events[m.ReadPrivate]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) requireJoined(ctx context.Context, roomID, userID string) error {
	ms, err := s.rooms.Membership(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if ms != "join" {
		return mxerr.Forbidden("You are not joined to this room")
	}
	return nil
}

// roomEvent returns an event that must belong to roomID.
func (s *Service) roomEvent(ctx context.Context, roomID, eventID string) (*rooms.Event, error) {
	if !strings.HasPrefix(eventID, "$") {
		return nil, mxerr.InvalidParam("%q is not an event ID", eventID)
	}
	ev, err := s.rooms.Event(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if ev.RoomID != roomID {
		return nil, mxerr.NotFound("Event not found in this room")
	}
	return ev, nil
}

// checkThread rejects a threaded receipt whose event is known to be in a
// different thread. Events the server does not place in a thread (such as
// reactions to thread replies) are accepted under any thread ID.
func checkThread(ev *rooms.Event, thread string) error {
	if thread == "" || ev.ThreadRoot == "" {
		return nil
	}
	if thread == "main" {
		return mxerr.InvalidParam("Event %s is in thread %s, not the main timeline", ev.EventID, ev.ThreadRoot)
	}
	if thread != ev.ThreadRoot {
		return mxerr.InvalidParam("Event %s is not in thread %s", ev.EventID, thread)
	}
	return nil
}

func (s *Service) putReceipt(ctx context.Context, userID, roomID, typ, thread string, ev *rooms.Event) error {
	// A stored receipt is announced on the change feed, which wakes the
	// syncs that show it.
	_, err := s.db.PutReceipt(ctx, storage.Receipt{
		RoomID: roomID, UserID: userID, Type: typ, ThreadID: thread,
		EventID: ev.EventID, EventPos: ev.StreamPos, TS: s.now().UnixMilli(),
	})
	if err != nil {
		return fmt.Errorf("store receipt: %w", err)
	}
	return nil
}

// setFullyRead moves the m.fully_read room account data forward to ev; an
// older event leaves the marker where it is.
func (s *Service) setFullyRead(ctx context.Context, userID, roomID string, ev *rooms.Event) error {
	_, err := s.accountData.Update(ctx, userID, roomID, FullyRead, func(old []byte) ([]byte, bool, error) {
		var cur struct {
			EventID string `json:"event_id"`
		}
		if old != nil && json.Unmarshal(old, &cur) == nil && cur.EventID != "" {
			if cur.EventID == ev.EventID {
				return nil, false, nil
			}
			if prev, err := s.rooms.Event(ctx, cur.EventID); err == nil && prev.StreamPos > ev.StreamPos {
				return nil, false, nil
			}
		}
		b, err := json.Marshal(map[string]string{"event_id": ev.EventID})
		return b, true, err
	})
	return err
}
