package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestJoinBodyContent: the keys of a /join body other than its parameters
// go into the member event, by room ID and by alias, but the keys the
// server sets (membership, join_authorised_via_users_server, third-party
// invites) are never taken from the client.
func TestJoinBodyContent(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "joinbody"})
	alias := "#joinbody:" + r.UserID("x").Homeserver()

	for _, c := range []struct {
		who    *mautrix.Client
		target string
	}{{bob, room.String()}, {carol, alias}} {
		status, body := apiCall(t, r, c.who, v3, http.MethodPost, "/join/"+esc(c.target), map[string]any{
			"foo": "bar", "reason": "hi",
			"membership": "leave", "join_authorised_via_users_server": alice.UserID,
			"third_party_invite": map[string]any{"signed": map[string]any{}}, "third_party_signed": nil,
		})
		if status != http.StatusOK || body["room_id"] != room.String() {
			t.Fatalf("join %s: %d %v", c.target, status, body)
		}
		got := memberContent(t, r, alice, room, c.who.UserID)
		if got["membership"] != "join" || got["foo"] != "bar" || got["reason"] != "hi" {
			t.Fatalf("join %s: member content %v", c.target, got)
		}
		for _, k := range []string{"join_authorised_via_users_server", "third_party_invite", "third_party_signed"} {
			if _, has := got[k]; has {
				t.Fatalf("join %s: the client set %s: %v", c.target, k, got)
			}
		}
	}

	// A restricted room sets the authoriser itself, whatever the client names.
	dave := r.CreateUser("dave")
	space := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	testrig.Join(t, space, dave)
	restricted := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat",
		InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
			"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}}}}}}})
	status, body := apiCall(t, r, dave, v3, http.MethodPost, "/rooms/"+esc(restricted.String())+"/join", map[string]any{
		"join_authorised_via_users_server": dave.UserID, "foo": 1})
	if status != http.StatusOK {
		t.Fatalf("restricted join: %d %v", status, body)
	}
	got := memberContent(t, r, alice, restricted, dave.UserID)
	if got["join_authorised_via_users_server"] != alice.UserID.String() || got["foo"] != float64(1) {
		t.Fatalf("restricted join content %v", got)
	}
}
