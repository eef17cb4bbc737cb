package rooms

import (
	"context"
	"slices"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// MutualRoomsPage is one batch of the rooms two users are both joined to.
type MutualRoomsPage struct {
	Joined    []string `json:"joined"`
	Count     int      `json:"count"`
	NextBatch string   `json:"next_batch,omitempty"`
}

// MutualRooms lists the rooms both user and other are joined to, ordered by
// room ID, limit at a time. from is the next_batch of the previous page:
// the last room ID it held, behind a "r" so that it is never mistaken for
// a room ID by clients.
func (s *Service) MutualRooms(ctx context.Context, user, other, from string, limit int) (*MutualRoomsPage, error) {
	if other == "" {
		return nil, mxerr.MissingParam("user_id is required")
	}
	if _, _, err := id.UserID(other).ParseAndValidateStrict(); err != nil {
		return nil, mxerr.InvalidParam("user_id is not a valid user ID")
	}
	if other == user {
		return nil, mxerr.InvalidParam("user_id must not be your own user ID")
	}
	after := ""
	if from != "" {
		var ok bool
		if after, ok = strings.CutPrefix(from, "r"); !ok || !strings.HasPrefix(after, "!") {
			return nil, mxerr.InvalidParam("invalid from token")
		}
	}
	mine, err := s.joinedSet(ctx, user)
	if err != nil {
		return nil, err
	}
	theirs, err := s.joinedSet(ctx, other)
	if err != nil {
		return nil, err
	}
	var shared []string
	for room := range mine {
		if theirs[room] {
			shared = append(shared, room)
		}
	}
	slices.Sort(shared)
	page := &MutualRoomsPage{Joined: []string{}, Count: len(shared)}
	start, _ := slices.BinarySearch(shared, after)
	if after != "" && start < len(shared) && shared[start] == after {
		start++
	}
	end := min(start+limit, len(shared))
	page.Joined = append(page.Joined, shared[start:end]...)
	if end < len(shared) {
		page.NextBatch = "r" + shared[end-1]
	}
	return page, nil
}

func (s *Service) joinedSet(ctx context.Context, user string) (map[string]bool, error) {
	ms, err := s.UserMemberships(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		if m.Membership == "join" {
			out[m.RoomID] = true
		}
	}
	return out, nil
}
