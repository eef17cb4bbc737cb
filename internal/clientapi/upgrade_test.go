package clientapi_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestRoomUpgrade(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "11", Name: "Old name",
		Topic: "Old topic", RoomAliasName: "upgrademe"})
	if err != nil {
		t.Fatal(err)
	}
	testrig.Join(t, room.RoomID, bob)
	if _, err := alice.BanUser(ctx, room.RoomID, &mautrix.ReqBanUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}

	// Bob lacks the power to send a tombstone.
	var resp struct {
		ReplacementRoom id.RoomID `json:"replacement_room"`
	}
	_, err = bob.MakeRequest(ctx, "POST", bob.BuildClientURL("v3", "rooms", room.RoomID, "upgrade"), map[string]string{"new_version": "12"}, &resp)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	_, err = alice.MakeRequest(ctx, "POST", alice.BuildClientURL("v3", "rooms", room.RoomID, "upgrade"), map[string]string{"new_version": "99"}, &resp)
	wantClientError(t, err, 400, "M_UNSUPPORTED_ROOM_VERSION")
	if _, err := alice.MakeRequest(ctx, "POST", alice.BuildClientURL("v3", "rooms", room.RoomID, "upgrade"), map[string]string{"new_version": "12"}, &resp); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	newRoom := resp.ReplacementRoom

	var create map[string]any
	if err := alice.StateEvent(ctx, newRoom, event.StateCreate, "", &create); err != nil {
		t.Fatal(err)
	}
	pred, _ := create["predecessor"].(map[string]any)
	if create["room_version"] != "12" || pred["room_id"] != string(room.RoomID) {
		t.Fatalf("new create event: %v", create)
	}
	var name event.RoomNameEventContent
	if err := alice.StateEvent(ctx, newRoom, event.StateRoomName, "", &name); err != nil || name.Name != "Old name" {
		t.Fatalf("name not copied: %+v %v", name, err)
	}
	var ban event.MemberEventContent
	if err := alice.StateEvent(ctx, newRoom, event.StateMember, carol.UserID.String(), &ban); err != nil || ban.Membership != event.MembershipBan {
		t.Fatalf("ban not copied: %+v %v", ban, err)
	}
	alias, err := alice.ResolveAlias(ctx, id.RoomAlias("#upgrademe:"+r.Server.Cfg.ServerName))
	if err != nil || alias.RoomID != newRoom {
		t.Fatalf("alias not moved: %+v %v", alias, err)
	}
	var tomb event.TombstoneEventContent
	if err := bob.StateEvent(ctx, room.RoomID, event.StateTombstone, "", &tomb); err != nil || tomb.ReplacementRoom != newRoom {
		t.Fatalf("tombstone: %+v %v", tomb, err)
	}
	// The old room no longer accepts messages from ordinary members.
	_, err = bob.SendText(ctx, room.RoomID, "still here?")
	wantClientError(t, err, 403, "M_FORBIDDEN")
	testrig.Join(t, newRoom, bob)
	_, err = carol.JoinRoomByID(ctx, newRoom)
	wantClientError(t, err, 403, "M_FORBIDDEN")
}
