package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/slidingsync"
)

// slidingSync is simplified sliding sync (MSC4186).
func (a *API) slidingSync(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	var timeout time.Duration
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must be a non-negative integer"))
			return
		}
		timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	body, err := httpapi.ReadBody(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var req slidingsync.Request
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			httpapi.WriteError(w, r, mxerr.BadJSON("Invalid sliding sync request: %v", err))
			return
		}
	}
	resp, err := a.SlidingSync.Sync(r.Context(), c.UserID, c.DeviceID, q.Get("pos"), timeout, &req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
