package clientapi_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestMalformedPathIDs: a room, event or user ID in the path that cannot
// be one is 400 M_INVALID_PARAM on every route, and changes nothing; a
// well-formed ID the server does not know keeps its 403 or 404, and real
// IDs of every shape (room v12 IDs without a server, aliases where a room
// ID or alias is taken) go through.
func TestMalformedPathIDs(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	server := r.UserID("x").Homeserver()
	v12 := testrig.PublicRoom(t, alice) // the default version: "!<base64>"
	v10 := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{RoomVersion: "10", Preset: "public_chat", RoomAliasName: "ten"})
	ev := testrig.SendText(t, alice, v12, "hello")

	invalid := []struct{ method, path string }{
		{"GET", "/rooms/notaroomid/messages"},
		{"GET", "/rooms/" + esc("!bad\x00") + "/state"},
		{"GET", "/rooms/" + esc("!:"+server) + "/state"},
		{"GET", "/rooms/" + esc("!bad\xff\xfe") + "/members"},
		{"GET", "/rooms/" + esc("!"+strings.Repeat("a", 300)+":"+server) + "/state"},
		{"PUT", "/rooms/notaroomid/send/m.room.message/txn1"},
		{"PUT", "/rooms/notaroomid/state/m.room.name/"},
		{"POST", "/rooms/" + esc("#ten:"+server) + "/invite"}, // an alias where only a room ID is taken
		{"GET", "/rooms/" + esc(v12.String()) + "/event/notanevent"},
		{"GET", "/rooms/" + esc(v12.String()) + "/context/" + esc("$")},
		{"PUT", "/rooms/" + esc(v12.String()) + "/redact/" + esc("$a b") + "/txn2"},
		{"GET", "/profile/notauser"},
		{"GET", "/profile/" + esc("@nohomeserver")},
		{"PUT", "/rooms/" + esc(v12.String()) + "/typing/" + esc("@:"+server)},
		{"POST", "/join/notaroom"},
		{"POST", "/join/" + esc("#noserver")},
		{"POST", "/knock/" + esc("@alice:"+server)},
	}
	for _, c := range invalid {
		status, body := apiCall(t, r, alice, v3, c.method, c.path, `{"msgtype":"m.text","body":"x","name":"x","user_id":"@bob:x","typing":true}`)
		if status != http.StatusBadRequest || body["errcode"] != "M_INVALID_PARAM" {
			t.Errorf("%s %s: got %d %v, want 400 M_INVALID_PARAM", c.method, c.path, status, body)
		}
	}
	// The token is checked first: a request without one is 401 whatever its path.
	status, body := apiCall(t, r, nil, v3, "GET", "/rooms/notaroomid/messages", nil)
	wantAPIError(t, status, body, http.StatusUnauthorized, "M_MISSING_TOKEN", "no token, bad room ID")
	if !sameTimeline(t, r, alice, v12, ev) {
		t.Errorf("the refused requests changed the room")
	}

	// Well-formed but unknown: as before.
	unknown := []struct {
		method, path string
		status       int
		code         string
	}{
		// /messages answers an unknown room as a room the caller is not
		// in (the spec's only refusal there), not revealing which exist.
		{"GET", "/rooms/" + esc("!unknown:"+server) + "/messages", http.StatusForbidden, "M_FORBIDDEN"},
		{"GET", "/rooms/" + esc(v12.String()) + "/event/" + esc("$unknown"), http.StatusNotFound, "M_NOT_FOUND"},
		{"GET", "/profile/" + esc("@nobody:"+server), http.StatusNotFound, "M_NOT_FOUND"},
		{"POST", "/join/" + esc("#nosuch:"+server), http.StatusNotFound, "M_NOT_FOUND"},
	}
	for _, c := range unknown {
		status, body := apiCall(t, r, alice, v3, c.method, c.path, "{}")
		if status != c.status || body["errcode"] != c.code {
			t.Errorf("%s %s: got %d %v, want %d %s", c.method, c.path, status, body, c.status, c.code)
		}
	}
	private := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	status, body = apiCall(t, r, bob, v3, "GET", "/rooms/"+esc(private.String())+"/messages", nil)
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN", "messages of a room bob is not in")

	// Real IDs of every shape pass the check.
	if status, body := apiCall(t, r, bob, v3, "POST", "/join/"+esc(v12.String()), "{}"); status != http.StatusOK || body["room_id"] != v12.String() {
		t.Errorf("join v12 room by ID: %d %v", status, body)
	}
	if status, body := apiCall(t, r, bob, v3, "GET", "/rooms/"+esc(v12.String())+"/event/"+esc(ev.String()), nil); status != http.StatusOK {
		t.Errorf("v12 room event: %d %v", status, body)
	}
	if status, body := apiCall(t, r, bob, v3, "POST", "/join/"+esc("#ten:"+server), "{}"); status != http.StatusOK || body["room_id"] != v10.String() {
		t.Errorf("join v10 room by alias: %d %v", status, body)
	}
	if status, body := apiCall(t, r, bob, v3, "GET", "/profile/"+esc(alice.UserID.String()), nil); status != http.StatusOK {
		t.Errorf("profile: %d %v", status, body)
	}
}

