package sync

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Filters live here because /sync is what reads them; /messages and the
// other endpoints that take a filter take it inline.

// CreateFilter checks and stores a filter definition of user, returning its
// ID. Only the user may create filters for themselves.
func (s *Service) CreateFilter(ctx context.Context, caller, owner string, body []byte) (string, error) {
	if owner != caller {
		return "", mxerr.Forbidden("Cannot create filters for other users")
	}
	if _, err := filter.Parse(body); err != nil {
		return "", err
	}
	id, err := s.db.CreateFilter(ctx, caller, body)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// FilterJSON returns a stored filter definition as it was uploaded.
func (s *Service) FilterJSON(ctx context.Context, caller, owner, filterID string) ([]byte, error) {
	if owner != caller {
		return nil, mxerr.Forbidden("Cannot read filters of other users")
	}
	id, err := strconv.ParseInt(filterID, 10, 64)
	if err != nil {
		return nil, mxerr.NotFound("Unknown filter")
	}
	b, err := s.db.GetFilter(ctx, caller, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Unknown filter")
	}
	return b, err
}

// Filter resolves /sync's filter parameter: inline JSON or a stored ID.
func (s *Service) Filter(ctx context.Context, user, param string) (*filter.Filter, error) {
	if strings.HasPrefix(strings.TrimSpace(param), "{") {
		return filter.Parse([]byte(param))
	}
	if _, err := strconv.ParseInt(param, 10, 64); err != nil {
		return nil, mxerr.InvalidParam("filter must be JSON or a filter ID")
	}
	b, err := s.FilterJSON(ctx, user, user, param)
	if err != nil {
		return nil, err
	}
	return filter.Parse(b)
}
