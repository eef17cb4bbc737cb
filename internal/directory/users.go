package directory

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/axon-matrix/axon/internal/storage"
)

// UserResult is one user directory hit.
type UserResult struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`

	rank int
}

// Search bounds: a page of results, and how many matching users are
// examined to rank them.
const (
	DefaultUserLimit = 10
	maxUserLimit     = 100
	userScanBatch    = 200
	maxUsersScanned  = 2000
)

// SearchUsers searches local users visible to the searcher: those sharing
// a room with them and those joined to rooms with a public join rule or
// world-readable history (Synapse's default). Results are ranked by how
// well they match, then by whether they have profile information.
func (s *Service) SearchUsers(ctx context.Context, searcher, term string, limit int) ([]UserResult, bool, error) {
	if limit <= 0 {
		limit = DefaultUserLimit
	}
	limit = min(limit, maxUserLimit)
	term = strings.TrimSpace(term)
	results := []UserResult{}
	if term == "" {
		return results, false, nil
	}
	mine, err := s.db.JoinedRooms(ctx, searcher)
	if err != nil {
		return nil, false, fmt.Errorf("joined rooms: %w", err)
	}
	shared := make(map[string]bool, len(mine))
	for _, r := range mine {
		shared[r] = true
	}
	public := map[string]bool{} // per room: members are discoverable
	visible := func(u string) (bool, error) {
		if u == searcher {
			return true, nil
		}
		rs, err := s.db.JoinedRooms(ctx, u)
		if err != nil {
			return false, fmt.Errorf("joined rooms: %w", err)
		}
		for _, r := range rs {
			if shared[r] {
				return true, nil
			}
		}
		for _, r := range rs {
			pub, ok := public[r]
			if !ok {
				pr, err := s.summarise(ctx, r)
				if err != nil {
					return false, err
				}
				pub = pr.JoinRule == "public" || pr.WorldReadable
				public[r] = pub
			}
			if pub {
				return true, nil
			}
		}
		return false, nil
	}
	lower := strings.ToLower(term)
	for offset := 0; offset < maxUsersScanned; offset += userScanBatch {
		users, err := s.db.SearchLocalUsers(ctx, term, offset, userScanBatch)
		if err != nil {
			return nil, false, fmt.Errorf("search users: %w", err)
		}
		for _, u := range users {
			ok, err := visible(u.UserID)
			if err != nil {
				return nil, false, err
			}
			if ok {
				results = append(results, UserResult{UserID: u.UserID, DisplayName: u.DisplayName, AvatarURL: u.AvatarURL, rank: rankUser(u, lower)})
			}
		}
		if len(users) < userScanBatch {
			break
		}
	}
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.rank != b.rank {
			return a.rank > b.rank
		}
		if ap, bp := a.DisplayName != "" || a.AvatarURL != "", b.DisplayName != "" || b.AvatarURL != ""; ap != bp {
			return ap
		}
		return a.UserID < b.UserID
	})
	limited := len(results) > limit
	if limited {
		results = results[:limit]
	}
	return results, limited, nil
}

// rankUser scores a match: exact name or localpart, then a prefix of
// either (or of a word of the display name), then anything else.
func rankUser(u storage.User, term string) int {
	name, local := strings.ToLower(u.DisplayName), strings.ToLower(u.Localpart)
	switch {
	case name == term || local == term || strings.ToLower(u.UserID) == term:
		return 3
	case strings.HasPrefix(name, term) || strings.HasPrefix(local, term) || strings.HasPrefix(strings.ToLower(u.UserID), term):
		return 2
	}
	for _, w := range strings.Fields(name) {
		if strings.HasPrefix(w, term) {
			return 2
		}
	}
	return 1
}
