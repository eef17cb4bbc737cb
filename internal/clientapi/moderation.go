package clientapi

// Handlers of the spec's "Account moderation" admin endpoints (v1.18):
// GET/PUT /v1/admin/lock/{userId} and /v1/admin/suspend/{userId}. The
// rules are in internal/account (moderation.go).

import (
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// restrictionField is the JSON field of each restriction.
var restrictionField = map[account.Restriction]string{account.Lock: "locked", account.Suspend: "suspended"}

func (a *API) getRestriction(what account.Restriction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := httpapi.CallerOf(r)
		on, err := a.Accounts.Restricted(r.Context(), c.UserID, c.IsAdmin, r.PathValue("userId"), what)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]bool{restrictionField[what]: on})
	}
}

func (a *API) putRestriction(what account.Restriction) http.HandlerFunc {
	field := restrictionField[what]
	return func(w http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		if err := httpapi.DecodeJSON(r, &body); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		raw, ok := body[field]
		if !ok {
			httpapi.WriteError(w, r, mxerr.MissingParam("Missing %s", field))
			return
		}
		var on bool
		if err := json.Unmarshal(raw, &on); err != nil || string(raw) == "null" {
			httpapi.WriteError(w, r, mxerr.BadJSON("%s must be true or false", field))
			return
		}
		c := httpapi.CallerOf(r)
		if err := a.Accounts.SetRestricted(r.Context(), c.UserID, c.IsAdmin, r.PathValue("userId"), what, on); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]bool{field: on})
	}
}
