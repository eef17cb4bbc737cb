package clientapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
)

const noticePath = "/_synapse/admin/v1/send_server_notice"

// invitedBy returns the rooms c is invited to, with the sender of the
// first stripped state event of each invite.
func invitedBy(t *testing.T, r *testrig.Rig, c *mautrix.Client) map[string]string {
	t.Helper()
	status, body := apiCall(t, r, c, v3, http.MethodGet, "/sync?timeout=0", nil)
	if status != 200 {
		t.Fatalf("sync: %d %v", status, body)
	}
	out := map[string]string{}
	invites, _ := body["rooms"].(map[string]any)["invite"].(map[string]any)
	for roomID, v := range invites {
		evs := v.(map[string]any)["invite_state"].(map[string]any)["events"].([]any)
		out[roomID] = evs[0].(map[string]any)["sender"].(string)
	}
	return out
}

func TestServerNotices(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	if err := r.Server.DB.CreateUser(ctx, storage.User{UserID: r.UserID("root").String(), Localpart: "root", IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	root := r.CreateUserDevice("root", "ROOTDEV", false)
	sender := r.UserID("_server").String()
	notice := map[string]any{"user_id": alice.UserID, "content": map[string]any{"msgtype": "m.text", "body": "maintenance tonight"}}
	send := func(c *mautrix.Client, method, path string, body any) (int, map[string]any) {
		t.Helper()
		return apiCall(t, r, c, "", method, path, body)
	}

	// The account notices come from does not exist before the first
	// notice, and registration may not take its name meanwhile.
	if _, err := r.Server.DB.GetUser(ctx, sender); err == nil {
		t.Fatal("the notices account exists before any notice")
	}
	status, body := apiCall(t, r, nil, v3, http.MethodPost, "/register", map[string]any{"username": "_server", "password": "pw-long-enough",
		"auth": map[string]any{"type": "m.login.dummy"}})
	wantAPIError(t, status, body, 400, "M_EXCLUSIVE", "registering the notices account")

	// Admins only, whatever the body.
	status, body = send(bob, http.MethodPost, noticePath, nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "notice from a non-admin")
	status, body = send(bob, http.MethodPut, noticePath+"/t0", notice)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "notice from a non-admin, with a body")
	if inv := invitedBy(t, r, alice); len(inv) != 0 {
		t.Fatalf("refused notices invited alice: %v", inv)
	}

	status, body = send(root, http.MethodPost, noticePath, notice)
	first, _ := body["event_id"].(string)
	if status != 200 || first == "" {
		t.Fatalf("notice: %d %v", status, body)
	}
	inv := invitedBy(t, r, alice)
	if len(inv) != 1 {
		t.Fatalf("invites after the notice: %v", inv)
	}
	var roomID string
	for roomID = range inv {
	}
	if inv[roomID] != sender {
		t.Fatalf("invite from %s, want %s", inv[roomID], sender)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/user/"+esc(alice.UserID.String())+"/rooms/"+esc(roomID)+"/tags", nil)
	if tags, _ := body["tags"].(map[string]any); status != 200 || tags["m.server_notice"] == nil {
		t.Fatalf("tags of the notices room: %d %v", status, body)
	}

	// The invite cannot be rejected, by either path, and stays.
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/rooms/"+esc(roomID)+"/leave", map[string]any{})
	wantAPIError(t, status, body, 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", "rejecting the invite")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(roomID)+"/state/m.room.member/"+esc(alice.UserID.String()), map[string]any{"membership": "leave"})
	wantAPIError(t, status, body, 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", "rejecting the invite as state")
	if _, still := invitedBy(t, r, alice)[roomID]; !still {
		t.Fatal("invite gone after refused rejections")
	}

	// Joined, alice reads the notice but cannot write in the room, and may leave.
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/rooms/"+esc(roomID)+"/join", map[string]any{})
	if status != 200 {
		t.Fatalf("join: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(roomID)+"/event/"+esc(first), nil)
	if status != 200 || body["sender"] != sender || body["content"].(map[string]any)["body"] != "maintenance tonight" {
		t.Fatalf("the notice: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(roomID)+"/send/m.room.message/x1", map[string]any{"msgtype": "m.text", "body": "hi"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "alice writing in her notices room")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/rooms/"+esc(roomID)+"/leave", map[string]any{})
	if status != 200 {
		t.Fatalf("leaving after joining: %d %v", status, body)
	}

	// The next notice invites her back into the same room.
	status, body = send(root, http.MethodPost, noticePath, notice)
	if status != 200 {
		t.Fatalf("second notice: %d %v", status, body)
	}
	if inv := invitedBy(t, r, alice); len(inv) != 1 || inv[roomID] != sender {
		t.Fatalf("re-invite: %v, want %s", inv, roomID)
	}

	// PUT with a transaction ID is idempotent.
	status, body = send(root, http.MethodPut, noticePath+"/t1", notice)
	again1, _ := body["event_id"].(string)
	status2, body2 := send(root, http.MethodPut, noticePath+"/t1", notice)
	again2, _ := body2["event_id"].(string)
	if status != 200 || status2 != 200 || again1 == "" || again1 != again2 {
		t.Fatalf("repeated transaction: %d %v / %d %v", status, body, status2, body2)
	}
	status, body = send(root, http.MethodPut, noticePath+"/t2", notice)
	if status != 200 || body["event_id"] == again1 {
		t.Fatalf("another transaction: %d %v", status, body)
	}

	// Another event type, and a state event.
	status, body = send(root, http.MethodPost, noticePath, map[string]any{"user_id": alice.UserID, "type": "m.room.topic", "state_key": "",
		"content": map[string]any{"topic": "Official messages from this server"}})
	if status != 200 {
		t.Fatalf("state notice: %d %v", status, body)
	}
	if topic, err := r.Server.Rooms.CurrentStateEvent(ctx, roomID, "m.room.topic", ""); err != nil || topic == nil || topic.EventID != body["event_id"] {
		t.Fatalf("topic of the notices room: %v %v, want %v", topic, err, body["event_id"])
	}

	// Bad requests change nothing.
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"content": notice["content"]}, 400, "M_MISSING_PARAM"},
		{map[string]any{"user_id": alice.UserID}, 400, "M_MISSING_PARAM"},
		{map[string]any{"user_id": "@nobody:" + r.Server.Cfg.ServerName, "content": notice["content"]}, 404, "M_NOT_FOUND"},
		{map[string]any{"user_id": "@alice:elsewhere.example", "content": notice["content"]}, 400, "M_INVALID_PARAM"},
		{map[string]any{"user_id": sender, "content": notice["content"]}, 400, "M_INVALID_PARAM"},
		{map[string]any{"user_id": alice.UserID, "content": "text"}, 400, "M_BAD_JSON"},
	} {
		status, body := send(root, http.MethodPost, noticePath, c.body)
		wantAPIError(t, status, body, c.status, c.code, c.body)
	}

	// The system account cannot log in.
	status, body = apiCall(t, r, nil, v3, http.MethodPost, "/login", map[string]any{"type": "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "_server"}, "password": ""})
	if status != 403 && status != 400 {
		t.Fatalf("login as the notices account: %d %v", status, body)
	}
}

func TestServerNoticesOff(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) { c.ServerNotices.Enabled = false })
	ctx := context.Background()
	alice := r.CreateUser("alice")
	if err := r.Server.DB.CreateUser(ctx, storage.User{UserID: r.UserID("root").String(), Localpart: "root", IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	root := r.CreateUserDevice("root", "ROOTDEV", false)
	status, body := apiCall(t, r, root, "", http.MethodPost, noticePath, map[string]any{"user_id": alice.UserID, "content": map[string]any{"body": "x"}})
	wantAPIError(t, status, body, 400, "M_UNKNOWN", "notice while turned off")
	if _, err := r.Server.DB.GetUser(ctx, r.UserID("_server").String()); err == nil {
		t.Fatal("the notices account was created while notices are off")
	}
}

// TestServerNoticesRefuseLoginAccount: when server_notices.localpart names
// an account that logs in (it existed before), notices stay off rather
// than coming from it, since its owner could read every notices room.
func TestServerNoticesRefuseLoginAccount(t *testing.T) {
	dir := t.TempDir()
	first := testrig.StartIn(t, dir, func(c *config.Config) { c.ServerNotices.Enabled = false })
	first.CreateUser("ops")
	first.Stop()
	r := testrig.StartIn(t, dir, func(c *config.Config) { c.ServerNotices.Localpart = "ops" })
	ctx := context.Background()
	if err := r.Server.DB.CreateUser(ctx, storage.User{UserID: r.UserID("root").String(), Localpart: "root", IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	root := r.CreateUserDevice("root", "ROOTDEV", false)
	alice := r.CreateUser("alice")
	status, body := apiCall(t, r, root, "", http.MethodPost, noticePath, map[string]any{"user_id": alice.UserID, "content": map[string]any{"body": "x"}})
	wantAPIError(t, status, body, 400, "M_UNKNOWN", "notice from an account that logs in")
	ops := r.CreateUserDevice("ops", "OPS2", false)
	if rooms, err := ops.JoinedRooms(ctx); err != nil || len(rooms.JoinedRooms) != 0 {
		t.Fatalf("ops's rooms: %v %v", rooms, err)
	}
}
