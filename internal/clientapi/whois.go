package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

// getWhois answers GET /admin/whois/{userId} for server admins and for the
// user themself.
func (a *API) getWhois(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	info, err := a.Accounts.Whois(r.Context(), c.UserID, c.IsAdmin, r.PathValue("userId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, info)
}
