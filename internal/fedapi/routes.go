// Package fedapi serves the server-server (federation) API: for now only
// the OpenID userinfo endpoint, which services other than homeservers also
// call to learn who holds an OpenID token.
package fedapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/httpapi"
)

// Prefix is where the federation API lives.
const Prefix = "/_matrix/federation/v1"

// API holds the services the federation handlers call.
type API struct {
	Accounts *account.Service
}

// Routes is the federation route table, under Prefix.
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{
		// openid.go: the OpenID token in the query is the only credential (no
		// X-Matrix signature: integration managers call it too).
		{Method: http.MethodGet, Path: "/openid/userinfo", Auth: httpapi.NoAuth, Handler: a.openIDUserInfo},
	}
}
