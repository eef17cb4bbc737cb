package clientapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/slidingsync"
)

// slidingSync is simplified sliding sync (MSC4186).
func (a *API) slidingSync(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var req slidingsync.Request
	if err := httpapi.DecodeBytes(body, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	req.V4 = strings.HasPrefix(r.URL.Path, "/_matrix/client/v4/")
	// pos and timeout are query parameters for today's clients and Synapse;
	// the MSC's current text moves them into the body.
	pos := q.Get("pos")
	if pos == "" && req.Pos != nil {
		pos = *req.Pos
	}
	var ms int64
	if t := q.Get("timeout"); t != "" {
		if ms, err = strconv.ParseInt(t, 10, 64); err != nil || ms < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must be a non-negative integer"))
			return
		}
	} else if req.Timeout != nil {
		if ms = *req.Timeout; ms < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must be a non-negative integer"))
			return
		}
	}
	// Syncing marks the user online unless set_presence says otherwise, as
	// /v3/sync does (an unknown value is M_INVALID_PARAM).
	presence := q.Get("set_presence")
	if presence == "" && req.SetPresence != nil {
		presence = *req.SetPresence
	}
	if err := a.setPresenceFromSync(r.Context(), c.UserID, presence); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	timeout := min(time.Duration(min(ms, int64(maxSyncTimeout/time.Millisecond)))*time.Millisecond, maxSyncTimeout)
	resp, err := a.SlidingSync.Sync(r.Context(), c.UserID, c.DeviceID, pos, timeout, &req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
