package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestInvitePermission: a user whose m.invite_permission_config has
// default_action "block" (spec v1.18) cannot be invited (M_INVITE_BLOCKED,
// nothing sent), is left out of createRoom's invites (the room is still
// created), and is not shown invites they already had; other values let
// invites through.
func TestInvitePermission(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	// An earlier invite, still pending when bob starts blocking.
	earlier := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	block := func(content map[string]any) {
		t.Helper()
		status, body := r.JSON(t, http.MethodPut, "/_matrix/client/v3/user/"+bob.UserID.String()+"/account_data/m.invite_permission_config", bob.AccessToken, content)
		if status != 200 {
			t.Fatalf("set invite permission: %d %v", status, body)
		}
	}
	invite := func() (int, map[string]any) {
		return r.JSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+room.String()+"/invite", alice.AccessToken,
			map[string]any{"user_id": bob.UserID})
	}
	block(map[string]any{"default_action": "block"})

	status, body := invite()
	wantAPIError(t, status, body, 403, "M_INVITE_BLOCKED", "invite to a blocking user")
	status, body = r.JSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+room.String()+"/state/m.room.member/"+bob.UserID.String(),
		alice.AccessToken, map[string]any{"membership": "invite"})
	wantAPIError(t, status, body, 403, "M_INVITE_BLOCKED", "invite through PUT /state")
	if m := membership(t, r, alice, room, bob.UserID); m != "" {
		t.Fatalf("bob's membership after refused invites: %q", m)
	}
	// Other membership changes of a blocking user are not affected.
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+room.String()+"/ban", alice.AccessToken,
		map[string]any{"user_id": bob.UserID})
	if status != 200 {
		t.Fatalf("ban of a blocking user: got %d %v, want 200", status, body)
	}
	if _, err := alice.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}

	// createRoom succeeds and invites only carol.
	created := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID, carol.UserID}})
	if m := membership(t, r, alice, created, bob.UserID); m != "" {
		t.Errorf("bob's membership in the created room: %q", m)
	}
	if m := membership(t, r, alice, created, carol.UserID); m != "invite" {
		t.Errorf("carol's membership in the created room: %q", m)
	}

	// The earlier invite is hidden from /sync, sliding sync and
	// /initialSync, but stays in the room's state.
	shown := func() (v3, sliding, initial bool) {
		t.Helper()
		_, v3 = syncRaw(t, r, bob.AccessToken, nil)["rooms"].(map[string]any)["invite"].(map[string]any)[earlier.String()]
		status, body := r.JSON(t, http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", bob.AccessToken,
			map[string]any{"lists": map[string]any{"all": map[string]any{"ranges": [][]int{{0, 10}}}}})
		if status != 200 {
			t.Fatalf("sliding sync: %d %v", status, body)
		}
		rs, _ := body["rooms"].(map[string]any)
		_, sliding = rs[earlier.String()]
		status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/initialSync", bob.AccessToken, nil)
		if status != 200 {
			t.Fatalf("initialSync: %d %v", status, body)
		}
		for _, rm := range body["rooms"].([]any) {
			if rm.(map[string]any)["room_id"] == earlier.String() {
				initial = true
			}
		}
		return v3, sliding, initial
	}
	if v3, sliding, initial := shown(); v3 || sliding || initial {
		t.Errorf("earlier invite shown while blocking: /sync %v, sliding sync %v, /initialSync %v", v3, sliding, initial)
	}
	if m := membership(t, r, alice, earlier, bob.UserID); m != "invite" {
		t.Errorf("earlier invite in the room state: %q", m)
	}

	// A value other than "block" lets invites through, and the earlier
	// invite shows again.
	block(map[string]any{"default_action": "allow-maybe"})
	if v3, sliding, initial := shown(); !v3 || !sliding || !initial {
		t.Errorf("earlier invite not shown after unblocking: /sync %v, sliding sync %v, /initialSync %v", v3, sliding, initial)
	}
	// Its invite_state has the create event (required since v1.16).
	inv := syncRoom(syncRaw(t, r, bob.AccessToken, nil), "invite", earlier)
	hasCreate := false
	for _, e := range inv["invite_state"].(map[string]any)["events"].([]any) {
		hasCreate = hasCreate || e.(map[string]any)["type"] == "m.room.create"
	}
	if !hasCreate {
		t.Errorf("invite_state without m.room.create: %v", inv)
	}
	status, body = invite()
	if status != 200 {
		t.Fatalf("invite after unblocking: got %d %v, want 200", status, body)
	}
	if m := membership(t, r, alice, room, bob.UserID); m != "invite" {
		t.Fatalf("bob's membership after the invite: %q", m)
	}
}
