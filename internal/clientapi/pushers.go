package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/push"
)

func (a *API) getPushers(w http.ResponseWriter, r *http.Request) {
	ps, err := a.Push.Pushers(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"pushers": ps})
}

func (a *API) setPusher(w http.ResponseWriter, r *http.Request) {
	var req push.PusherRequest
	var fields map[string]json.RawMessage
	body, err := httpapi.ReadJSON(r)
	if err == nil {
		err = httpapi.DecodeBytes(body, &fields)
	}
	if err == nil {
		err = httpapi.DecodeBytes(body, &req)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	_, req.KindSet = fields["kind"]
	c := httpapi.CallerOf(r)
	if err := a.Push.SetPusher(r.Context(), c.UserID, c.DeviceID, req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getNotifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("Invalid limit"))
			return
		}
		limit = n
	}
	page, err := a.Push.Notifications(r.Context(), httpapi.CallerOf(r).UserID, q.Get("from"), limit, q.Get("only") == "highlight")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}
