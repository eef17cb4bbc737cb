package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// requireSelf refuses requests that act on another user's data.
func requireSelf(r *http.Request, userID string) error {
	if userID != httpapi.CallerOf(r).UserID {
		return mxerr.Forbidden("Cannot act on behalf of another user")
	}
	return nil
}

func (a *API) getAccountData(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := a.AccountData.Get(r.Context(), r.PathValue("userId"), r.PathValue("roomId"), r.PathValue("type"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, c)
}

func (a *API) putAccountData(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.AccountData.Put(r.Context(), r.PathValue("userId"), r.PathValue("roomId"), r.PathValue("type"), body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

// deleteAccountData is MSC3391's DELETE, at its unstable path only (the
// spec has none yet).
func (a *API) deleteAccountData(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.AccountData.Delete(r.Context(), r.PathValue("userId"), r.PathValue("roomId"), r.PathValue("type")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) getTags(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	tags, err := a.AccountData.Tags(r.Context(), r.PathValue("userId"), r.PathValue("roomId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]map[string]json.RawMessage{"tags": tags})
}

func (a *API) putTag(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.AccountData.SetTag(r.Context(), r.PathValue("userId"), r.PathValue("roomId"), r.PathValue("tag"), body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteTag(w http.ResponseWriter, r *http.Request) {
	if err := requireSelf(r, r.PathValue("userId")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.AccountData.DeleteTag(r.Context(), r.PathValue("userId"), r.PathValue("roomId"), r.PathValue("tag")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
