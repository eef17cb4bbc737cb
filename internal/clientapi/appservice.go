package clientapi

// Handlers of the Application Service API's client-server extensions:
// registration and login with m.login.application_service (called from
// account.go), POST /v1/appservice/{appserviceId}/ping and the services'
// network room directories. The logic is in internal/appservice.

import (
	"net/http"
	"strconv"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func (a *API) registerAppService(w http.ResponseWriter, r *http.Request, req appservice.RegisterRequest) {
	reg, err := a.AppServices.Register(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if reg.Session == nil {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"user_id": reg.UserID, "home_server": a.Cfg.ServerName})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.sessionJSON(reg.Session))
}

// loginAppService takes the user from the identifier (or the deprecated
// top-level user field already in req).
func (a *API) loginAppService(w http.ResponseWriter, r *http.Request, ident *account.Identifier, req appservice.LoginRequest) {
	if ident != nil {
		if ident.Type != "m.id.user" {
			httpapi.WriteError(w, r, mxerr.New("M_UNKNOWN", "Application services log in with an m.id.user identifier").WithStatus(http.StatusBadRequest))
			return
		}
		req.User = ident.User
	}
	s, err := a.AppServices.Login(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.sessionJSON(s))
}

func (a *API) pingAppService(w http.ResponseWriter, r *http.Request) {
	var body struct {
		TransactionID string `json:"transaction_id"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	took, err := a.AppServices.Ping(r.Context(), r.PathValue("appserviceId"), httpapi.CallerOf(r).AppService, body.TransactionID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]int64{"duration_ms": took.Milliseconds()})
}

func (a *API) putAppServiceRoomVisibility(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Visibility == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("visibility is required"))
		return
	}
	err := a.AppServices.SetRoomVisibility(r.Context(), httpapi.CallerOf(r).AppService, r.PathValue("networkId"), r.PathValue("roomId"), *body.Visibility)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// massagedTS reads the ts parameter with which an application service
// dates the event it sends (timestamp massaging); 0 when there is none or
// the caller is not a service, for whom the parameter means nothing.
func massagedTS(r *http.Request) (int64, error) {
	raw := r.URL.Query().Get("ts")
	if raw == "" || httpapi.CallerOf(r).AppService == "" {
		return 0, nil
	}
	ts, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ts <= 0 || ts > 1<<53-1 {
		return 0, mxerr.InvalidParam("ts must be a timestamp in milliseconds")
	}
	return ts, nil
}
