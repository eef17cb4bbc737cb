package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/httpapi"
)

// getLoginToken answers POST /v1/login/get_token: after the account
// password is confirmed, a short-lived single-use token for the
// m.login.token login of a new device.
func (a *API) getLoginToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth *account.AuthDict `json:"auth"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	tok, err := a.Accounts.NewLoginToken(r.Context(), httpapi.CallerOf(r).UserID, body.Auth)
	if err != nil {
		writeAccountError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"login_token": tok.Token, "expires_in_ms": tok.ExpiresIn.Milliseconds()})
}
