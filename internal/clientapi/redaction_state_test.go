package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestStateEventOfRedactionTypeRedactsNothing: an m.room.redaction sent as
// a state event (PUT /state/m.room.redaction/{key}) with content.redacts is
// an ordinary state event. It is not given a top-level redacts (clients
// would hide the target), it redacts nothing, and a suspended user cannot
// send one by naming their own event, as they may for a real redaction.
func TestStateEventOfRedactionTypeRedactsNothing(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	root := createAdmin(t, r, "root")
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	for _, version := range []id.RoomVersion{"10", "11", "12"} {
		users := map[id.UserID]int{bob.UserID: 50}
		if version != "12" { // v12 creators are above power levels and must not be listed
			users[alice.UserID] = 100
		}
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: version,
			PowerLevelOverride: &event.PowerLevelsEventContent{Users: users}})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		testrig.Join(t, room, bob)
		target := testrig.SendText(t, bob, room, "keep me")
		status, body := apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/state/m.room.redaction/k",
			map[string]any{"redacts": target.String(), "reason": "not a redaction"})
		if status != 200 {
			t.Fatalf("v%s: state m.room.redaction: %d %v", version, status, body)
		}
		stateID, _ := body["event_id"].(string)

		getEvent := func(evID string) map[string]any {
			t.Helper()
			status, ev := apiCall(t, r, bob, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/event/"+esc(evID), nil)
			if status != 200 {
				t.Fatalf("v%s: event %s: %d %v", version, evID, status, ev)
			}
			return ev
		}
		ev := getEvent(stateID)
		if _, has := ev["redacts"]; has || ev["state_key"] != "k" {
			t.Errorf("v%s: state event formatted with a top-level redacts: %v", version, ev)
		}
		if c, _ := ev["content"].(map[string]any); c["redacts"] != target.String() {
			t.Errorf("v%s: state event content changed: %v", version, ev)
		}
		tev := getEvent(target.String())
		if c, _ := tev["content"].(map[string]any); c["body"] != "keep me" {
			t.Errorf("v%s: the target was redacted: %v", version, tev)
		}
		if u, _ := tev["unsigned"].(map[string]any); u["redacted_because"] != nil {
			t.Errorf("v%s: the target has redacted_because: %v", version, tev)
		}
		// In /sync too.
		sr, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range sr.Rooms.Join[room].Timeline.Events {
			if e.ID.String() == stateID {
				found = true
				if e.Redacts != "" {
					t.Errorf("v%s: /sync gives the state event redacts %s", version, e.Redacts)
				}
			}
			if e.ID == target && e.Unsigned.RedactedBecause != nil {
				t.Errorf("v%s: /sync shows the target redacted", version)
			}
		}
		if !found {
			t.Errorf("v%s: state event not in /sync timeline", version)
		}
		// A real redaction still carries redacts.
		red, err := alice.RedactEvent(ctx, room, target)
		if err != nil {
			t.Fatal(err)
		}
		if rev := getEvent(red.EventID.String()); rev["redacts"] != target.String() {
			t.Errorf("v%s: real redaction lacks redacts: %v", version, rev)
		}

		// Suspended, bob may redact his own event but not send state
		// dressed up as a redaction of it.
		own := testrig.SendText(t, bob, room, "mine")
		restrict(t, r, root, "suspend", bob.UserID, true)
		status, body = apiCall(t, r, bob, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/state/m.room.redaction/x",
			map[string]any{"redacts": own.String()})
		wantAPIError(t, status, body, 403, "M_USER_SUSPENDED", "v"+version+" suspended state m.room.redaction")
		if _, err := bob.RedactEvent(ctx, room, own); err != nil {
			t.Errorf("v%s: suspended user redacting own event: %v", version, err)
		}
		restrict(t, r, root, "suspend", bob.UserID, false)
	}
}
