package rooms

import (
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// Suspended accounts (spec: "Account suspension") keep reading but may not
// act in rooms: no messages, state, joins, knocks, invites, room creation
// or upgrades. They may still leave rooms (and reject invites) and redact
// their own events, which the spec asks servers to allow. The flag is read
// from the database for each event, so a suspension made by the command
// line in another process applies at once.

// checkSuspended refuses req when its sender is a suspended local account
// and the event is not one a suspended account may send.
func (s *Service) checkSuspended(ctx context.Context, req SendRequest) error {
	suspended, err := s.db.UserSuspended(ctx, req.Sender)
	if err != nil {
		return fmt.Errorf("check suspension: %w", err)
	}
	if !suspended {
		return nil
	}
	switch req.Type {
	case "m.room.member":
		if req.StateKey != nil && *req.StateKey == req.Sender && gjson.GetBytes(req.Content, "membership").Str == "leave" {
			return nil
		}
	case "m.room.redaction":
		// A state event of this type redacts nothing: not the exemption.
		if req.StateKey != nil {
			break
		}
		target := req.Redacts
		if target == "" {
			target = gjson.GetBytes(req.Content, "redacts").Str
		}
		if target != "" {
			if ev, err := s.Event(ctx, target); err == nil && ev.Sender == req.Sender && ev.RoomID == req.RoomID {
				return nil
			}
		}
	}
	return mxerr.UserSuspended()
}
