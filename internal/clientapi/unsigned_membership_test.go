package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// MSC4115: every event served to a client says the viewer's membership
// when it was sent (after it, for the viewer's own member events).
func TestUnsignedMembership(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	pre := testrig.SendText(t, alice, room, "prejoin")
	testrig.Join(t, room, bob)
	post := testrig.SendText(t, alice, room, "postjoin")

	want := map[id.EventID]string{pre: "leave", post: "join"}
	resp, err := bob.SyncRequest(t.Context(), 0, "", "", false, "offline")
	if err != nil {
		t.Fatal(err)
	}
	sawJoin := false
	for _, ev := range resp.Rooms.Join[room].Timeline.Events {
		m := ev.Unsigned.Membership
		if ev.StateKey != nil && *ev.StateKey == bob.UserID.String() {
			sawJoin = true
		}
		expect := "leave"
		if sawJoin {
			expect = "join"
		}
		if string(m) != expect {
			t.Errorf("sync: %s %s has unsigned.membership %q, want %q", ev.Type, ev.ID, m, expect)
		}
	}
	status, body := apiCall(t, r, bob, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?"+url.Values{"dir": {"b"}, "limit": {"50"}}.Encode(), nil)
	if status != 200 {
		t.Fatalf("messages: %d %v", status, body)
	}
	found := 0
	for _, e := range body["chunk"].([]any) {
		ev := e.(map[string]any)
		if w, ok := want[id.EventID(ev["event_id"].(string))]; ok {
			found++
			if got := ev["unsigned"].(map[string]any)["membership"]; got != w {
				t.Errorf("messages: %s has unsigned.membership %v, want %s", ev["event_id"], got, w)
			}
		}
	}
	if found != 2 {
		t.Fatalf("messages: found %d of the 2 messages", found)
	}
	// Alice, the creator, was a member for all of it.
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/event/"+esc(pre.String()), nil)
	if status != 200 || body["unsigned"].(map[string]any)["membership"] != "join" {
		t.Fatalf("event as alice: %d %v", status, body)
	}
}
