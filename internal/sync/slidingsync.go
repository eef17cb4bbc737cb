package sync

import "context"

// UnreadCounts returns a user's unthreaded notification and highlight
// counts in a room up to stream position upto (for sliding sync).
func (s *Service) UnreadCounts(ctx context.Context, roomID, user string, upto int64) (Counts, error) {
	c, _, err := s.unreadCounts(ctx, roomID, user, false, upto)
	return c, err
}
