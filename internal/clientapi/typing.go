package clientapi

import (
	"net/http"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func (a *API) setTyping(w http.ResponseWriter, r *http.Request) {
	user := httpapi.CallerOf(r).UserID
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var body struct {
		Typing  *bool `json:"typing"`
		Timeout int64 `json:"timeout"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Typing == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("typing is required"))
		return
	}
	if body.Timeout < 0 {
		httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must not be negative"))
		return
	}
	roomID := r.PathValue("roomId")
	ms, err := a.Rooms.Membership(r.Context(), roomID, user)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if ms != "join" {
		httpapi.WriteError(w, r, mxerr.Forbidden("You are not joined to this room"))
		return
	}
	// Typing.Set caps the timeout and applies a default when it is 0.
	a.Sync.Typing.Set(roomID, user, *body.Typing, time.Duration(body.Timeout)*time.Millisecond)
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
