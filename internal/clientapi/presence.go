package clientapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func (a *API) getPresence(w http.ResponseWriter, r *http.Request) {
	c, err := a.Presence.Get(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("userId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, c)
}

func (a *API) putPresence(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		Presence  *string         `json:"presence"`
		StatusMsg json.RawMessage `json:"status_msg"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Presence == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("presence is required"))
		return
	}
	// status_msg: absent or null clears the message, like Synapse.
	var msg *string
	if body.StatusMsg != nil && string(body.StatusMsg) != "null" {
		var s string
		if err := json.Unmarshal(body.StatusMsg, &s); err != nil {
			httpapi.WriteError(w, r, mxerr.BadJSON("status_msg must be a string"))
			return
		}
		msg = &s
	}
	if err := a.Presence.Set(r.Context(), httpapi.CallerOf(r).UserID, *body.Presence, msg); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// setPresenceFromSync applies a /sync request's set_presence parameter
// ("" means the default, online). The sync handler calls it before
// building the response; an invalid value is an M_INVALID_PARAM error.
func (a *API) setPresenceFromSync(ctx context.Context, user, state string) error {
	return a.Presence.FromSync(ctx, user, state)
}
