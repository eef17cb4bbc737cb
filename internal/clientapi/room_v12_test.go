package clientapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// stateContent is GET /rooms/{roomId}/state/{type}/{key} (content only).
func stateContent(t *testing.T, r *testrig.Rig, c *mautrix.Client, roomID id.RoomID, typ, key string) map[string]any {
	t.Helper()
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+roomID.String()+"/state/"+typ+"/"+key, c.AccessToken, nil)
	if status != http.StatusOK {
		t.Fatalf("state %s of %s: %d %v", typ, roomID, status, body)
	}
	return body
}

func anyStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestRoomV12Creation: spec v1.16's room creation rules. In room v12 the
// room ID has no domain, trusted_private_chat invitees become additional
// creators, creators have no entry in the power levels and the tombstone
// needs 150; before v12 the invitees get power 100 instead.
func TestRoomV12Creation(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")

	v12 := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "12", Invite: []id.UserID{bob.UserID}})
	if strings.Contains(v12.String(), ":") {
		t.Errorf("v12 room ID with a domain: %s", v12)
	}
	create := stateContent(t, r, alice, v12, "m.room.create", "")
	if got, _ := create["additional_creators"].([]any); len(got) != 1 || got[0] != bob.UserID.String() {
		t.Errorf("v12 additional_creators: %v", create)
	}
	if _, ok := create["creator"]; ok {
		t.Errorf("v12 create has creator: %v", create)
	}
	pl := stateContent(t, r, alice, v12, "m.room.power_levels", "")
	users := pl["users"].(map[string]any)
	if _, ok := users[alice.UserID.String()]; ok {
		t.Errorf("v12 power levels list the creator: %v", users)
	}
	if _, ok := users[bob.UserID.String()]; ok {
		t.Errorf("v12 power levels list an additional creator: %v", users)
	}
	if ts := pl["events"].(map[string]any)["m.room.tombstone"]; ts != float64(150) {
		t.Errorf("v12 tombstone level %v, want 150", ts)
	}

	v11 := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "11", Invite: []id.UserID{bob.UserID}})
	if _, ok := stateContent(t, r, alice, v11, "m.room.create", "")["additional_creators"]; ok {
		t.Errorf("v11 room has additional_creators")
	}
	pl = stateContent(t, r, alice, v11, "m.room.power_levels", "")
	users = pl["users"].(map[string]any)
	if users[alice.UserID.String()] != float64(100) || users[bob.UserID.String()] != float64(100) {
		t.Errorf("v11 trusted_private_chat power levels: %v", users)
	}
	if ts := pl["events"].(map[string]any)["m.room.tombstone"]; ts != float64(100) {
		t.Errorf("v11 tombstone level %v, want 100", ts)
	}

	// format=event (v1.16) returns the whole event; the default is the content.
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+v12.String()+"/state/m.room.create/?format=event", alice.AccessToken, nil)
	if status != 200 || body["type"] != "m.room.create" || body["sender"] != alice.UserID.String() || body["event_id"] == nil || body["content"] == nil {
		t.Errorf("format=event: %d %v", status, body)
	}
	if _, ok := stateContent(t, r, alice, v12, "m.room.create", "")["event_id"]; ok {
		t.Errorf("default format returned the event")
	}
}

