package clientapi_test

import (
	"context"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

func roomSummary(t *testing.T, r *testrig.Rig, c *mautrix.Client, roomIDOrAlias string) (int, map[string]any) {
	t.Helper()
	return apiCall(t, r, c, v1, "GET", "/room_summary/"+url.PathEscape(roomIDOrAlias)+"?via=axon.test", nil)
}

func TestRoomSummary(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")

	private, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Secret", Topic: "hush",
		InitialState: []*event.Event{testrig.Encrypted()}})
	if err != nil {
		t.Fatal(err)
	}
	public := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Lobby", RoomAliasName: "lobby"})

	// A member sees the private room (private_chat lets guests join), with its encryption and version.
	status, body := roomSummary(t, r, alice, private.RoomID.String())
	if status != 200 || body["room_id"] != private.RoomID.String() || body["name"] != "Secret" || body["topic"] != "hush" ||
		body["membership"] != "join" || body["join_rule"] != "invite" || body["encryption"] != "m.megolm.v1.aes-sha2" ||
		body["room_version"] == nil || body["num_joined_members"] != float64(1) || body["world_readable"] != false || body["guest_can_join"] != true {
		t.Fatalf("member summary: %d %v", status, body)
	}
	// A non-member, and an anonymous caller, learn nothing about it.
	status, body = roomSummary(t, r, bob, private.RoomID.String())
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = roomSummary(t, r, nil, private.RoomID.String())
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// An invited user may preview it.
	if _, err := alice.InviteUser(ctx, private.RoomID, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	if status, body = roomSummary(t, r, bob, private.RoomID.String()); status != 200 || body["membership"] != "invite" {
		t.Fatalf("invitee summary: %d %v", status, body)
	}

	// The public room is visible to anyone, by ID or by alias; anonymous
	// callers get no membership.
	status, body = roomSummary(t, r, bob, "#lobby:axon.test")
	if status != 200 || body["room_id"] != public.String() || body["membership"] != "leave" ||
		body["join_rule"] != "public" || body["canonical_alias"] != "#lobby:axon.test" {
		t.Fatalf("public summary by alias: %d %v", status, body)
	}
	status, body = roomSummary(t, r, nil, public.String())
	if _, has := body["membership"]; status != 200 || has || body["name"] != "Lobby" {
		t.Fatalf("anonymous public summary: %d %v", status, body)
	}

	// An invite-only room that is world-readable may be previewed by anyone.
	readable, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat",
		InitialState: []*event.Event{{Type: event.StateHistoryVisibility, Content: event.Content{Raw: map[string]any{"history_visibility": "world_readable"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body = roomSummary(t, r, nil, readable.RoomID.String()); status != 200 || body["world_readable"] != true || body["join_rule"] != "invite" {
		t.Fatalf("anonymous world-readable summary: %d %v", status, body)
	}

	// Restricted rooms are visible to members of an allowed room only.
	restricted, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: "10",
		InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
			"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": public.String()}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	status, body = roomSummary(t, r, bob, restricted.RoomID.String())
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	testrig.Join(t, public, bob)
	status, body = roomSummary(t, r, bob, restricted.RoomID.String())
	if ids, _ := body["allowed_room_ids"].([]any); status != 200 || len(ids) != 1 || ids[0] != public.String() {
		t.Fatalf("restricted summary: %d %v", status, body)
	}

	// Unknown rooms and aliases, and things that are neither.
	status, body = roomSummary(t, r, alice, "!nope:axon.test")
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = roomSummary(t, r, alice, "#nope:axon.test")
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = roomSummary(t, r, alice, "lobby")
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
}
