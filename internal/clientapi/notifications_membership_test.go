package clientapi_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestNotificationsFollowMembershipHistory: /notifications lists what
// notified the user while they were joined. A display-name change (a new
// member event with the same membership) hides nothing; what was sent while
// the user had left stays hidden after they rejoin.
func TestNotificationsFollowMembershipHistory(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	testrig.Join(t, room, alice)
	// Every message mentions alice, so that each one notifies her whatever
	// the member count.
	send := func(body string) {
		t.Helper()
		content := map[string]any{"msgtype": "m.text", "body": body, "m.mentions": map[string]any{"user_ids": []string{alice.UserID.String()}}}
		if _, err := bob.SendMessageEvent(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
	}
	notified := func() []string {
		t.Helper()
		status, body := apiCall(t, r, alice, v3, http.MethodGet, "/notifications", nil)
		if status != 200 {
			t.Fatalf("notifications: %d %v", status, body)
		}
		out := []string{}
		for _, n := range body["notifications"].([]any) {
			ev := n.(map[string]any)["event"].(map[string]any)
			if b, ok := ev["content"].(map[string]any)["body"].(string); ok {
				out = append(out, b)
			}
		}
		return out
	}
	want := func(what string, bodies ...string) {
		t.Helper()
		if got := notified(); !reflect.DeepEqual(got, bodies) {
			t.Errorf("%s: notifications %v, want %v", what, got, bodies)
		}
	}

	send("before rename")
	want("joined", "before rename")
	if err := alice.SetDisplayName(ctx, "Alice Liddell"); err != nil {
		t.Fatal(err)
	}
	// The profile change reached the room as a new member event.
	var me struct {
		Displayname string `json:"displayname"`
	}
	if err := alice.StateEvent(ctx, room, event.StateMember, alice.UserID.String(), &me); err != nil || me.Displayname != "Alice Liddell" {
		t.Fatalf("member event after rename: %v %+v", err, me)
	}
	want("after rename", "before rename")
	send("after rename")
	want("after rename, new message", "after rename", "before rename")

	if _, err := alice.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	send("while away")
	testrig.Join(t, room, alice)
	send("after rejoin")
	want("after rejoin", "after rejoin", "after rename", "before rename")

	// A state event with the same membership sent directly (not through
	// the profile) behaves like the rename.
	if _, err := alice.SendStateEvent(ctx, room, event.StateMember, alice.UserID.String(),
		map[string]any{"membership": "join", "displayname": "A."}); err != nil {
		t.Fatal(err)
	}
	want("after second rename", "after rejoin", "after rename", "before rename")
}
