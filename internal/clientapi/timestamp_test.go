package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestTimestampToEvent(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, _ := sharedRoom(t, alice, bob)
	send := func(text string) (id.EventID, int64) {
		t.Helper()
		time.Sleep(3 * time.Millisecond) // distinct timestamps
		resp, err := alice.SendText(ctx, roomID, text)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := alice.GetEvent(ctx, roomID, resp.EventID)
		if err != nil {
			t.Fatal(err)
		}
		return resp.EventID, ev.Timestamp
	}
	first, ts1 := send("one")
	second, ts2 := send("two")
	path := func(ts int64, dir string) string {
		return fmt.Sprintf("/rooms/%s/timestamp_to_event?ts=%d&dir=%s", esc(roomID.String()), ts, dir)
	}
	for _, c := range []struct {
		ts      int64
		dir     string
		want    id.EventID
		wantTS  int64
		comment string
	}{
		{ts1, "f", first, ts1, "exact, forward"},
		{ts1, "b", first, ts1, "exact, backward"},
		{ts1 + 1, "f", second, ts2, "after the first"},
		{ts2 - 1, "b", first, ts1, "before the second"},
		{ts2 + 1000, "b", second, ts2, "latest"},
	} {
		status, body := apiCall(t, r, bob, v1, http.MethodGet, path(c.ts, c.dir), nil)
		if status != 200 || body["event_id"] != c.want.String() || body["origin_server_ts"] != float64(c.wantTS) {
			t.Fatalf("%s: %d %v, want %s", c.comment, status, body, c.want)
		}
	}
	status, body := apiCall(t, r, bob, v1, http.MethodGet, path(ts2+1000, "f"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, path(1, "b"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, carol, v1, http.MethodGet, path(ts1, "f"), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, path(ts1, "x"), nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/rooms/"+esc(roomID.String())+"/timestamp_to_event?dir=f", nil)
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/rooms/"+esc(roomID.String())+"/timestamp_to_event?ts=1", nil)
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/rooms/"+esc("!missing:axon.test")+"/timestamp_to_event?ts=1&dir=f", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// An event before bob could see the room is skipped for him: a room
	// with shared history restricted to joined members.
	resp := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	if _, err := alice.SendStateEvent(ctx, resp, event.StateHistoryVisibility, "", map[string]any{"history_visibility": "joined"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond) // the message gets a timestamp of its own
	hidden := testrig.SendText(t, alice, resp, "before bob")
	hiddenEv, _ := alice.GetEvent(ctx, resp, hidden)
	time.Sleep(3 * time.Millisecond)
	testrig.Join(t, resp, bob)
	status, body = apiCall(t, r, bob, v1, http.MethodGet, fmt.Sprintf("/rooms/%s/timestamp_to_event?ts=%d&dir=f", esc(resp.String()), hiddenEv.Timestamp), nil)
	if status != 200 || body["event_id"] == hidden.String() {
		t.Fatalf("hidden event: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v1, http.MethodGet, fmt.Sprintf("/rooms/%s/timestamp_to_event?ts=%d&dir=f", esc(resp.String()), hiddenEv.Timestamp), nil)
	if status != 200 || body["event_id"] != hidden.String() {
		t.Fatalf("alice: %d %v", status, body)
	}
}