// TestUpgradeAdditionalCreators: additional_creators of POST /upgrade (spec
// v1.16) are the new v12 room's additional creators (the old room's are not
// copied), are ignored for versions without them, and a bad one refuses the
// upgrade without changing anything.
func TestUpgradeAdditionalCreators(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	upgrade := func(roomID id.RoomID, body map[string]any) (int, map[string]any) {
		return r.JSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+roomID.String()+"/upgrade", alice.AccessToken, body)
	}
	old := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "12", Invite: []id.UserID{bob.UserID}})

	status, body := upgrade(old, map[string]any{"new_version": "12", "additional_creators": []string{"not a user"}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM", "bad additional creator")
	status, _ = r.JSON(t, http.MethodGet, "/_matrix/client/v3/rooms/"+old.String()+"/state/m.room.tombstone/", alice.AccessToken, nil)
	if status != http.StatusNotFound {
		t.Fatalf("refused upgrade tombstoned the room: %d", status)
	}

	status, body = upgrade(old, map[string]any{"new_version": "12", "additional_creators": []string{carol.UserID.String()}})
	if status != 200 {
		t.Fatalf("upgrade: %d %v", status, body)
	}
	newRoom := id.RoomID(body["replacement_room"].(string))
	create := stateContent(t, r, alice, newRoom, "m.room.create", "")
	if got := anyStrings(create["additional_creators"]); !slices.Equal(got, []string{carol.UserID.String()}) {
		t.Errorf("new room's additional_creators %v, want carol only", got)
	}
	if users := stateContent(t, r, alice, newRoom, "m.room.power_levels", "")["users"].(map[string]any); users[carol.UserID.String()] != nil || users[alice.UserID.String()] != nil {
		t.Errorf("creators in the new room's power levels: %v", users)
	}

	// To v11, which has no additional creators, the field is ignored.
	status, body = upgrade(newRoom, map[string]any{"new_version": "11", "additional_creators": []string{carol.UserID.String()}})
	if status != 200 {
		t.Fatalf("upgrade to v11: %d %v", status, body)
	}
	v11 := id.RoomID(body["replacement_room"].(string))
	if _, ok := stateContent(t, r, alice, v11, "m.room.create", "")["additional_creators"]; ok {
		t.Errorf("v11 room got additional_creators")
	}
	// alice, a creator of the v12 room, gets the highest level it used
	// (its tombstone's 150) in the v11 room.
	if lvl := stateContent(t, r, alice, v11, "m.room.power_levels", "")["users"].(map[string]any)[alice.UserID.String()]; lvl != float64(150) {
		t.Errorf("upgrader's level in the v11 room: %v", lvl)
	}
}

// Malformed v12 creator requests are 400s, refused before anything is
// written; trusted_private_chat adds its invitees to the named creators.
func TestRoomV12CreatorValidation(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	joinedBefore, err := alice.JoinedRooms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []any{"not-an-array", []any{"@foo:example.com", 42}, []any{"not-a-user-id"}, []any{"@invalid:dom$ain$.com"}} {
		status, body := apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{
			"room_version": "12", "creation_content": map[string]any{"additional_creators": bad}})
		wantAPIError(t, status, body, 400, "M_BAD_JSON", fmt.Sprint("additional_creators ", bad))
	}
	status, body := apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{
		"room_version": "12", "power_level_content_override": map[string]any{"users": map[string]any{alice.UserID.String(): 100}}})
	wantAPIError(t, status, body, 400, "M_BAD_JSON", "creator in power_level_content_override")
	if after, _ := alice.JoinedRooms(t.Context()); len(after.JoinedRooms) != len(joinedBefore.JoinedRooms) {
		t.Fatalf("refused createRoom requests left rooms: %v", after.JoinedRooms)
	}

	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "12",
		Invite: []id.UserID{bob.UserID}, CreationContent: map[string]any{"additional_creators": []string{carol.UserID.String()}}})
	status, body = apiCall(t, r, alice, v3, "GET", "/rooms/"+esc(room.String())+"/state/m.room.create/", nil)
	if status != 200 || fmt.Sprint(body["additional_creators"]) != fmt.Sprint([]any{carol.UserID.String(), bob.UserID.String()}) {
		t.Fatalf("create content: %d %v, want additional creators carol then bob", status, body)
	}
	// Power levels naming a creator, and a second create event, are 400s.
	status, body = apiCall(t, r, alice, v3, "PUT", "/rooms/"+esc(room.String())+"/state/m.room.power_levels/", map[string]any{
		"users": map[string]any{carol.UserID.String(): 50}})
	wantAPIError(t, status, body, 400, "M_BAD_JSON", "power levels naming a creator")
	for _, version := range []string{"11", "12"} {
		rm := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{RoomVersion: id.RoomVersion(version)})
		status, body = apiCall(t, r, alice, v3, "PUT", "/rooms/"+esc(rm.String())+"/state/m.room.create/", map[string]any{
			"room_version": version, "entropy": 100})
		wantAPIError(t, status, body, 400, "M_BAD_JSON", "m.room.create as state in v"+version)
	}
}
