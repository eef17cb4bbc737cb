package clientapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
)

// createAdmin adds a server admin and logs in a device for it.
func createAdmin(t *testing.T, r *testrig.Rig, localpart string) *mautrix.Client {
	t.Helper()
	if err := r.Server.DB.CreateUser(context.Background(), storage.User{UserID: r.UserID(localpart).String(), Localpart: localpart,
		IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	return r.CreateUserDevice(localpart, "DEV_"+localpart, false)
}

func adminPath(what string, user id.UserID) string {
	return "/_matrix/client/v1/admin/" + what + "/" + esc(user.String())
}

// restrict sets lock or suspend ("lock"/"suspend") of user as admin.
func restrict(t *testing.T, r *testrig.Rig, admin *mautrix.Client, what string, user id.UserID, on bool) {
	t.Helper()
	field := map[string]string{"lock": "locked", "suspend": "suspended"}[what]
	status, body := r.JSON(t, http.MethodPut, adminPath(what, user), admin.AccessToken, map[string]any{field: on})
	if status != 200 || body[field] != on {
		t.Fatalf("PUT %s %s=%v: %d %v", what, user, on, status, body)
	}
}

// TestAdminModerationAccess checks who may use the lock and suspend
// endpoints, on whom, and the errors the spec names.
func TestAdminModerationAccess(t *testing.T) {
	r := testrig.Start(t)
	root, other := createAdmin(t, r, "root"), createAdmin(t, r, "other")
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	if err := r.Server.DB.DeactivateUser(context.Background(), bob.UserID.String()); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"lock", "suspend"} {
		field := map[string]string{"lock": "locked", "suspend": "suspended"}[what]
		get := func(c *mautrix.Client, user string) (int, map[string]any) {
			return r.JSON(t, http.MethodGet, "/_matrix/client/v1/admin/"+what+"/"+esc(user), c.AccessToken, nil)
		}
		put := func(c *mautrix.Client, user string, body any) (int, map[string]any) {
			return r.JSON(t, http.MethodPut, "/_matrix/client/v1/admin/"+what+"/"+esc(user), c.AccessToken, body)
		}
		status, body := get(root, alice.UserID.String())
		if status != 200 || body[field] != false {
			t.Fatalf("%s: GET: %d %v", what, status, body)
		}
		// Non-admins learn nothing, not even whether the account exists.
		status, body = get(alice, "@root:axon.test")
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		status, body = get(alice, "@nobody:axon.test")
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		status, body = put(alice, "@alice:axon.test", map[string]any{field: false})
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v1/admin/"+what+"/"+esc("@alice:axon.test"), "", nil)
		wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")

		status, body = get(root, "@nobody:axon.test")
		wantAPIError(t, status, body, 404, "M_NOT_FOUND")
		status, body = get(root, bob.UserID.String()) // deactivated
		wantAPIError(t, status, body, 404, "M_NOT_FOUND")
		status, body = put(root, bob.UserID.String(), map[string]any{field: true})
		wantAPIError(t, status, body, 404, "M_NOT_FOUND")
		status, body = get(root, "@alice:elsewhere.test")
		wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
		status, body = get(root, "alice")
		wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
		// Not oneself, and not other admins.
		status, body = put(root, root.UserID.String(), map[string]any{field: true})
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		status, body = put(root, other.UserID.String(), map[string]any{field: true})
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		status, body = get(root, other.UserID.String())
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
		// Bad bodies change nothing.
		status, body = put(root, alice.UserID.String(), map[string]any{})
		wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
		status, body = put(root, alice.UserID.String(), map[string]any{field: "yes"})
		wantAPIError(t, status, body, 400, "M_BAD_JSON")
		status, body = put(root, alice.UserID.String(), map[string]any{field: nil})
		wantAPIError(t, status, body, 400, "M_BAD_JSON")
		status, body = get(root, alice.UserID.String())
		if status != 200 || body[field] != false {
			t.Fatalf("%s after bad requests: %d %v", what, status, body)
		}
		restrict(t, r, root, what, alice.UserID, true)
		status, body = get(root, alice.UserID.String())
		if status != 200 || body[field] != true {
			t.Fatalf("%s: GET after PUT: %d %v", what, status, body)
		}
		restrict(t, r, root, what, alice.UserID, false)
	}

	// The capability is offered to admins only.
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/capabilities", root.AccessToken, nil)
	mod, _ := body["capabilities"].(map[string]any)["m.account_moderation"].(map[string]any)
	if status != 200 || mod["lock"] != true || mod["suspend"] != true {
		t.Fatalf("admin capabilities: %d %v", status, body)
	}
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/capabilities", alice.AccessToken, nil)
	if _, has := body["capabilities"].(map[string]any)["m.account_moderation"]; status != 200 || has {
		t.Fatalf("user capabilities: %d %v", status, body)
	}
}

// TestAccountLock: a locked account gets M_USER_LOCKED (a soft logout) on
// everything but logging out, keeps its sessions, cannot log in or refresh,
// and works again once unlocked.
func TestAccountLock(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	root := createAdmin(t, r, "root")
	alice := r.CreateUser("alice")
	phone := r.CreateUserDevice("alice", "PHONE", false)
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	loginBody := map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"},
		"password": "password-alice", "refresh_token": true}
	status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", loginBody)
	refreshToken := str(body["refresh_token"])
	if status != 200 || refreshToken == "" {
		t.Fatalf("login: %d %v", status, body)
	}

	restrict(t, r, root, "lock", alice.UserID, true)
	wantLocked := func(what string, status int, body map[string]any) {
		t.Helper()
		if status != 401 || body["errcode"] != "M_USER_LOCKED" || body["soft_logout"] != true {
			t.Fatalf("%s: got %d %v, want 401 M_USER_LOCKED soft_logout", what, status, body)
		}
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/sync?timeout=0", nil)
	wantLocked("sync", status, body)
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?dir=b", nil)
	wantLocked("messages", status, body)
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/send/m.room.message/t1", map[string]any{"msgtype": "m.text", "body": "hi"})
	wantLocked("send", status, body)
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v1/admin/whois/"+esc(alice.UserID.String()), alice.AccessToken, nil)
	if status == 200 {
		t.Fatalf("v1 route served to a locked account: %v", body)
	}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", loginBody)
	wantLocked("login", status, body)
	status, body = refreshWith(t, r, refreshToken)
	wantLocked("refresh", status, body)
	// /versions still answers: clients fetch it before anything else.
	if status, _ := r.Do(http.MethodGet, "/_matrix/client/versions", alice.AccessToken, nil); status != 200 {
		t.Fatalf("versions: %d", status)
	}
	// Logging out is allowed, and really logs out.
	status, body = apiCall(t, r, phone, v3, http.MethodPost, "/logout", map[string]any{})
	if status != 200 {
		t.Fatalf("logout while locked: %d %v", status, body)
	}

	restrict(t, r, root, "lock", alice.UserID, false)
	// The sessions were kept through the lock, except the one logged out.
	if _, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline); err != nil {
		t.Fatalf("sync after unlock: %v", err)
	}
	status, body = apiCall(t, r, phone, v3, http.MethodGet, "/account/whoami", nil)
	wantUnknownTokenNoSoft(t, status, body)
	status, body = refreshWith(t, r, refreshToken)
	if status != 200 || body["access_token"] == nil {
		t.Fatalf("refresh after unlock: %d %v", status, body)
	}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", loginBody)
	if status != 200 {
		t.Fatalf("login after unlock: %d %v", status, body)
	}
}

