package clientapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
)

// maxSyncTimeout caps long-polls so proxies and clients never see a hung request.
const maxSyncTimeout = 5 * time.Minute

func (a *API) sync(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	req := sync.Request{UserID: c.UserID, DeviceID: c.DeviceID, Since: q.Get("since"), FullState: q.Get("full_state") == "true"}
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
		f, err := a.loadFilter(r, c.UserID, fs)
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

// loadFilter resolves the filter parameter: inline JSON or a stored ID.
func (a *API) loadFilter(r *http.Request, user, param string) (*filter.Filter, error) {
	if strings.HasPrefix(strings.TrimSpace(param), "{") {
		return filter.Parse([]byte(param))
	}
	id, err := strconv.ParseInt(param, 10, 64)
	if err != nil {
		return nil, mxerr.InvalidParam("filter must be JSON or a filter ID")
	}
	b, err := a.DB.GetFilter(r.Context(), user, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Unknown filter")
	}
	if err != nil {
		return nil, err
	}
	return filter.Parse(b)
}

func (a *API) createFilter(w http.ResponseWriter, r *http.Request) {
	user := httpapi.CallerOf(r).UserID
	if r.PathValue("userId") != user {
		httpapi.WriteError(w, r, mxerr.Forbidden("Cannot create filters for other users"))
		return
	}
	body, err := httpapi.ReadBody(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var probe map[string]any
	if err := httpapi.DecodeBytes(body, &probe); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if _, err := filter.Parse(body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	id, err := a.DB.CreateFilter(r.Context(), user, body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"filter_id": strconv.FormatInt(id, 10)})
}

func (a *API) getFilter(w http.ResponseWriter, r *http.Request) {
	user := httpapi.CallerOf(r).UserID
	if r.PathValue("userId") != user {
		httpapi.WriteError(w, r, mxerr.Forbidden("Cannot read filters of other users"))
		return
	}
	id, err := strconv.ParseInt(r.PathValue("filterId"), 10, 64)
	if err != nil {
		httpapi.WriteError(w, r, mxerr.NotFound("Unknown filter"))
		return
	}
	b, err := a.DB.GetFilter(r.Context(), user, id)
	if errors.Is(err, storage.ErrNotFound) {
		httpapi.WriteError(w, r, mxerr.NotFound("Unknown filter"))
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
