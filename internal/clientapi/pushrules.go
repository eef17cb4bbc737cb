package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/storage"
)

// globalPushRules returns the user's global rule set: the stored m.push_rules
// account data once rules have been changed, else the server defaults.
func (a *API) globalPushRules(ctx context.Context, user string) (any, error) {
	stored, err := a.DB.GetAccountData(ctx, user, "", "m.push_rules")
	if err == nil {
		var c struct {
			Global json.RawMessage `json:"global"`
		}
		if json.Unmarshal(stored, &c) == nil && len(c.Global) > 0 && c.Global[0] == '{' {
			return c.Global, nil
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("push rules: %w", err)
	}
	return push.DefaultRuleset(user), nil
}

func (a *API) getPushRules(w http.ResponseWriter, r *http.Request) {
	rs, err := a.globalPushRules(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"global": rs})
}

func (a *API) getGlobalPushRules(w http.ResponseWriter, r *http.Request) {
	rs, err := a.globalPushRules(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rs)
}
