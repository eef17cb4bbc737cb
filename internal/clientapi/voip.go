package clientapi

import (
	"net/http"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/voip"
)

// getTURNServer answers GET /voip/turnServer. Without a configured TURN
// server the answer is an empty object, which clients take as "no TURN".
func (a *API) getTURNServer(w http.ResponseWriter, r *http.Request) {
	creds := voip.TURNCredentials(a.Cfg.TURN, httpapi.CallerOf(r).UserID, time.Now())
	if creds == nil {
		httpapi.WriteJSON(w, http.StatusOK, struct{}{})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, creds)
}
