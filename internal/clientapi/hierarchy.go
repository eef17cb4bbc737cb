package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/spaces"
)

// getHierarchy is GET /v1/rooms/{roomId}/hierarchy.
func (a *API) getHierarchy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := spaces.Request{RoomID: r.PathValue("roomId"), User: httpapi.CallerOf(r).UserID, From: q.Get("from")}
	switch q.Get("suggested_only") {
	case "", "false":
	case "true":
		req.SuggestedOnly = true
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("suggested_only must be true or false"))
		return
	}
	var err error
	if req.MaxDepth, err = spaces.ParseMaxDepth(q.Get("max_depth")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if req.Limit, err = parseLimit(q.Get("limit"), spaces.DefaultLimit, spaces.MaxLimit); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if q.Get("limit") != "" && req.Limit == 0 {
		httpapi.WriteError(w, r, mxerr.InvalidParam("limit must be positive"))
		return
	}
	page, err := a.Spaces.Hierarchy(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}
