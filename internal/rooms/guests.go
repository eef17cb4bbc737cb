package rooms

import (
	"context"
	"encoding/json"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Guest accounts (the spec's guest access module) may join only rooms whose
// m.room.guest_access is can_join, and must leave when that changes.

// GuestJoin joins a guest account to a room, refusing rooms that do not let
// guests join (M_GUEST_ACCESS_FORBIDDEN), even when the guest is invited.
func (s *Service) GuestJoin(ctx context.Context, req JoinRequest) (string, error) {
	roomID, err := s.ResolveRoom(ctx, req.Room)
	if err != nil {
		return "", err
	}
	if err := s.checkGuestCanJoin(ctx, roomID); err != nil {
		return "", err
	}
	req.Room = roomID
	return s.Join(ctx, req)
}

// checkGuestCanJoin refuses a guest's join unless the room's guest access
// is can_join.
func (s *Service) checkGuestCanJoin(ctx context.Context, roomID string) error {
	ev, err := s.CurrentStateEvent(ctx, roomID, "m.room.guest_access", "")
	if err != nil {
		return err
	}
	if ev == nil || !guestsCanJoin(ev) {
		return mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guests may not join this room")
	}
	return nil
}

func guestsCanJoin(ev *Event) bool {
	var c struct {
		GuestAccess string `json:"guest_access"`
	}
	_ = json.Unmarshal(ev.PDU.Content, &c)
	return c.GuestAccess == "can_join"
}

// evictGuests follows the change feed: when a room's m.room.guest_access
// stops being can_join, its joined guests leave, as the spec requires. The
// leaves are sent from a goroutine: feed subscribers must not write.
func (s *Service) evictGuests(c storage.Change) {
	if c.Kind != storage.KindEvent || c.Type != "m.room.guest_access" || c.StateKey == nil || *c.StateKey != "" {
		return
	}
	go func() {
		ctx := context.Background()
		ev, err := s.Event(ctx, c.EventID)
		if err != nil || guestsCanJoin(ev) {
			return
		}
		guests, err := s.db.JoinedGuests(ctx, c.Room)
		if err != nil {
			s.log.Error("listing guests to remove", "room", c.Room, "err", err)
			return
		}
		for _, g := range guests {
			if err := s.Leave(ctx, c.Room, g, "Guest access was turned off"); err != nil {
				s.log.Warn("removing guest", "room", c.Room, "user", g, "err", err)
			}
		}
	}()
}
