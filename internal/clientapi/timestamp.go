package clientapi

import (
	"net/http"
	"strconv"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// getTimestampToEvent answers GET /v1/rooms/{roomId}/timestamp_to_event.
func (a *API) getTimestampToEvent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rawTS := q.Get("ts")
	if rawTS == "" {
		httpapi.WriteError(w, r, mxerr.MissingParam("ts is required"))
		return
	}
	ts, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil {
		httpapi.WriteError(w, r, mxerr.InvalidParam("ts must be an integer timestamp in milliseconds"))
		return
	}
	var forward bool
	switch q.Get("dir") {
	case "f":
		forward = true
	case "b":
	case "":
		httpapi.WriteError(w, r, mxerr.MissingParam("dir is required"))
		return
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("dir must be f or b"))
		return
	}
	ev, err := a.Rooms.EventAtTimestamp(r.Context(), r.PathValue("roomId"), httpapi.CallerOf(r).UserID, ts, forward)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"event_id": ev.EventID, "origin_server_ts": ev.OriginTS})
}
