package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/keys"
)

func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request) {
	caller := httpapi.CallerOf(r)
	var body struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	err := a.Keys.SendToDevice(r.Context(), keys.ToDevice{
		Sender: caller.UserID, SenderDevice: caller.DeviceID,
		TxnID: r.PathValue("txnId"), Type: r.PathValue("eventType"),
		Messages: body.Messages,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
