package clientapi

// Handlers of the spec's room previews module and the older sync API it
// builds on: GET /events (the event stream, or one room's with room_id),
// GET /events/{eventId}, GET /initialSync and GET /rooms/{roomId}/initialSync.
// The logic is in internal/sync (legacy.go).

import (
	"net/http"
	"strconv"
	"time"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/sync"
)

// maxInitialSyncLimit caps the messages per room of the initialSync endpoints.
const maxInitialSyncLimit = 100

func (a *API) getEvents(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	req := sync.EventsRequest{UserID: c.UserID, DeviceID: c.DeviceID, RoomID: q.Get("room_id"), From: q.Get("from")}
	// Guests may use /events only as the spec's room previews do, on one room.
	if c.IsGuest && req.RoomID == "" {
		httpapi.WriteError(w, r, mxerr.New("M_GUEST_ACCESS_FORBIDDEN", "Guests may only peek into a room with room_id"))
		return
	}
	if q.Has("room_id") && (req.RoomID == "" || req.RoomID[0] != '!') {
		httpapi.WriteError(w, r, mxerr.InvalidParam("room_id must be a room ID"))
		return
	}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			httpapi.WriteError(w, r, mxerr.InvalidParam("timeout must be a non-negative integer"))
			return
		}
		req.Timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	page, err := a.Sync.Events(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}

func (a *API) getEventByID(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	ev, err := a.Sync.Event(r.Context(), r.PathValue("eventId"), c.UserID, c.DeviceID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ev)
}

func (a *API) getInitialSync(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	q := r.URL.Query()
	req := sync.InitialSyncRequest{UserID: c.UserID, DeviceID: c.DeviceID}
	var err error
	if req.Limit, err = parseLimit(q.Get("limit"), sync.DefaultInitialSyncLimit, maxInitialSyncLimit); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	switch q.Get("archived") {
	case "", "false":
	case "true":
		req.Archived = true
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("archived must be true or false"))
		return
	}
	resp, err := a.Sync.InitialSync(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) getRoomInitialSync(w http.ResponseWriter, r *http.Request) {
	c := httpapi.CallerOf(r)
	limit, err := parseLimit(r.URL.Query().Get("limit"), sync.DefaultInitialSyncLimit, maxInitialSyncLimit)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	snap, err := a.Sync.RoomInitialSync(r.Context(), r.PathValue("roomId"), c.UserID, c.DeviceID, limit)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, snap)
}
