package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/notices"
)

// sendServerNotice is Synapse's admin API POST
// /_synapse/admin/v1/send_server_notice and its idempotent PUT
// .../{txnId}: {"user_id", "content", "type"?, "state_key"?}.
func (a *API) sendServerNotice(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	caller := notices.Caller{UserID: c.UserID, DeviceID: c.DeviceID, IsAdmin: c.IsAdmin, TxnID: r.PathValue("txnId")}
	var n notices.Notice
	if c.IsAdmin {
		// Only an admin's body is worth reading: anyone else is refused
		// whatever they sent.
		if err := httpapi.DecodeJSON(r, &n); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	eventID, err := a.Notices.Send(r.Context(), caller, n)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
}
