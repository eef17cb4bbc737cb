package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
)

// Thread subscriptions (MSC4306) at the MSC's unstable paths, served when
// experimental.msc4306_thread_subscriptions is on.

func (a *API) getThreadSubscription(w http.ResponseWriter, r *http.Request) {
	automatic, err := a.ThreadSubs.ThreadSubscription(r.Context(), r.PathValue("roomId"), r.PathValue("eventId"), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"automatic": automatic})
}

func (a *API) putThreadSubscription(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Automatic *string `json:"automatic"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := a.ThreadSubs.SubscribeThread(r.Context(), r.PathValue("roomId"), r.PathValue("eventId"), httpapi.CallerOf(r).UserID, body.Automatic); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) deleteThreadSubscription(w http.ResponseWriter, r *http.Request) {
	if err := a.ThreadSubs.UnsubscribeThread(r.Context(), r.PathValue("roomId"), r.PathValue("eventId"), httpapi.CallerOf(r).UserID); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
