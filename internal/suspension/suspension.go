// Package suspension is the one check every service makes before a
// suspended account acts (spec: "Account suspension"). Which actions are
// refused is each service's decision; how the refusal is made is this
// package's, so that rooms, media, 3PIDs and profiles answer alike.
package suspension

import (
	"context"
	"fmt"

	"github.com/axon-matrix/axon/internal/mxerr"
)

// Store reads the suspension flag; storage.DB implements it. The flag is
// read on every check rather than cached, so a suspension made from the
// command line in another process applies at once.
type Store interface {
	UserSuspended(ctx context.Context, userID string) (bool, error)
}

// Refuse returns M_USER_SUSPENDED when userID is a suspended local account,
// nil when it is not (or is not a local account at all).
func Refuse(ctx context.Context, st Store, userID string) error {
	suspended, err := st.UserSuspended(ctx, userID)
	if err != nil {
		return fmt.Errorf("check suspension: %w", err)
	}
	if suspended {
		return mxerr.UserSuspended()
	}
	return nil
}
