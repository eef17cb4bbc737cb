package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/keys"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/sync"
)

// End-to-end encryption: device keys, one-time keys, cross-signing.

func (a *API) uploadKeys(w http.ResponseWriter, r *http.Request) {
	var body keys.UploadRequest
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c := httpapi.CallerOf(r)
	counts, err := a.Keys.Upload(r.Context(), c.UserID, c.DeviceID, body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"one_time_key_counts": counts})
}

func (a *API) queryKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceKeys map[string][]string `json:"device_keys"`
		Timeout    *int64              `json:"timeout"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.DeviceKeys == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("device_keys is required"))
		return
	}
	resp, err := a.Keys.Query(r.Context(), httpapi.CallerOf(r).UserID, body.DeviceKeys)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) claimKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		Timeout     *int64                       `json:"timeout"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.OneTimeKeys == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("one_time_keys is required"))
		return
	}
	claimer := httpapi.CallerOf(r)
	limited := claimer.UserID
	if claimer.NoRateLimit {
		limited = ""
	}
	resp, err := a.Keys.Claim(r.Context(), limited, body.OneTimeKeys)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) keyChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		httpapi.WriteError(w, r, mxerr.MissingParam("from and to are required"))
		return
	}
	from, err := sync.ParseToken(q.Get("from"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	to, err := sync.ParseToken(q.Get("to"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	changed, left, err := a.Keys.Changes(r.Context(), httpapi.CallerOf(r).UserID, from.Pos, to.Pos)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"changed": changed, "left": left})
}

func (a *API) uploadDeviceSigning(w http.ResponseWriter, r *http.Request) {
	var body keys.DeviceSigningRequest
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	body.NoAuth = httpapi.CallerOf(r).AppService != ""
	if err := a.Keys.UploadCrossSigning(r.Context(), httpapi.CallerOf(r).UserID, body); err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) uploadSignatures(w http.ResponseWriter, r *http.Request) {
	var body map[string]map[string]json.RawMessage
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	failures, err := a.Keys.UploadSignatures(r.Context(), httpapi.CallerOf(r).UserID, body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"failures": failures})
}
