package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestAccountDataRoundTripAndSync(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	since := initialSync(t, alice)

	if err := alice.SetAccountData(ctx, "org.example.settings", map[string]any{"theme": "dark"}); err != nil {
		t.Fatalf("set: %v", err)
	}
	var got map[string]any
	if err := alice.GetAccountData(ctx, "org.example.settings", &got); err != nil || got["theme"] != "dark" {
		t.Fatalf("get: %v %v", got, err)
	}
	if err := alice.SetRoomAccountData(ctx, roomID, "org.example.room", map[string]any{"pinned": true}); err != nil {
		t.Fatalf("set room: %v", err)
	}
	syncUntil(t, alice, since, func(s *mautrix.RespSync) bool {
		global := false
		for _, ev := range s.AccountData.Events {
			global = global || (ev.Type.Type == "org.example.settings" && ev.Content.Raw["theme"] == "dark")
		}
		room := false
		if jr := s.Rooms.Join[roomID]; jr != nil {
			for _, ev := range jr.AccountData.Events {
				room = room || (ev.Type.Type == "org.example.room" && ev.Content.Raw["pinned"] == true)
			}
		}
		return global && room
	})

	// Room and global data are separate: no fallback.
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/user/"+esc(alice.UserID.String())+"/rooms/"+esc(roomID.String())+"/account_data/org.example.settings", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/user/"+esc(alice.UserID.String())+"/rooms/"+esc(roomID.String())+"/account_data/org.example.room", nil)
	if status != 200 || body["pinned"] != true {
		t.Fatalf("room get: %d %v", status, body)
	}

	// Server-managed types can be read but not written.
	for _, typ := range []string{"m.push_rules", "m.fully_read"} {
		err := alice.SetAccountData(ctx, typ, map[string]any{})
		wantClientError(t, err, http.StatusMethodNotAllowed, "M_BAD_JSON")
		err = alice.SetRoomAccountData(ctx, roomID, typ, map[string]any{})
		wantClientError(t, err, http.StatusMethodNotAllowed, "M_BAD_JSON")
	}
}

func TestAccountDataErrors(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	me, other := "/user/"+esc(alice.UserID.String()), "/user/"+esc(bob.UserID.String())
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"absent", http.MethodGet, me + "/account_data/org.example.none", nil, 404, "M_NOT_FOUND"},
		{"other user get", http.MethodGet, other + "/account_data/org.example", nil, 403, "M_FORBIDDEN"},
		{"other user put", http.MethodPut, other + "/account_data/org.example", map[string]any{}, 403, "M_FORBIDDEN"},
		{"other user room", http.MethodPut, other + "/rooms/" + esc("!r:axon.test") + "/account_data/org.example", map[string]any{}, 403, "M_FORBIDDEN"},
		{"not json", http.MethodPut, me + "/account_data/org.example", "{nope", 400, "M_NOT_JSON"},
		{"not object", http.MethodPut, me + "/account_data/org.example", "[1]", 400, "M_BAD_JSON"},
		{"bad room id", http.MethodPut, me + "/rooms/roomid/account_data/org.example", map[string]any{}, 400, "M_INVALID_PARAM"},
		{"bad room id get", http.MethodGet, me + "/rooms/roomid/account_data/org.example", nil, 400, "M_INVALID_PARAM"},
		{"other user tags", http.MethodGet, other + "/rooms/" + esc("!r:axon.test") + "/tags", nil, 403, "M_FORBIDDEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := apiCall(t, r, alice, v3, c.method, c.path, c.body)
			wantAPIError(t, status, body, c.status, c.code)
		})
	}
}

