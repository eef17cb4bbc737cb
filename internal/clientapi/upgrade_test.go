package clientapi_test

import (
	"context"
	"fmt"
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

// TestUpgradeCarriesPushRules: a member's push rules for a room are copied
// to its replacement when they join it, whether the room was upgraded with
// /upgrade or by hand (a new room naming it as predecessor), and not for
// someone who was never in the old room or on a later profile change.
func TestUpgradeCarriesPushRules(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, mallory := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("mallory")
	rulesOf := func(c *mautrix.Client) map[string]map[string]any {
		t.Helper()
		status, body := apiCall(t, r, c, v3, "GET", "/pushrules/", nil)
		if status != 200 {
			t.Fatalf("pushrules: %d %v", status, body)
		}
		out := map[string]map[string]any{}
		global := body["global"].(map[string]any)
		for _, kind := range []string{"room", "override"} {
			for _, rule := range global[kind].([]any) {
				rm := rule.(map[string]any)
				out[kind+"/"+rm["rule_id"].(string)] = rm
			}
		}
		return out
	}
	mute := func(c *mautrix.Client, room id.RoomID) {
		t.Helper()
		if status, body := apiCall(t, r, c, v3, "PUT", "/pushrules/global/room/"+esc(room.String()), map[string]any{"actions": []string{"dont_notify"}}); status != 200 {
			t.Fatalf("mute: %d %v", status, body)
		}
		overrideID := "mute-" + room.String()
		if status, body := apiCall(t, r, c, v3, "PUT", "/pushrules/global/override/"+esc(overrideID), map[string]any{
			"actions":    []string{},
			"conditions": []any{map[string]any{"kind": "event_match", "key": "room_id", "pattern": room.String()}},
		}); status != 200 {
			t.Fatalf("override: %d %v", status, body)
		}
	}
	wantCopied := func(c *mautrix.Client, old, replacement id.RoomID, want bool) {
		t.Helper()
		rules := rulesOf(c)
		room, hasRoom := rules["room/"+replacement.String()]
		over, hasOver := rules["override/mute-"+replacement.String()]
		if !want {
			if hasRoom || hasOver {
				t.Fatalf("%s: rules copied to %s: %v", c.UserID, replacement, rules)
			}
			return
		}
		if !hasRoom || fmt.Sprint(room["actions"]) != "[dont_notify]" || !hasOver {
			t.Fatalf("%s: rules of %s not copied to %s: %v", c.UserID, old, replacement, rules)
		}
		conds := over["conditions"].([]any)
		if conds[0].(map[string]any)["pattern"] != replacement.String() {
			t.Fatalf("%s: copied override still names the old room: %v", c.UserID, over)
		}
		if _, still := rules["room/"+old.String()]; !still {
			t.Fatalf("%s: old room's rule gone: %v", c.UserID, rules)
		}
	}

	for _, manual := range []bool{false, true} {
		old := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10"})
		testrig.Join(t, old, bob)
		mute(alice, old)
		mute(bob, old)
		mute(mallory, old) // rules for a room mallory never joined
		var replacement id.RoomID
		if manual {
			replacement = testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "11",
				CreationContent: map[string]any{"predecessor": map[string]any{"room_id": old.String()}}})
		} else {
			status, body := apiCall(t, r, alice, v3, "POST", "/rooms/"+esc(old.String())+"/upgrade", map[string]any{"new_version": "11"})
			if status != 200 {
				t.Fatalf("upgrade: %d %v", status, body)
			}
			replacement = id.RoomID(body["replacement_room"].(string))
		}
		wantCopied(alice, old, replacement, true)
		wantCopied(bob, old, replacement, false) // not joined yet
		testrig.Join(t, replacement, bob, mallory)
		wantCopied(bob, old, replacement, true)
		wantCopied(mallory, old, replacement, false)

		// A rule bob removes from the new room stays removed when he
		// changes his display name there.
		if status, body := apiCall(t, r, bob, v3, "DELETE", "/pushrules/global/room/"+esc(replacement.String()), nil); status != 200 {
			t.Fatalf("delete: %d %v", status, body)
		}
		if err := bob.SetDisplayName(context.Background(), "Bobby"+fmt.Sprint(manual)); err != nil {
			t.Fatal(err)
		}
		if _, back := rulesOf(bob)["room/"+replacement.String()]; back {
			t.Fatalf("manual=%v: deleted rule came back on a profile change", manual)
		}
	}
}
