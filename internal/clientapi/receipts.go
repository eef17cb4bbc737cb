package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/receipts"
)

func (a *API) postReceipt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ThreadID json.RawMessage `json:"thread_id"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var thread *string
	if body.ThreadID != nil {
		var s string
		if err := json.Unmarshal(body.ThreadID, &s); err != nil {
			httpapi.WriteError(w, r, mxerr.InvalidParam("thread_id field must be a non-empty string"))
			return
		}
		thread = &s
	}
	err := a.Receipts.Post(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("roomId"),
		r.PathValue("receiptType"), r.PathValue("eventId"), thread)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) setReadMarkers(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FullyRead   *string `json:"m.fully_read"`
		Read        *string `json:"m.read"`
		ReadPrivate *string `json:"m.read.private"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var m receipts.Markers
	for _, f := range []struct {
		name string
		v    *string
		into *string
	}{
		{"m.fully_read", body.FullyRead, &m.FullyRead},
		{"m.read", body.Read, &m.Read},
		{"m.read.private", body.ReadPrivate, &m.ReadPrivate},
	} {
		if f.v == nil {
			continue
		}
		if *f.v == "" {
			httpapi.WriteError(w, r, mxerr.InvalidParam("%s must be an event ID", f.name))
			return
		}
		*f.into = *f.v
	}
	if err := a.Receipts.SetMarkers(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("roomId"), m); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
