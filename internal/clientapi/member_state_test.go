package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// A membership change sent as a raw m.room.member state event takes the
// checks of the membership endpoints: the restricted-join condition, guest
// access and who may be invited. join_authorised_via_users_server is the
// server's to set.

func putMember(t *testing.T, r *testrig.Rig, c *mautrix.Client, roomID id.RoomID, target id.UserID, content map[string]any) (int, map[string]any) {
	t.Helper()
	return apiCall(t, r, c, v3, http.MethodPut, "/rooms/"+esc(roomID.String())+"/state/m.room.member/"+esc(target.String()), content)
}

func memberContent(t *testing.T, r *testrig.Rig, c *mautrix.Client, roomID id.RoomID, user id.UserID) map[string]any {
	t.Helper()
	status, body := apiCall(t, r, c, v3, http.MethodGet, "/rooms/"+esc(roomID.String())+"/state/m.room.member/"+esc(user.String()), nil)
	if status != http.StatusOK {
		t.Fatalf("member state of %s: %d %v", user, status, body)
	}
	return body
}

func TestRestrictedJoinAsStateNeedsAllowedRoom(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	for _, version := range []id.RoomVersion{"10", "11", "12"} {
		for _, rule := range []string{"restricted", "knock_restricted"} {
			t.Run(string(version)+"/"+rule, func(t *testing.T) {
				mallory := r.CreateUser("mallory" + string(version) + rule[:1])
				space := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: version})
				room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: version,
					InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
						"join_rule": rule, "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}}}}}}})

				// The audit's request: a join naming a member with invite power
				// as the authoriser, from a user in none of the allowed rooms.
				status, body := putMember(t, r, mallory, room, mallory.UserID, map[string]any{
					"membership": "join", "join_authorised_via_users_server": alice.UserID})
				wantAPIError(t, status, body, 403, "M_FORBIDDEN", "restricted join as state")
				if m := membership(t, r, alice, room, mallory.UserID); m != "" {
					t.Fatalf("refused join left membership %q", m)
				}
				// Without the field it is refused too.
				status, body = putMember(t, r, mallory, room, mallory.UserID, map[string]any{"membership": "join"})
				wantAPIError(t, status, body, 403, "M_FORBIDDEN", "restricted join as state without authoriser")

				// Once in an allowed room, the same request joins, and the
				// authoriser is the server's choice, not the client's.
				if _, err := alice.InviteUser(t.Context(), space, &mautrix.ReqInviteUser{UserID: mallory.UserID}); err != nil {
					t.Fatal(err)
				}
				testrig.Join(t, space, mallory)
				status, body = putMember(t, r, mallory, room, mallory.UserID, map[string]any{
					"membership": "join", "join_authorised_via_users_server": mallory.UserID})
				if status != 200 {
					t.Fatalf("allowed restricted join as state: %d %v", status, body)
				}
				c := memberContent(t, r, alice, room, mallory.UserID)
				if c["membership"] != "join" || c["join_authorised_via_users_server"] != alice.UserID.String() {
					t.Fatalf("member content %v: want a join authorised via %s", c, alice.UserID)
				}
			})
		}
	}
}

func TestPublicJoinAsStateDropsClientAuthoriser(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	status, body := putMember(t, r, bob, room, bob.UserID, map[string]any{
		"membership": "join", "displayname": "Bob", "join_authorised_via_users_server": alice.UserID})
	if status != 200 {
		t.Fatalf("public join as state: %d %v", status, body)
	}
	c := memberContent(t, r, alice, room, bob.UserID)
	if _, ok := c["join_authorised_via_users_server"]; ok || c["displayname"] != "Bob" {
		t.Fatalf("member content %v: the client's authoriser must be dropped, its other keys kept", c)
	}
}

func TestGuestMembershipAsState(t *testing.T) {
	r := testrig.Start(t, guestsOn)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	guest := registerGuest(t, r)
	closed := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	open := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{guest.UserID}})

	// A guest may not join a room whose guest access is forbidden, even
	// through the state endpoint.
	status, body := putMember(t, r, guest, closed, guest.UserID, map[string]any{"membership": "join"})
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN", "guest join as state")
	if m := membership(t, r, alice, closed, guest.UserID); m != "" {
		t.Fatalf("refused guest has membership %q", m)
	}
	// But may join one that allows guests, and leave it again.
	if status, body := putMember(t, r, guest, open, guest.UserID, map[string]any{"membership": "join"}); status != 200 {
		t.Fatalf("guest join of a can_join room as state: %d %v", status, body)
	}
	// Guests may not invite (the /invite endpoint is not theirs either),
	// ban or kick, whatever their power.
	for _, m := range []string{"invite", "ban", "leave", "knock"} {
		status, body = putMember(t, r, guest, open, bob.UserID, map[string]any{"membership": m})
		wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN", "guest "+m+" of another user as state")
	}
	if m := membership(t, r, alice, open, bob.UserID); m != "" {
		t.Fatalf("bob has membership %q after the guest's refused changes", m)
	}
	if status, body := putMember(t, r, guest, open, guest.UserID, map[string]any{"membership": "leave"}); status != 200 {
		t.Fatalf("guest leave as state: %d %v", status, body)
	}
}

func TestInviteAsStateChecksTarget(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	status, body := putMember(t, r, alice, room, "@nobody:axon.test", map[string]any{"membership": "invite"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "invite of an unknown user as state")
	status, body = putMember(t, r, alice, room, "@someone:elsewhere.example", map[string]any{"membership": "invite"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "invite of a remote user as state")
}
