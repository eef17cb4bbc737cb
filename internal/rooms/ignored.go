package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axon-matrix/axon/internal/storage"
)

// IgnoredUsers returns the users in user's m.ignored_user_list account
// data, or nil when there are none. Callers load it once per request.
func (s *Service) IgnoredUsers(ctx context.Context, user string) (map[string]bool, error) {
	raw, err := s.db.GetAccountData(ctx, user, "", "m.ignored_user_list")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ignored users: %w", err)
	}
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	// Content that is not the expected shape ignores nobody.
	if json.Unmarshal(raw, &c) != nil || len(c.IgnoredUsers) == 0 {
		return nil, nil
	}
	out := make(map[string]bool, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		out[u] = true
	}
	return out, nil
}

// HiddenByIgnore reports whether ev is hidden from a user ignoring the
// users in ignored: everything they send except state events, which are
// kept so that the room looks the same to everyone.
func HiddenByIgnore(ev *Event, ignored map[string]bool) bool {
	return ignored[ev.Sender] && !ev.IsState()
}
