package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// getSupport answers GET /.well-known/matrix/support from the support
// settings, or 404 when neither a page nor a contact is configured.
func (a *API) getSupport(w http.ResponseWriter, r *http.Request) {
	s := a.Cfg.Support
	// Validated when the configuration was loaded.
	contacts, _ := s.ParsedContacts()
	if s.Page == "" && len(contacts) == 0 {
		httpapi.WriteError(w, r, mxerr.NotFound("No support information is configured"))
		return
	}
	body := map[string]any{}
	if len(contacts) > 0 {
		body["contacts"] = contacts
	}
	if s.Page != "" {
		body["support_page"] = s.Page
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}
