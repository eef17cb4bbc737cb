package clientapi_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

func guestsOn(c *config.Config) { c.GuestAccess = true }

// registerGuest creates a guest account and returns a client for it.
func registerGuest(t *testing.T, r *testrig.Rig) *mautrix.Client {
	t.Helper()
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register?kind=guest", "",
		map[string]any{"initial_device_display_name": "guest phone", "username": "ignored", "device_id": "IGNORED"})
	if status != 200 {
		t.Fatalf("guest register: %d %v", status, body)
	}
	userID, _ := body["user_id"].(string)
	token, _ := body["access_token"].(string)
	device, _ := body["device_id"].(string)
	if !regexp.MustCompile(`^@[0-9]+:axon\.test$`).MatchString(userID) || token == "" || device == "" || device == "IGNORED" {
		t.Fatalf("guest register: %v", body)
	}
	c, err := mautrix.NewClient(r.URL, id.UserID(userID), token)
	if err != nil {
		t.Fatal(err)
	}
	c.DeviceID = id.DeviceID(device)
	return c
}

func TestGuestRegistrationDisabled(t *testing.T) {
	r := testrig.Start(t)
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register?kind=guest", "", map[string]any{})
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN", "guest register while disabled")
}

func TestGuestAccess(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t, guestsOn)
	alice := r.CreateUser("alice")
	guest := registerGuest(t, r)

	status, body := apiCall(t, r, guest, v3, "GET", "/account/whoami", nil)
	if status != 200 || body["user_id"] != guest.UserID.String() || body["is_guest"] != true {
		t.Fatalf("guest whoami: %d %v", status, body)
	}
	dev, err := guest.GetDeviceInfo(ctx, guest.DeviceID)
	if err != nil || dev.DisplayName != "guest phone" {
		t.Fatalf("guest device: %v %+v", err, dev)
	}

	// Endpoints outside the spec's guest list are refused, and change nothing.
	status, body = apiCall(t, r, guest, v3, "POST", "/createRoom", map[string]any{})
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
	status, body = apiCall(t, r, guest, v3, "PUT", "/profile/"+esc(guest.UserID.String())+"/avatar_url", map[string]any{"avatar_url": "mxc://x/y"})
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
	if status, body = apiCall(t, r, guest, v3, "PUT", "/profile/"+esc(guest.UserID.String())+"/displayname", map[string]any{"displayname": "Visitor"}); status != 200 {
		t.Fatalf("guest displayname: %d %v", status, body)
	}
	if status, body = apiCall(t, r, nil, v3, "GET", "/profile/"+esc(guest.UserID.String())+"/displayname", nil); status != 200 || body["displayname"] != "Visitor" {
		t.Fatalf("read guest displayname: %d %v", status, body)
	}

	// private_chat lets (invited) guests join; public_chat forbids guests.
	open := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{guest.UserID}})
	closed := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "closed"})
	testrig.Join(t, open, guest)
	testrig.SendText(t, guest, open, "hi from a guest")
	// An invite does not override the room's guest access.
	if _, err := alice.InviteUser(ctx, closed, &mautrix.ReqInviteUser{UserID: guest.UserID}); err != nil {
		t.Fatal(err)
	}
	_, err = guest.JoinRoomByID(ctx, closed)
	wantClientError(t, err, 403, "M_GUEST_ACCESS_FORBIDDEN")
	if m := membership(t, r, alice, closed, guest.UserID); m != "invite" {
		t.Fatalf("refused guest has membership %q, want invite", m)
	}
	// /join/{roomIdOrAlias} is not on the guest list at all.
	_, err = guest.JoinRoom(ctx, "#closed:axon.test", nil)
	wantClientError(t, err, 403, "M_GUEST_ACCESS_FORBIDDEN")

	// Turning guest access off makes the joined guest leave.
	if _, err := alice.SendStateEvent(ctx, open, event.StateGuestAccess, "", map[string]any{"guest_access": "forbidden"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for membership(t, r, alice, open, guest.UserID) != "leave" {
		if time.Now().After(deadline) {
			t.Fatal("guest still joined after guest access was turned off")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGuestUpgrade(t *testing.T) {
	r := testrig.Start(t, guestsOn)
	alice := r.CreateUser("alice")
	guest := registerGuest(t, r)
	localpart := guest.UserID.Localpart()
	reg := func(body map[string]any) (int, map[string]any) {
		body["auth"] = map[string]any{"type": "m.login.dummy"}
		return r.JSON(t, "POST", "/_matrix/client/v3/register", "", body)
	}

	// A wrong username, or a token that is not a guest's, upgrades nothing.
	status, body := reg(map[string]any{"guest_access_token": guest.AccessToken, "username": "someoneelse", "password": "pw-123456"})
	wantAPIError(t, status, body, 400, "M_INVALID_USERNAME", "upgrade with another username")
	status, body = reg(map[string]any{"guest_access_token": alice.AccessToken, "username": "alice", "password": "pw-123456"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "upgrade of a full account")
	status, body = reg(map[string]any{"guest_access_token": "nonsense", "username": localpart, "password": "pw-123456"})
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "upgrade with an unknown token")
	status, body = apiCall(t, r, guest, v3, "GET", "/account/whoami", nil)
	if status != 200 || body["is_guest"] != true {
		t.Fatalf("guest changed by failed upgrades: %d %v", status, body)
	}

	status, body = reg(map[string]any{"guest_access_token": guest.AccessToken, "username": localpart, "password": "pw-123456"})
	if status != 200 || body["user_id"] != guest.UserID.String() || body["access_token"] == "" {
		t.Fatalf("upgrade: %d %v", status, body)
	}
	// The same account is now a full one: the old token too, and the password logs in.
	status, body = apiCall(t, r, guest, v3, "GET", "/account/whoami", nil)
	if status != 200 || body["user_id"] != guest.UserID.String() || body["is_guest"] != false {
		t.Fatalf("whoami after upgrade: %d %v", status, body)
	}
	if status, body = apiCall(t, r, guest, v3, "POST", "/createRoom", map[string]any{}); status != 200 {
		t.Fatalf("createRoom after upgrade: %d %v", status, body)
	}
	acctLogin(t, r, localpart, "pw-123456", "")
	// A second upgrade has nothing to upgrade.
	status, body = reg(map[string]any{"guest_access_token": guest.AccessToken, "username": localpart, "password": "pw-123456"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "second upgrade")
}
