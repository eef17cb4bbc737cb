package fedapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

// openIDUserInfo answers GET /openid/userinfo?access_token=: the user an
// OpenID token from /openid/request_token belongs to.
func (a *API) openIDUserInfo(w http.ResponseWriter, r *http.Request) {
	user, err := a.Accounts.OpenIDUser(r.Context(), r.URL.Query().Get("access_token"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"sub": user})
}
