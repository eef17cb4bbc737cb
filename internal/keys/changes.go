package keys

import (
	"context"
	"fmt"
	"sort"

	"github.com/axon-matrix/axon/internal/storage"
)

// Changes answers GET /keys/changes: the users whose device lists changed
// between two stream positions and who share a room with the user now, or
// who started sharing one in that range (changed); and the users who
// stopped sharing any room with the user in that range (left). Sharing a
// room means being its joined, invited or knocking member while the user
// is joined, as /sync's device_lists counts it: clients encrypt for
// invitees too.
func (s *Service) Changes(ctx context.Context, user string, from, to int64) (changed, left []string, err error) {
	joined, err := s.db.JoinedRooms(ctx, user)
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	sharing, err := s.db.UsersSharingRooms(ctx, user)
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	shared := map[string]bool{user: true}
	for _, u := range sharing {
		shared[u] = true
	}
	ch, gone := map[string]bool{}, map[string]bool{}
	users, err := s.db.DeviceListChangesAfter(ctx, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	for _, u := range users {
		if shared[u] {
			ch[u] = true
		}
	}
	// Rooms the user left in the range: their members may no longer share one.
	rooms := append([]string{}, joined...)
	mine, err := s.db.MemberEventsFor(ctx, user, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	isJoined := map[string]bool{}
	for _, r := range joined {
		isJoined[r] = true
	}
	for _, ev := range mine {
		if !isJoined[ev.RoomID] {
			rooms = append(rooms, ev.RoomID)
			isJoined[ev.RoomID] = true
		}
	}
	changes, err := s.db.MemberChangesIn(ctx, rooms, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("key changes: %w", err)
	}
	for _, c := range changes {
		if c.UserID == user {
			// The user's own join or leave: everyone in that room is new or gone.
			members, err := s.db.RoomSharingMembers(ctx, c.RoomID)
			if err != nil {
				return nil, nil, fmt.Errorf("key changes: %w", err)
			}
			for _, m := range members {
				if m != user && shared[m] {
					ch[m] = true
				} else if m != user {
					gone[m] = true
				}
			}
			continue
		}
		if shared[c.UserID] {
			if storage.SharesRoom(c.Membership) {
				ch[c.UserID] = true
			}
		} else {
			gone[c.UserID] = true
		}
	}
	changed, left = []string{}, []string{}
	for u := range ch {
		changed = append(changed, u)
	}
	for u := range gone {
		if !shared[u] {
			left = append(left, u)
		}
	}
	sort.Strings(changed)
	sort.Strings(left)
	return changed, left, nil
}
