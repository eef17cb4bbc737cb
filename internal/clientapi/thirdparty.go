package clientapi

// Handlers of the spec's "Third-party Lookup" module: protocols, locations
// and users of the networks the application services bridge. The lookups
// are forwarded to the services (internal/appservice).

import (
	"net/http"
	"net/url"

	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func (a *API) getProtocols(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, a.AppServices.Protocols(r.Context()))
}

func (a *API) getProtocol(w http.ResponseWriter, r *http.Request) {
	p, err := a.AppServices.Protocol(r.Context(), r.PathValue("protocol"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, p)
}

// thirdPartyByProtocol answers /thirdparty/location/{protocol} and
// /thirdparty/user/{protocol}; the query parameters are the search fields.
func (a *API) thirdPartyByProtocol(kind appservice.ThirdPartyKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fields := url.Values{}
		for k, v := range r.URL.Query() {
			if k != "access_token" && k != "user_id" && k != "device_id" {
				fields[k] = v
			}
		}
		out, err := a.AppServices.LookupByProtocol(r.Context(), kind, r.PathValue("protocol"), fields)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	}
}

// thirdPartyReverse answers /thirdparty/location?alias= and
// /thirdparty/user?userid=.
func (a *API) thirdPartyReverse(kind appservice.ThirdPartyKind, param string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get(param)
		if v == "" {
			httpapi.WriteError(w, r, mxerr.MissingParam("Missing %s", param))
			return
		}
		out, err := a.AppServices.LookupReverse(r.Context(), kind, v)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	}
}
