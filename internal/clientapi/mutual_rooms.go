package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

// mutualRoomsPageSize is how many rooms one /mutual_rooms answer holds.
const mutualRoomsPageSize = 100

// getMutualRooms answers GET /v1/mutual_rooms?user_id= (also served at
// /v1/user/mutual_rooms, the path of the proposal it came from).
func (a *API) getMutualRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := a.Rooms.MutualRooms(r.Context(), httpapi.CallerOf(r).UserID, q.Get("user_id"), q.Get("from"), mutualRoomsPageSize)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}
