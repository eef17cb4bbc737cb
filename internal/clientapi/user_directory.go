package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func (a *API) searchUserDirectory(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SearchTerm *string `json:"search_term"`
		Limit      int     `json:"limit"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.SearchTerm == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("search_term is required"))
		return
	}
	if body.Limit < 0 {
		httpapi.WriteError(w, r, mxerr.InvalidParam("limit must not be negative"))
		return
	}
	results, limited, err := a.Directory.SearchUsers(r.Context(), httpapi.CallerOf(r).UserID, *body.SearchTerm, body.Limit)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"results": results, "limited": limited})
}
