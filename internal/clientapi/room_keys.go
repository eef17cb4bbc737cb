package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/keys"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// Server-side key backup (/room_keys).

func (a *API) createBackupVersion(w http.ResponseWriter, r *http.Request) {
	var body keys.BackupVersionRequest
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v, err := a.Keys.CreateBackup(r.Context(), httpapi.CallerOf(r).UserID, body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"version": v})
}

func (a *API) getBackupVersion(w http.ResponseWriter, r *http.Request) {
	info, err := a.Keys.Backup(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("version"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, info)
}

func (a *API) putBackupVersion(w http.ResponseWriter, r *http.Request) {
	var body keys.BackupVersionRequest
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.Keys.UpdateBackup(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("version"), body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteBackupVersion(w http.ResponseWriter, r *http.Request) {
	if err := a.Keys.DeleteBackup(r.Context(), httpapi.CallerOf(r).UserID, r.PathValue("version")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// putRoomKeys serves PUT /room_keys/keys[/{roomId}[/{sessionId}]]: the
// body is all rooms, one room's sessions, or one session.
func (a *API) putRoomKeys(w http.ResponseWriter, r *http.Request) {
	roomID, sessionID := r.PathValue("roomId"), r.PathValue("sessionId")
	var all keys.KeysBackup
	var err error
	switch {
	case sessionID != "":
		var k keys.KeyBackupData
		err = httpapi.DecodeJSON(r, &k)
		all.Rooms = map[string]keys.RoomKeyBackup{roomID: {Sessions: map[string]keys.KeyBackupData{sessionID: k}}}
	case roomID != "":
		var room keys.RoomKeyBackup
		err = httpapi.DecodeJSON(r, &room)
		all.Rooms = map[string]keys.RoomKeyBackup{roomID: room}
	default:
		err = httpapi.DecodeJSON(r, &all)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	counts, err := a.Keys.PutBackupKeys(r.Context(), httpapi.CallerOf(r).UserID, r.URL.Query().Get("version"), all)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, counts)
}

func (a *API) getRoomKeys(w http.ResponseWriter, r *http.Request) {
	roomID, sessionID := r.PathValue("roomId"), r.PathValue("sessionId")
	all, err := a.Keys.BackupKeys(r.Context(), httpapi.CallerOf(r).UserID, r.URL.Query().Get("version"), roomID, sessionID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	switch {
	case sessionID != "":
		k, ok := all.Rooms[roomID].Sessions[sessionID]
		if !ok {
			httpapi.WriteError(w, r, mxerr.NotFound("No backed-up key for this session"))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, k)
	case roomID != "":
		room, ok := all.Rooms[roomID]
		if !ok {
			room = keys.RoomKeyBackup{Sessions: map[string]keys.KeyBackupData{}}
		}
		httpapi.WriteJSON(w, http.StatusOK, room)
	default:
		httpapi.WriteJSON(w, http.StatusOK, all)
	}
}

func (a *API) deleteRoomKeys(w http.ResponseWriter, r *http.Request) {
	counts, err := a.Keys.DeleteBackupKeys(r.Context(), httpapi.CallerOf(r).UserID, r.URL.Query().Get("version"),
		r.PathValue("roomId"), r.PathValue("sessionId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, counts)
}
