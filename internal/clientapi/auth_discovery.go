package clientapi

// The sign-in mechanisms Axon does not offer, answered the way the spec
// tells clients to detect that: single sign-on (sso_login_redirect.yaml)
// and the OAuth 2.0 API (oauth_server_metadata.yaml, MSC3861). Clients
// fall back to the flows GET /login lists: password and m.login.token.

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// ssoRedirect answers GET /login/sso/redirect[/{idpId}]. Without an
// identity provider there is nowhere to redirect to; GET /login does not
// list m.login.sso, so clients only come here when sent by hand. 404
// M_UNRECOGNIZED is what servers without SSO (Synapse among them) answer,
// and the spec's answer for an IdP ID the server does not know.
func (a *API) ssoRedirect(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteError(w, r, mxerr.New("M_UNRECOGNIZED", "Single sign-on is not supported by this server").WithStatus(http.StatusNotFound))
}

// authMetadata answers GET /v1/auth_metadata: 404 M_UNRECOGNIZED is how the
// spec says a server that does not support the OAuth 2.0 API tells clients
// to use the legacy login API.
func (a *API) authMetadata(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteError(w, r, mxerr.New("M_UNRECOGNIZED", "This server uses the legacy authentication API, not OAuth 2.0").WithStatus(http.StatusNotFound))
}
