package clientapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/sync"
)

// maxSyncTimeout caps long-polls so proxies and clients never see a hung request.
const maxSyncTimeout = 5 * time.Minute

func (a *API) sync(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	fullState, err := httpapi.QueryBool(q, "full_state")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	req := sync.Request{UserID: c.UserID, DeviceID: c.DeviceID, Since: q.Get("since"), FullState: fullState}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must be a non-negative integer"))
			return
		}
		req.Timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	switch q.Get("use_state_after") {
	case "true":
		req.UseStateAfter = true
	case "", "false":
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("use_state_after must be true or false"))
		return
	}
	if fs := q.Get("filter"); fs != "" {
		f, err := a.Sync.Filter(ctx, c.UserID, fs)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		req.Filter = f
	}
	if err := a.setPresenceFromSync(ctx, c.UserID, q.Get("set_presence")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp, err := a.Sync.Sync(ctx, req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) createFilter(w http.ResponseWriter, r *http.Request) {
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var probe map[string]any
	if err := httpapi.DecodeBytes(body, &probe); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	id, err := a.Sync.CreateFilter(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("userId"), body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"filter_id": id})
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request) {
	b, err := a.Sync.FilterJSON(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("userId"), r.PathValue("filterId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