// sameTimeline reports whether ev is still the last event of the room.
func sameTimeline(t *testing.T, r *testrig.Rig, c *mautrix.Client, room id.RoomID, ev id.EventID) bool {
	t.Helper()
	status, body := apiCall(t, r, c, v3, "GET", "/rooms/"+esc(room.String())+"/messages?dir=b&limit=1", nil)
	if status != http.StatusOK {
		t.Fatalf("messages: %d %v", status, body)
	}
	ids := chunkIDs(body)
	return len(ids) == 1 && ids[0] == ev.String()
}

// TestPowerLevelsContentTypes: wrongly typed power levels are a malformed
// request (400 M_BAD_JSON), refused before the authorisation rules would
// call them a forbidden change, in a state event and in createRoom's
// power_level_content_override; well-typed ones still go through the
// authorisation rules.
func TestPowerLevelsContentTypes(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.PublicRoom(t, alice, bob)
	path := "/rooms/" + esc(room.String()) + "/state/m.room.power_levels/"
	before := stateContent(t, r, alice, room, "m.room.power_levels", "")

	for _, bad := range []map[string]any{
		{"users": map[string]any{"@a:b": "100"}},
		{"ban": "50"},
		{"events": []any{1}},
		{"events": map[string]any{"m.room.name": true}},
		{"notifications": map[string]any{"room": "50"}},
		{"users_default": map[string]any{}},
	} {
		content := map[string]any{}
		for k, v := range before {
			content[k] = v
		}
		for k, v := range bad {
			content[k] = v
		}
		status, body := apiCall(t, r, alice, v3, "PUT", path, content)
		if status != http.StatusBadRequest || body["errcode"] != "M_BAD_JSON" {
			t.Errorf("power levels %v: got %d %v, want 400 M_BAD_JSON", bad, status, body)
		}
	}
	if after := stateContent(t, r, alice, room, "m.room.power_levels", ""); !reflect.DeepEqual(before, after) {
		t.Errorf("refused power levels changed them:\nbefore %v\nafter  %v", before, after)
	}

	// Well typed: alice may change them, bob may not.
	good := map[string]any{}
	for k, v := range before {
		good[k] = v
	}
	good["ban"] = 60
	status, body := apiCall(t, r, bob, v3, "PUT", path, good)
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN", "bob's power levels")
	status, body = apiCall(t, r, alice, v3, "PUT", path, good)
	if status != http.StatusOK {
		t.Fatalf("alice's power levels: %d %v", status, body)
	}
	if got := stateContent(t, r, alice, room, "m.room.power_levels", "")["ban"]; got != float64(60) {
		t.Errorf("ban after the change: %v", got)
	}

	// createRoom refuses a wrongly typed override before making any room.
	rooms, err := alice.JoinedRooms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	status, body = apiCall(t, r, alice, v3, "POST", "/createRoom", map[string]any{"power_level_content_override": map[string]any{"users": map[string]any{"@a:b": "100"}}})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON", "createRoom override")
	if again, err := alice.JoinedRooms(t.Context()); err != nil || len(again.JoinedRooms) != len(rooms.JoinedRooms) {
		t.Errorf("a refused createRoom made a room: %v → %v (%v)", rooms.JoinedRooms, again, err)
	}
}