func TestTags(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	since := initialSync(t, alice)

	tags, err := alice.GetTags(ctx, roomID)
	if err != nil || len(tags.Tags) != 0 {
		t.Fatalf("initial tags: %v %v", tags, err)
	}
	if err := alice.AddTag(ctx, roomID, event.RoomTagFavourite, 0.25); err != nil {
		t.Fatalf("add: %v", err)
	}
	if err := alice.AddTagWithCustomData(ctx, roomID, "u.work", map[string]any{}); err != nil {
		t.Fatalf("add: %v", err)
	}
	tags, err = alice.GetTags(ctx, roomID)
	if order, _ := tags.Tags[event.RoomTagFavourite].Order.Float64(); err != nil || len(tags.Tags) != 2 || order != 0.25 {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	syncUntil(t, alice, since, func(s *mautrix.RespSync) bool {
		jr := s.Rooms.Join[roomID]
		if jr == nil {
			return false
		}
		for _, ev := range jr.AccountData.Events {
			if ev.Type.Type == "m.tag" {
				m, _ := ev.Content.Raw["tags"].(map[string]any)
				fav, _ := m["m.favourite"].(map[string]any)
				return len(m) == 2 && fav["order"] == 0.25
			}
		}
		return false
	})
	if err := alice.RemoveTag(ctx, roomID, event.RoomTagFavourite); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := alice.RemoveTag(ctx, roomID, "u.never"); err != nil {
		t.Fatalf("remove absent: %v", err)
	}
	tags, err = alice.GetTags(ctx, roomID)
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("after remove: %+v %v", tags, err)
	}

	path := "/user/" + esc(alice.UserID.String()) + "/rooms/" + esc(roomID.String()) + "/tags/"
	for _, body := range []any{map[string]any{"order": "first"}, map[string]any{"order": 1.5}, map[string]any{"order": -0.1}} {
		status, resp := apiCall(t, r, alice, v3, http.MethodPut, path+"m.lowpriority", body)
		wantAPIError(t, status, resp, 400, "M_INVALID_PARAM")
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	status, resp := apiCall(t, r, alice, v3, http.MethodPut, path+string(long), map[string]any{})
	wantAPIError(t, status, resp, 400, "M_INVALID_PARAM")
}

// TestAccountDataDelete checks MSC3391: DELETE at the unstable path, and
// PUT of empty content, remove an entry (global or per room); incremental
// syncs carry the type once with empty content, reads answer 404, and
// full syncs leave it out.
func TestAccountDataDelete(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	const typ = "org.example.deleted"
	const unstable = "/_matrix/client/unstable/org.matrix.msc3391"
	user := "/user/" + esc(alice.UserID.String())
	for _, c := range []struct {
		name   string
		path   string // under /user/{userId}
		room   bool
		delete bool
	}{
		{"global DELETE", "/account_data/" + typ, false, true},
		{"global PUT {}", "/account_data/" + typ, false, false},
		{"room DELETE", "/rooms/" + esc(roomID.String()) + "/account_data/" + typ, true, true},
		{"room PUT {}", "/rooms/" + esc(roomID.String()) + "/account_data/" + typ, true, false},
	} {
		entries := func(s *mautrix.RespSync) []*event.Event {
			if !c.room {
				return s.AccountData.Events
			}
			if jr := s.Rooms.Join[roomID]; jr != nil {
				return jr.AccountData.Events
			}
			return nil
		}
		find := func(s *mautrix.RespSync) *event.Event {
			for _, ev := range entries(s) {
				if ev.Type.Type == typ {
					return ev
				}
			}
			return nil
		}
		if status, body := apiCall(t, r, alice, v3, http.MethodPut, user+c.path, map[string]any{"set": true}); status != 200 {
			t.Fatalf("%s: set: %d %v", c.name, status, body)
		}
		since := initialSync(t, alice)
		var status int
		var body map[string]any
		if c.delete {
			status, body = apiCall(t, r, alice, unstable, http.MethodDelete, user+c.path, nil)
		} else {
			status, body = apiCall(t, r, alice, v3, http.MethodPut, user+c.path, map[string]any{})
		}
		if status != 200 {
			t.Fatalf("%s: delete: %d %v", c.name, status, body)
		}
		syncUntil(t, alice, since, func(s *mautrix.RespSync) bool {
			ev := find(s)
			return ev != nil && len(ev.Content.Raw) == 0
		})
		status, body = apiCall(t, r, alice, v3, http.MethodGet, user+c.path, nil)
		wantAPIError(t, status, body, 404, "M_NOT_FOUND", c.name+": get after delete")
		full, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
		if err != nil {
			t.Fatal(err)
		}
		if ev := find(full); ev != nil {
			t.Fatalf("%s: full sync still has the entry: %v", c.name, ev.Content.Raw)
		}
		// Deleting again changes nothing: no sync entry.
		since = full.NextBatch
		if status, body = apiCall(t, r, alice, unstable, http.MethodDelete, user+c.path, nil); status != 200 {
			t.Fatalf("%s: second delete: %d %v", c.name, status, body)
		}
		if s, err := alice.SyncRequest(ctx, 0, since, "", false, event.PresenceOffline); err != nil || find(s) != nil {
			t.Fatalf("%s: second delete reached sync: %v", c.name, err)
		}
		// And the type can be set again.
		if status, body = apiCall(t, r, alice, v3, http.MethodPut, user+c.path, map[string]any{"again": 1}); status != 200 {
			t.Fatalf("%s: set again: %d %v", c.name, status, body)
		}
		if status, body = apiCall(t, r, alice, v3, http.MethodGet, user+c.path, nil); status != 200 || body["again"] != float64(1) {
			t.Fatalf("%s: get after set again: %d %v", c.name, status, body)
		}
	}

	// Errors, which change nothing: another user's data, server-managed
	// types, a bad room ID.
	status, body := apiCall(t, r, bob, unstable, http.MethodDelete, user+"/account_data/"+typ, nil)
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN")
	status, body = apiCall(t, r, alice, unstable, http.MethodDelete, user+"/account_data/m.push_rules", nil)
	wantAPIError(t, status, body, http.StatusMethodNotAllowed, "M_BAD_JSON")
	status, body = apiCall(t, r, alice, unstable, http.MethodDelete, user+"/rooms/"+esc(roomID.String())+"/account_data/m.fully_read", nil)
	wantAPIError(t, status, body, http.StatusMethodNotAllowed, "M_BAD_JSON")
	status, body = apiCall(t, r, alice, unstable, http.MethodDelete, user+"/rooms/not-a-room/account_data/"+typ, nil)
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
	if status, body = apiCall(t, r, alice, v3, http.MethodGet, user+"/account_data/"+typ, nil); status != 200 || body["again"] != float64(1) {
		t.Fatalf("entry after refused deletes: %d %v", status, body)
	}
}

// TestDeviceNotificationSettingsGoWithDevice checks MSC3890: a device's
// org.matrix.msc3890.local_notification_settings.<device_id> entry is
// deleted (as MSC3391 deletes) when the device logs out or is deleted,
// and no other entry is.
func TestDeviceNotificationSettingsGoWithDevice(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	devB := r.CreateUserDevice("alice", "DEV_B", false)
	r.CreateUserDevice("alice", "DEV_C", false)
	const prefix = "org.matrix.msc3890.local_notification_settings."
	for _, d := range []string{"DEV_alice", "DEV_B", "DEV_C", "NO_SUCH_DEVICE"} {
		if err := alice.SetAccountData(ctx, prefix+d, map[string]any{"is_silenced": true}); err != nil {
			t.Fatal(err)
		}
	}
	has := func(d string) bool {
		t.Helper()
		status, body := apiCall(t, r, alice, v3, http.MethodGet, "/user/"+esc(alice.UserID.String())+"/account_data/"+prefix+d, nil)
		if status != 200 && status != 404 {
			t.Fatalf("get %s: %d %v", d, status, body)
		}
		return status == 200 && body["is_silenced"] == true
	}
	since := initialSync(t, alice)

	// Logging out deletes the device's settings, and the other devices'
	// syncs see the deletion.
	if status, body := apiCall(t, r, devB, v3, http.MethodPost, "/logout", map[string]any{}); status != 200 {
		t.Fatalf("logout: %d %v", status, body)
	}
	if has("DEV_B") {
		t.Fatal("DEV_B's settings outlived its logout")
	}
	syncUntil(t, alice, since, func(s *mautrix.RespSync) bool {
		for _, ev := range s.AccountData.Events {
			if ev.Type.Type == prefix+"DEV_B" && len(ev.Content.Raw) == 0 {
				return true
			}
		}
		return false
	})

	// Deleting a device through the device API does the same.
	status, body := apiCall(t, r, alice, v3, http.MethodPost, "/delete_devices", map[string]any{"devices": []string{"DEV_C"}})
	session, _ := body["session"].(string)
	if status != 401 || session == "" {
		t.Fatalf("delete_devices challenge: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/delete_devices", map[string]any{"devices": []string{"DEV_C"},
		"auth": passwordAuth(session, "alice", "password-alice")})
	if status != 200 {
		t.Fatalf("delete_devices: %d %v", status, body)
	}
	if has("DEV_C") {
		t.Fatal("DEV_C's settings outlived its deletion")
	}
	// The remaining device's settings, and those naming no device, stay.
	if !has("DEV_alice") || !has("NO_SUCH_DEVICE") {
		t.Fatal("settings of devices that were not deleted went too")
	}
}
