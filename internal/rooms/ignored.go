package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/storage"
)

// IgnoredUsersType is the global account data entry listing the users a
// user ignores (spec: modules/ignore_users.md).
const IgnoredUsersType = "m.ignored_user_list"

// ignoredCache keeps each user's parsed ignore list: sync, history requests
// and every push-rule evaluation (unread counts, pushes) ask for it.
type ignoredCache struct {
	lists *loadcache.Map[string, map[string]bool] // nil value: ignores nobody
}

// maxIgnoredCache bounds the cache; it refills from storage.
const maxIgnoredCache = 50000

// IgnoredUsers returns the users in user's m.ignored_user_list account
// data, or nil when there are none. The result is shared: do not modify.
func (s *Service) IgnoredUsers(ctx context.Context, user string) (map[string]bool, error) {
	return s.ignored.lists.Load(user, func() (map[string]bool, error) {
		raw, err := s.db.GetAccountData(ctx, user, "", IgnoredUsersType)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("ignored users: %w", err)
		}
		return parseIgnored(raw), nil
	})
}

func parseIgnored(raw []byte) map[string]bool {
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	// Content that is not the expected shape ignores nobody.
	if raw == nil || json.Unmarshal(raw, &c) != nil || len(c.IgnoredUsers) == 0 {
		return nil
	}
	out := make(map[string]bool, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		out[u] = true
	}
	return out
}

// ignoredChanged follows the change feed: a new ignore list takes effect
// at once, as the spec asks.
func (s *Service) ignoredChanged(ch storage.Change) {
	if ch.Kind != storage.KindAccountData || ch.Room != "" || ch.Type != IgnoredUsersType {
		return
	}
	s.ignored.lists.Forget(ch.Users[0])
}

// HiddenByIgnore reports whether ev is hidden from a user ignoring the
// users in ignored: everything they send except state events, which are
// kept so that the room looks the same to everyone.
func HiddenByIgnore(ev *Event, ignored map[string]bool) bool {
	return ignored[ev.Sender] && !ev.IsState()
}

// FilterShown returns the events of one room that user is shown when
// reading history: those history visibility lets them see (FilterVisible)
// minus those of users they ignore, in the same order. /context,
// /relations, /threads, /search and sliding sync timelines use it.
func (s *Service) FilterShown(ctx context.Context, user string, evs []*Event) ([]*Event, error) {
	evs, err := s.FilterVisible(ctx, user, evs)
	if err != nil {
		return nil, err
	}
	return s.WithoutIgnored(ctx, user, evs)
}

// WithoutIgnored returns evs minus the events hidden from user because
// user ignores their senders, in the same order.
func (s *Service) WithoutIgnored(ctx context.Context, user string, evs []*Event) ([]*Event, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	ignored, err := s.IgnoredUsers(ctx, user)
	if err != nil || len(ignored) == 0 {
		return evs, err
	}
	out := evs[:0:0]
	for _, ev := range evs {
		if !HiddenByIgnore(ev, ignored) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// WithoutIgnoredInvites returns memberships minus the invites sent by users
// user ignores (the spec has servers not show those at all), and minus
// every invite while user blocks invites (invite_permission.go).
func (s *Service) WithoutIgnoredInvites(ctx context.Context, user string, ms []storage.Membership) ([]storage.Membership, error) {
	hasInvite := false
	for _, m := range ms {
		if m.Membership == "invite" {
			hasInvite = true
			break
		}
	}
	if !hasInvite {
		return ms, nil
	}
	blocked, err := s.InvitesBlocked(ctx, user)
	if err != nil {
		return nil, err
	}
	ignored, err := s.IgnoredUsers(ctx, user)
	if err != nil || (len(ignored) == 0 && !blocked) {
		return ms, err
	}
	out := ms[:0:0]
	for _, m := range ms {
		if m.Membership == "invite" {
			if blocked {
				continue
			}
			ev, err := s.Event(ctx, m.EventID)
			if err != nil {
				return nil, err
			}
			if ignored[ev.Sender] {
				continue
			}
		}
		out = append(out, m)
	}
	return out, nil
}
