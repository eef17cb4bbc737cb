// Package reports takes in the abuse reports of local users (events, rooms,
// users) and keeps them for the server's operators.
package reports

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// MaxReasonLen bounds a report's reason, in characters.
const MaxReasonLen = 2000

// Service stores reports after checking what they point at. It holds no
// state of its own, so building one per request costs nothing.
type Service struct {
	db    *storage.DB
	rooms *rooms.Service
}

// New returns the report service.
func New(db *storage.DB, rs *rooms.Service) *Service { return &Service{db: db, rooms: rs} }

func checkReason(reason string) error {
	if utf8.RuneCountInString(reason) > MaxReasonLen {
		return mxerr.InvalidParam("reason is longer than %d characters", MaxReasonLen)
	}
	return nil
}

// ReportEvent reports an event of a room the reporter is joined to. An
// event that does not exist, is not in that room or is redacted is
// M_NOT_FOUND, as is a room the reporter is not joined to.
func (s *Service) ReportEvent(ctx context.Context, reporter, roomID, eventID, reason string, score *int64) error {
	if err := checkReason(reason); err != nil {
		return err
	}
	if score != nil && (*score < -100 || *score > 0) {
		return mxerr.InvalidParam("score must be between -100 and 0")
	}
	notFound := mxerr.NotFound("The event was not found or you are not joined to the room.")
	ms, err := s.rooms.Membership(ctx, roomID, reporter)
	if err != nil {
		if e, ok := mxerr.As(err); ok && e.Code == "M_NOT_FOUND" {
			return notFound
		}
		return err
	}
	if ms != "join" {
		return notFound
	}
	ev, err := s.rooms.Event(ctx, eventID)
	if err != nil {
		if e, ok := mxerr.As(err); ok && e.Code == "M_NOT_FOUND" {
			return notFound
		}
		return err
	}
	if ev.RoomID != roomID || ev.RedactedBy != "" {
		return notFound
	}
	return s.add(ctx, storage.Report{Kind: "event", Reporter: reporter, RoomID: roomID, EventID: eventID,
		UserID: ev.Sender, Reason: reason, Score: score})
}

// ReportRoom reports a room; the reporter need not be in it.
func (s *Service) ReportRoom(ctx context.Context, reporter, roomID, reason string) error {
	if err := checkReason(reason); err != nil {
		return err
	}
	if _, err := s.rooms.RoomVersion(ctx, roomID); err != nil {
		if e, ok := mxerr.As(err); ok && e.Code == "M_NOT_FOUND" {
			return mxerr.NotFound("The room was not found.")
		}
		return err
	}
	return s.add(ctx, storage.Report{Kind: "room", Reporter: reporter, RoomID: roomID, Reason: reason})
}

// ReportUser reports a user. Local users must exist; remote ones are
// taken as given, since this server cannot tell whether they exist.
func (s *Service) ReportUser(ctx context.Context, reporter, userID, reason string) error {
	if err := checkReason(reason); err != nil {
		return err
	}
	_, server, err := id.UserID(userID).ParseAndValidateRelaxed()
	if err != nil {
		return mxerr.InvalidParam("invalid user ID")
	}
	if server == s.rooms.ServerName() {
		u, err := s.db.GetUser(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
			return mxerr.NotFound("The user was not found.")
		}
		if err != nil {
			return fmt.Errorf("look up user: %w", err)
		}
	}
	return s.add(ctx, storage.Report{Kind: "user", Reporter: reporter, UserID: userID, Reason: reason})
}

func (s *Service) add(ctx context.Context, r storage.Report) error {
	r.CreatedTS = time.Now().UnixMilli()
	if _, err := s.db.AddReport(ctx, r); err != nil {
		return fmt.Errorf("store report: %w", err)
	}
	return nil
}
