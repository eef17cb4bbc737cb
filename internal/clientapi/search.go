package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/search"
)

// search is POST /search.
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	var body search.Request
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := a.Search.Search(r.Context(), viewer(r), body, r.URL.Query().Get("next_batch"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}
