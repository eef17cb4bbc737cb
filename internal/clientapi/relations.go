package clientapi

import (
	"net/http"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
)

const maxPos = int64(1) << 62

func (a *API) getRelations(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roomID := r.PathValue("roomId")
	user := httpapi.CallerOf(r).UserID
	q := r.URL.Query()
	if _, err := a.Rooms.VisibleEvent(ctx, roomID, r.PathValue("eventId"), user); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"), 50, 1000)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	forward := q.Get("dir") == "f"
	if d := q.Get("dir"); d != "" && d != "f" && d != "b" {
		httpapi.WriteError(w, r, mxerr.InvalidParam("dir must be b or f"))
		return
	}
	before, after := maxPos, int64(0)
	if f := q.Get("from"); f != "" {
		tok, err := sync.ParseToken(f)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		if forward {
			after = tok.Pos
		} else {
			before = tok.Pos + 1
		}
	}
	if t := q.Get("to"); t != "" {
		tok, err := sync.ParseToken(t)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		if forward {
			before = tok.Pos + 1
		} else {
			after = tok.Pos
		}
	}
	rows, err := a.DB.Relations(ctx, r.PathValue("eventId"), r.PathValue("relType"), r.PathValue("eventType"), before, after, limit, forward)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	a.writeEventPage(w, r, roomID, rows, limit, forward)
}

// writeEventPage writes {chunk, next_batch} for a page of stored events.
func (a *API) writeEventPage(w http.ResponseWriter, r *http.Request, roomID string, rows []*storage.Event, limit int, forward bool) {
	ctx := r.Context()
	evs, err := a.Rooms.Wrap(ctx, rows)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	visible, err := a.Rooms.FilterShown(ctx, httpapi.CallerOf(r).UserID, evs)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp := map[string]any{"chunk": a.Rooms.FormatAll(ctx, visible, viewer(r), rooms.FormatOpts{})}
	if len(rows) == limit && limit > 0 {
		last := rows[len(rows)-1].StreamPos
		if !forward {
			last--
		}
		resp["next_batch"] = sync.Token{Pos: last}.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) getThreads(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roomID := r.PathValue("roomId")
	user := httpapi.CallerOf(r).UserID
	q := r.URL.Query()
	if err := a.Rooms.MayPaginate(ctx, roomID, user); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"), 50, 1000)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	include := q.Get("include")
	if include == "" {
		include = "all"
	}
	if include != "all" && include != "participated" {
		httpapi.WriteError(w, r, mxerr.InvalidParam("include must be all or participated"))
		return
	}
	before := maxPos
	if f := q.Get("from"); f != "" {
		tok, err := sync.ParseToken(f)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		before = tok.Pos
	}
	var chunk []rooms.ClientEvent
	var next int64
	for len(chunk) < limit {
		roots, latest, err := a.DB.ThreadRoots(ctx, roomID, before, limit)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		evs, err := a.Rooms.Events(ctx, roots)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		evs, err = a.Rooms.FilterShown(ctx, user, evs)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		for _, ev := range evs {
			if include == "participated" {
				if ok, _ := a.DB.UserParticipatedInThread(ctx, ev.EventID, user); !ok {
					continue
				}
			}
			chunk = append(chunk, a.Rooms.Format(ctx, ev, viewer(r), rooms.FormatOpts{}))
		}
		if len(roots) < limit {
			next = 0
			break
		}
		before = latest[len(latest)-1]
		next = before
	}
	if chunk == nil {
		chunk = []rooms.ClientEvent{}
	}
	resp := map[string]any{"chunk": chunk}
	if next > 0 {
		resp["next_batch"] = sync.Token{Pos: next}.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}
