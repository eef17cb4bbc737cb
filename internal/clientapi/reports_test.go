package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestReports(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, evID := sharedRoom(t, alice, bob)
	room := "/rooms/" + esc(roomID.String())

	// An event report from a member is stored with the event's sender.
	status, body := apiCall(t, r, bob, v3, http.MethodPost, room+"/report/"+esc(evID.String()), map[string]any{"reason": "spam", "score": -100})
	if status != 200 || len(body) != 0 {
		t.Fatalf("report event: %d %v", status, body)
	}
	// A reason is optional for events.
	if status, body = apiCall(t, r, bob, v3, http.MethodPost, room+"/report/"+esc(evID.String()), map[string]any{}); status != 200 {
		t.Fatalf("report event without reason: %d %v", status, body)
	}
	// Non-members, unknown events and events of other rooms are M_NOT_FOUND.
	status, body = apiCall(t, r, carol, v3, http.MethodPost, room+"/report/"+esc(evID.String()), map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, room+"/report/"+esc("$nope"), map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	other, _ := sharedRoom(t, alice, bob)
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/rooms/"+esc(other.String())+"/report/"+esc(evID.String()), map[string]any{})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, room+"/report/"+esc(evID.String()), map[string]any{"score": 5})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")

	// Rooms can be reported by anyone; the reason is required but may be blank.
	if status, body = apiCall(t, r, carol, v3, http.MethodPost, room+"/report", map[string]any{"reason": ""}); status != 200 {
		t.Fatalf("report room: %d %v", status, body)
	}
	status, body = apiCall(t, r, carol, v3, http.MethodPost, room+"/report", map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, carol, v3, http.MethodPost, "/rooms/"+esc("!missing:axon.test")+"/report", map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// Users.
	if status, body = apiCall(t, r, carol, v3, http.MethodPost, "/users/"+esc(alice.UserID.String())+"/report", map[string]any{"reason": "rude"}); status != 200 {
		t.Fatalf("report user: %d %v", status, body)
	}
	status, body = apiCall(t, r, carol, v3, http.MethodPost, "/users/"+esc("@nobody:axon.test")+"/report", map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, carol, v3, http.MethodPost, "/users/"+esc("not-a-user")+"/report", map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")

	reps, err := r.Server.DB.ListReports(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 4 {
		t.Fatalf("stored %d reports, want 4: %+v", len(reps), reps)
	}
	e, rm, u := reps[0], reps[2], reps[3]
	if e.Kind != "event" || e.Reporter != bob.UserID.String() || e.EventID != evID.String() || e.UserID != alice.UserID.String() ||
		e.Reason != "spam" || e.Score == nil || *e.Score != -100 {
		t.Fatalf("event report: %+v", e)
	}
	if rm.Kind != "room" || rm.RoomID != roomID.String() || rm.Reporter != carol.UserID.String() {
		t.Fatalf("room report: %+v", rm)
	}
	if u.Kind != "user" || u.UserID != alice.UserID.String() || u.Reason != "rude" {
		t.Fatalf("user report: %+v", u)
	}
	if err := r.Server.DB.ResolveReport(ctx, e.ID, 1); err != nil {
		t.Fatal(err)
	}
	if reps, _ = r.Server.DB.ListReports(ctx, false); len(reps) != 3 {
		t.Fatalf("%d open reports after resolving one", len(reps))
	}
}

func TestReportsRateLimited(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) {
		c.RateLimits = true
		c.RateLimit.Message = config.RateLimit{PerSecond: 0.001, Burst: 2}
	})
	alice := r.CreateUser("alice")
	path := "/users/" + esc(alice.UserID.String()) + "/report"
	bob := r.CreateUser("bob")
	for i := range 2 {
		if status, body := apiCall(t, r, bob, v3, http.MethodPost, path, map[string]any{"reason": "x"}); status != 200 {
			t.Fatalf("report %d: %d %v", i, status, body)
		}
	}
	status, body := apiCall(t, r, bob, v3, http.MethodPost, path, map[string]any{"reason": "x"})
	wantAPIError(t, status, body, 429, "M_LIMIT_EXCEEDED")
}
