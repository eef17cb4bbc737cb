package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/sync"
)

func (a *API) getRelations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.RelationsRequest{
		RoomID: r.PathValue("roomId"), EventID: r.PathValue("eventId"), User: httpapi.CallerOf(r).UserID,
		RelType: r.PathValue("relType"), EventType: r.PathValue("eventType"),
	}
	var err error
	if req.Limit, err = parseLimit(q.Get("limit"), 50, 1000); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	switch q.Get("dir") {
	case "", "b":
	case "f":
		req.Forward = true
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("dir must be b or f"))
		return
	}
	recurse := q.Get("recurse")
	switch recurse {
	case "", "false":
	case "true":
		req.Recurse = true
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("recurse must be true or false"))
		return
	}
	if req.From, err = optionalPosition(q.Get("from")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if req.To, err = optionalPosition(q.Get("to")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	page, err := a.Rooms.Relations(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp := map[string]any{"chunk": a.Rooms.FormatAll(r.Context(), page.Events, viewer(r), rooms.FormatOpts{})}
	if page.HasNext {
		resp["next_batch"] = sync.Token{Pos: page.Next}.String()
	}
	if f := q.Get("from"); f != "" {
		resp["prev_batch"] = f
	}
	// The spec: present exactly when the client gave recurse.
	if recurse != "" {
		depth := 1
		if req.Recurse {
			depth = rooms.RecursionDepth
		}
		resp["recursion_depth"] = depth
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) getThreads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.ThreadsRequest{RoomID: r.PathValue("roomId"), User: httpapi.CallerOf(r).UserID}
	var err error
	if req.Limit, err = parseLimit(q.Get("limit"), 50, 1000); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	switch q.Get("include") {
	case "", "all":
	case "participated":
		req.Participated = true
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("include must be all or participated"))
		return
	}
	if req.Before, err = optionalPosition(q.Get("from")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	page, err := a.Rooms.Threads(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp := map[string]any{"chunk": a.Rooms.FormatAll(r.Context(), page.Roots, viewer(r), rooms.FormatOpts{})}
	if page.HasNext {
		resp["next_batch"] = sync.Token{Pos: page.Next}.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// optionalPosition parses an optional pagination token into its stream
// position (nil when absent).
func optionalPosition(s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	tok, err := sync.ParseToken(s)
	if err != nil {
		return nil, err
	}
	return &tok.Pos, nil
}