func wantUnknownTokenNoSoft(t *testing.T, status int, body map[string]any) {
	t.Helper()
	wantUnknownToken(t, "logged-out token", status, body, false)
}

// TestAccountSuspension: a suspended account reads (sync, messages) but
// cannot send, change state, join, invite, create rooms, change its
// profile or upload; it may leave, reject invites and redact its own
// events. Unsuspending restores everything.
func TestAccountSuspension(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	root := createAdmin(t, r, "root")
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	// Bob moderates the room: he could redact others' events.
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat",
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{bob.UserID: 50}}})
	if err != nil {
		t.Fatal(err)
	}
	other := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	invited := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	testrig.Join(t, room.RoomID, bob)
	own := testrig.SendText(t, bob, room.RoomID, "before")
	carol := r.CreateUser("carol")

	restrict(t, r, root, "suspend", bob.UserID, true)
	_, err = bob.SendText(ctx, room.RoomID, "while suspended")
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.SendStateEvent(ctx, room.RoomID, event.StateTopic, "", map[string]any{"topic": "x"})
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.JoinRoomByID(ctx, other)
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.JoinRoomByID(ctx, invited) // accepting an invite
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: carol.UserID})
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	err = bob.SetDisplayName(ctx, "Bobby")
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	_, err = bob.UploadBytes(ctx, []byte("data"), "text/plain")
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	status, body := apiCall(t, r, bob, v3, http.MethodPost, "/rooms/"+esc(room.RoomID.String())+"/upgrade", map[string]any{"new_version": "11"})
	wantAPIError(t, status, body, 403, "M_USER_SUSPENDED")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/account/3pid/delete", map[string]any{"medium": "email", "address": "bob@example.org"})
	wantAPIError(t, status, body, 403, "M_USER_SUSPENDED")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/account/3pid/add", map[string]any{"sid": "s", "client_secret": "c"})
	wantAPIError(t, status, body, 403, "M_USER_SUSPENDED")
	// Nothing was changed by the refused requests.
	if p, err := alice.GetDisplayName(ctx, bob.UserID); err != nil || p.DisplayName == "Bobby" {
		t.Fatalf("profile: %+v %v", p, err)
	}

	// Reading still works, and sees others' new messages.
	sent := testrig.SendText(t, alice, room.RoomID, "to the suspended")
	sr, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatalf("sync while suspended: %v", err)
	}
	if jr := sr.Rooms.Join[room.RoomID]; jr == nil || jr.Timeline.Events[len(jr.Timeline.Events)-1].ID != sent {
		t.Fatalf("sync while suspended lacks the new message: %+v", sr.Rooms.Join[room.RoomID])
	}
	msgs, err := bob.Messages(ctx, room.RoomID, "", "", mautrix.DirectionBackward, nil, 10)
	if err != nil || len(msgs.Chunk) == 0 || msgs.Chunk[0].ID != sent {
		t.Fatalf("messages while suspended: %v", err)
	}
	// What the spec says suspended accounts may still do.
	if _, err := bob.RedactEvent(ctx, room.RoomID, own); err != nil {
		t.Fatalf("redacting own event: %v", err)
	}
	_, err = bob.RedactEvent(ctx, room.RoomID, sent)
	wantClientError(t, err, 403, "M_USER_SUSPENDED")
	if _, err := bob.LeaveRoom(ctx, invited); err != nil {
		t.Fatalf("rejecting an invite: %v", err)
	}
	if _, err := bob.LeaveRoom(ctx, room.RoomID); err != nil {
		t.Fatalf("leaving: %v", err)
	}

	restrict(t, r, root, "suspend", bob.UserID, false)
	testrig.Join(t, room.RoomID, bob)
	testrig.SendText(t, bob, room.RoomID, "back")
	if err := bob.SetDisplayName(ctx, "Bobby"); err != nil {
		t.Fatalf("profile after unsuspend: %v", err)
	}
}
