package clientapi

import (
	"net/http"
	"strconv"

	"github.com/axon-matrix/axon/internal/directory"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

func actor(r *http.Request) directory.Actor {
	c := httpapi.CallerOf(r)
	return directory.Actor{UserID: c.UserID, Admin: c.IsAdmin, AppService: c.AppService}
}

func (a *API) getRoomAlias(w http.ResponseWriter, r *http.Request) {
	roomID, servers, err := a.Directory.ResolveAlias(r.Context(), r.PathValue("roomAlias"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
}

func (a *API) putRoomAlias(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RoomID *string `json:"room_id"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.RoomID == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("room_id is required"))
		return
	}
	if err := a.Directory.CreateAlias(r.Context(), actor(r), r.PathValue("roomAlias"), *body.RoomID); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteRoomAlias(w http.ResponseWriter, r *http.Request) {
	if err := a.Directory.DeleteAlias(r.Context(), actor(r), r.PathValue("roomAlias")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getLocalAliases(w http.ResponseWriter, r *http.Request) {
	aliases, err := a.Directory.LocalAliases(r.Context(), actor(r), r.PathValue("roomId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]string{"aliases": aliases})
}

func (a *API) getDirectoryVisibility(w http.ResponseWriter, r *http.Request) {
	vis, err := a.Directory.Visibility(r.Context(), r.PathValue("roomId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"visibility": vis})
}

func (a *API) putDirectoryVisibility(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	vis := "public" // the spec's default
	if body.Visibility != nil {
		vis = *body.Visibility
	}
	if err := a.Directory.SetVisibility(r.Context(), actor(r), r.PathValue("roomId"), vis); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := directory.PublicRoomsRequest{Server: q.Get("server"), Since: q.Get("since")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			httpapi.WriteError(w, r, mxerr.InvalidParam("limit must be an integer"))
			return
		}
		req.Limit = n
	}
	a.publicRooms(w, r, req)
}

func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Limit  int    `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			GenericSearchTerm string    `json:"generic_search_term"`
			RoomTypes         []*string `json:"room_types"`
		} `json:"filter"`
		IncludeAllNetworks   bool   `json:"include_all_networks"`
		ThirdPartyInstanceID string `json:"third_party_instance_id"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.IncludeAllNetworks && body.ThirdPartyInstanceID != "" {
		httpapi.WriteError(w, r, mxerr.InvalidParam("third_party_instance_id cannot be combined with include_all_networks"))
		return
	}
	a.publicRooms(w, r, directory.PublicRoomsRequest{
		Server: r.URL.Query().Get("server"), Limit: body.Limit, Since: body.Since,
		SearchTerm: body.Filter.GenericSearchTerm, RoomTypes: body.Filter.RoomTypes,
		IncludeAllNetworks: body.IncludeAllNetworks, ThirdPartyInstance: body.ThirdPartyInstanceID,
	})
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, req directory.PublicRoomsRequest) {
	resp, err := a.Directory.PublicRooms(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
