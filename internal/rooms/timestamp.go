package rooms

import (
	"context"
	"fmt"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// maxTimestampScan bounds how many events EventAtTimestamp looks at for one
// the user may see, so that a long invisible stretch cannot make it scan a
// whole room.
const maxTimestampScan = 500

// EventAtTimestamp finds the event of a room closest to ts in the direction
// forward (at or after ts) or backward (at or before ts) that user may see.
// The user must be able to read the room (M_FORBIDDEN otherwise);
// M_NOT_FOUND when there is no such event.
func (s *Service) EventAtTimestamp(ctx context.Context, roomID, user string, ts int64, forward bool) (*Event, error) {
	ok, err := s.CanReadRoom(ctx, roomID, user)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, mxerr.Forbidden("You are not allowed to view this room")
	}
	// The nearest event is almost always visible: look at a few first, and
	// only then at up to maxTimestampScan.
	for _, limit := range []int{20, maxTimestampScan} {
		rows, err := s.db.EventsNearTS(ctx, roomID, ts, forward, limit)
		if err != nil {
			return nil, fmt.Errorf("events near timestamp: %w", err)
		}
		evs, err := s.Wrap(ctx, rows)
		if err != nil {
			return nil, err
		}
		visible, err := s.FilterVisible(ctx, user, evs)
		if err != nil {
			return nil, err
		}
		if len(visible) > 0 {
			return visible[0], nil
		}
		if len(rows) < limit {
			break
		}
	}
	return nil, mxerr.NotFound("No event found in that direction from the given timestamp")
}
