package clientapi

// The spec's OpenID module: a token that proves to another service which
// user holds it, checked through GET /_matrix/federation/v1/openid/userinfo
// (internal/fedapi). The logic is in internal/account.

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

func (a *API) requestOpenIDToken(w http.ResponseWriter, r *http.Request) {
	// The body is an empty object reserved for later use; it must still be
	// a JSON object.
	var body struct{}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	tok, err := a.Accounts.NewOpenIDToken(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("userId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token":       tok.Token,
		"token_type":         "Bearer",
		"matrix_server_name": a.Cfg.ServerName,
		"expires_in":         int64(tok.ExpiresIn.Seconds()),
	})
}
