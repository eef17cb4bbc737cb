package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

// getRoomSummary is GET /v1/room_summary/{roomIdOrAlias} (spec 1.15). The
// via parameter names servers to ask over federation; this server only
// describes rooms it knows, so via is accepted and has nothing to act on.
func (a *API) getRoomSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := a.Spaces.RoomSummary(r.Context(), r.PathValue("roomIdOrAlias"), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, sum)
}
