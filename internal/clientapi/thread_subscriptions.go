package clientapi

import (
	"net/http"
	"strconv"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/threadsubs"
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

// getThreadSubscriptionChanges is MSC4308's companion endpoint: it walks
// back through the changes a sliding sync answer left out (from its
// prev_batch), newest first.
func (a *API) getThreadSubscriptionChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := threadsubs.DefaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			httpapi.WriteError(w, r, mxerr.InvalidParam("limit must be a number"))
			return
		}
		limit = n
	}
	page, err := a.ThreadSubs.Paginate(r.Context(), httpapi.CallerOf(r).UserID, q.Get("dir"), q.Get("from"), limit)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := map[string]any{"subscribed": page.Subscribed, "unsubscribed": page.Unsubscribed}
	if page.Subscribed == nil {
		out["subscribed"] = map[string]any{}
	}
	if page.Unsubscribed == nil {
		out["unsubscribed"] = map[string]any{}
	}
	if page.More != "" {
		out["end"] = page.More
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
