package clientapi_test

import (
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

// A left room in /sync with an empty timeline (limit 0) shows the state as
// it was when the user left, not what changed after.
func TestLeftRoomStateWithEmptyTimeline(t *testing.T) {
	testState := event.Type{Type: "a.test.state", Class: event.StateEventType}
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	testrig.Join(t, room, bob)
	if _, err := alice.SendStateEvent(t.Context(), room, testState, "", map[string]any{"my_key": "before"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.LeaveRoom(t.Context(), room); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(t.Context(), room, testState, "", map[string]any{"my_key": "after"}); err != nil {
		t.Fatal(err)
	}
	body := syncRaw(t, r, bob.AccessToken, url.Values{"filter": {`{"room":{"include_leave":true,"timeline":{"limit":0}}}`}})
	left, _ := body["rooms"].(map[string]any)["leave"].(map[string]any)[room.String()].(map[string]any)
	if left == nil {
		t.Fatalf("left room missing: %v", body["rooms"])
	}
	if evs := left["timeline"].(map[string]any)["events"].([]any); len(evs) != 0 {
		t.Fatalf("timeline not empty: %v", evs)
	}
	found := false
	for _, e := range left["state"].(map[string]any)["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "a.test.state" {
			found = true
			if got := ev["content"].(map[string]any)["my_key"]; got != "before" {
				t.Fatalf("left room state shows %v, set after bob left", got)
			}
		}
	}
	if !found {
		t.Fatal("the state from before the leave is missing")
	}
}
