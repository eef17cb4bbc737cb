package clientapi_test

// End-to-end tests of account.go: a real server on a loopback port,
// driven by mautrix-go's client where it covers the endpoint and by raw
// JSON where the test needs to see the exact wire format (UIA 401 bodies,
// errcodes).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// acctChallenge checks a user-interactive auth 401 and returns its session.
func acctChallenge(t *testing.T, what string, status int, body map[string]any, wantStages ...string) string {
	t.Helper()
	if status != http.StatusUnauthorized {
		t.Fatalf("%s: got %d %v, want a 401 challenge", what, status, body)
	}
	if _, has := body["errcode"]; has {
		t.Fatalf("%s: first challenge carries an errcode: %v", what, body)
	}
	flows, _ := body["flows"].([]any)
	if len(flows) != 1 {
		t.Fatalf("%s: flows %v", what, body["flows"])
	}
	var stages []string
	for _, s := range flows[0].(map[string]any)["stages"].([]any) {
		stages = append(stages, s.(string))
	}
	if !slices.Equal(stages, wantStages) {
		t.Fatalf("%s: stages %v, want %v", what, stages, wantStages)
	}
	if _, ok := body["params"].(map[string]any); !ok {
		t.Fatalf("%s: no params object: %v", what, body)
	}
	session, _ := body["session"].(string)
	if session == "" {
		t.Fatalf("%s: no session: %v", what, body)
	}
	return session
}

func acctClient(t *testing.T, r *testrig.Rig) *mautrix.Client {
	t.Helper()
	c, err := mautrix.NewClient(r.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func acctLogin(t *testing.T, r *testrig.Rig, user, password, deviceID string) *mautrix.Client {
	t.Helper()
	c := acctClient(t, r)
	_, err := c.Login(context.Background(), &mautrix.ReqLogin{
		Type:       mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:   password, DeviceID: id.DeviceID(deviceID), StoreCredentials: true,
	})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func passwordAuth(session, user, password string) map[string]any {
	return map[string]any{
		"type": "m.login.password", "session": session, "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user},
	}
}

func TestAccountRegisterLoginLogout(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	anon := acctClient(t, r)

	flows, err := anon.GetLoginFlows(ctx)
	if err != nil || !flows.HasFlow(mautrix.AuthTypePassword) {
		t.Fatalf("login flows: %+v %v", flows, err)
	}
	avail, err := anon.RegisterAvailable(ctx, "alice")
	if err != nil || !avail.Available {
		t.Fatalf("available: %+v %v", avail, err)
	}
	reg, err := anon.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "alice", Password: "wonderland", InitialDeviceDisplayName: "first"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg.UserID != r.UserID("alice") || reg.AccessToken == "" || reg.DeviceID == "" {
		t.Fatalf("register response: %+v", reg)
	}
	_, err = anon.RegisterAvailable(ctx, "alice")
	wantClientError(t, err, 400, "M_USER_IN_USE")
	_, err = anon.RegisterAvailable(ctx, "Not Valid")
	wantClientError(t, err, 400, "M_INVALID_USERNAME")

	alice := acctLogin(t, r, "alice", "wonderland", "LAPTOP")
	who, err := alice.Whoami(ctx)
	if err != nil || who.UserID != r.UserID("alice") || who.DeviceID != "LAPTOP" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	status, body := r.JSON(t, "GET", "/_matrix/client/v3/account/whoami", alice.AccessToken, nil)
	if status != 200 || body["is_guest"] != false {
		t.Fatalf("whoami body: %d %v", status, body)
	}

	// The raw login answer carries the deprecated home_server and well_known.
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "user": "@alice:" + r.Server.Cfg.ServerName, "password": "wonderland",
	})
	if status != 200 || body["home_server"] != r.Server.Cfg.ServerName || body["well_known"] == nil {
		t.Fatalf("legacy login: %d %v", status, body)
	}

	_, err = anon.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"}, Password: "wrong"})
	wantClientError(t, err, 403, "M_FORBIDDEN")
	_, err = anon.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "nobody"}, Password: "wonderland"})
	wantClientError(t, err, 403, "M_FORBIDDEN")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.sso"})
	wantAPIError(t, status, body, 400, "M_UNKNOWN", "unknown login type")

	if _, err := alice.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Whoami(ctx)
	wantClientError(t, err, 401, "M_UNKNOWN_TOKEN")

	// logout/all ends every session, including the registration's.
	a1 := acctLogin(t, r, "alice", "wonderland", "")
	if _, err := a1.LogoutAll(ctx); err != nil {
		t.Fatal(err)
	}
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/account/whoami", reg.AccessToken, nil)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "registration token after logout/all")
}

func TestAccountRegisterWireFormat(t *testing.T) {
	r := testrig.Start(t)
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "bob", "password": "bob-password"})
	session := acctChallenge(t, "register", status, body, "m.login.dummy")
	if c, _ := body["completed"].([]any); c == nil || len(c) != 0 {
		t.Fatalf("completed: %v", body["completed"])
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "bob", "password": "bob-password", "inhibit_login": true,
		"auth": map[string]any{"type": "m.login.dummy", "session": session},
	})
	if status != 200 || body["user_id"] != r.UserID("bob").String() || body["access_token"] != nil || body["device_id"] != nil {
		t.Fatalf("inhibited registration: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register?kind=guest", "", map[string]any{})
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN", "guest")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "bob"})
	wantAPIError(t, status, body, 400, "M_USER_IN_USE", "taken before auth")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "b:ob"})
	wantAPIError(t, status, body, 400, "M_INVALID_USERNAME", "invalid before auth")
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/register/available", "", nil)
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "available without username")
	// r0 is served too, for old tools.
	status, _ = r.JSON(t, "GET", "/_matrix/client/r0/register/available?username=carol", "", nil)
	if status != 200 {
		t.Fatalf("r0 available: %d", status)
	}
}

func TestAccountRegistrationDisabled(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) { c.Registration = config.RegistrationDisabled })
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "bob", "auth": map[string]any{"type": "m.login.dummy"}})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "register")
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/register/available?username=bob", "", nil)
	if status != 200 || body["available"] != true {
		t.Fatalf("available in disabled mode: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=x", "", nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "validity")
}

func TestAccountRegistrationToken(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) { c.Registration = config.RegistrationToken })
	ctx := context.Background()
	tok, err := r.Server.Accounts.NewRegistrationToken(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	validity := func(token string) any {
		t.Helper()
		status, body := r.JSON(t, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+url.QueryEscape(token), "", nil)
		if status != 200 {
			t.Fatalf("validity: %d %v", status, body)
		}
		return body["valid"]
	}
	if validity(tok.Token) != true || validity("nope") != false {
		t.Fatal("validity answers wrong")
	}

	anon := acctClient(t, r)
	_, err = anon.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "dave", Password: "dave-password"})
	if err == nil {
		t.Fatal("dummy registration accepted in token mode")
	}
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "dave", "password": "dave-password"})
	session := acctChallenge(t, "register", status, body, "m.login.registration_token")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "dave", "password": "dave-password",
		"auth": map[string]any{"type": "m.login.registration_token", "token": "wrong", "session": session}})
	if status != 401 || body["errcode"] == nil || body["session"] != session {
		t.Fatalf("wrong token: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{"username": "dave", "password": "dave-password",
		"auth": map[string]any{"type": "m.login.registration_token", "token": tok.Token, "session": session}})
	if status != 200 || body["access_token"] == nil {
		t.Fatalf("token registration: %d %v", status, body)
	}
	if validity(tok.Token) != false {
		t.Fatal("a token with one use is still valid after registering")
	}
	acctLogin(t, r, "dave", "dave-password", "")
}

// registerNewMatrixUser does what Synapse's register_new_matrix_user
// script does, byte for byte: GET a nonce, POST the HMAC-SHA1 of
// nonce\0user\0password\0admin|notadmin with user_type null.
func registerNewMatrixUser(t *testing.T, r *testrig.Rig, secret, user, password string, admin bool) (int, map[string]any) {
	t.Helper()
	status, body := r.JSON(t, "GET", "/_synapse/admin/v1/register", "", nil)
	if status != 200 {
		return status, body
	}
	nonce := body["nonce"].(string)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(nonce + "\x00" + user + "\x00" + password + "\x00"))
	if admin {
		mac.Write([]byte("admin"))
	} else {
		mac.Write([]byte("notadmin"))
	}
	return r.JSON(t, "POST", "/_synapse/admin/v1/register", "", map[string]any{
		"nonce": nonce, "username": user, "password": password, "mac": hex.EncodeToString(mac.Sum(nil)),
		"admin": admin, "user_type": nil,
	})
}

func TestSharedSecretRegistration(t *testing.T) {
	off := testrig.Start(t)
	status, body := off.JSON(t, "GET", "/_synapse/admin/v1/register", "", nil)
	wantAPIError(t, status, body, 400, "M_UNKNOWN", "nonce without a secret")

	const secret = "the shared secret"
	r := testrig.Start(t, func(c *config.Config) {
		c.RegistrationSharedSecret = secret
		c.Registration = config.RegistrationDisabled
	})
	status, body = registerNewMatrixUser(t, r, secret, "admin", "admin-password", true)
	if status != 200 || body["user_id"] != r.UserID("admin").String() || body["access_token"] == nil || body["device_id"] == nil || body["home_server"] != r.Server.Cfg.ServerName {
		t.Fatalf("shared-secret registration: %d %v", status, body)
	}
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/account/whoami", body["access_token"].(string), nil)
	if status != 200 {
		t.Fatalf("token from shared-secret registration: %d %v", status, body)
	}
	u, err := r.Server.DB.GetUser(context.Background(), r.UserID("admin").String())
	if err != nil || !u.IsAdmin {
		t.Fatalf("admin flag: %+v %v", u, err)
	}
	acctLogin(t, r, "admin", "admin-password", "")

	status, body = registerNewMatrixUser(t, r, "wrong secret", "eve", "pw", false)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "wrong secret")
	status, body = registerNewMatrixUser(t, r, secret, "admin", "admin-password", false)
	wantAPIError(t, status, body, 400, "M_USER_IN_USE", "taken")
	status, body = r.JSON(t, "POST", "/_synapse/admin/v1/register", "", map[string]any{"nonce": "made-up", "username": "x", "password": "y", "mac": "00"})
	wantAPIError(t, status, body, 400, "M_UNKNOWN", "unknown nonce")
}

func TestAccountDevices(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	if _, err := acctClient(t, r).RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "erin", Password: "erin-password", DeviceID: "FIRST", InitialDeviceDisplayName: "Phone"}); err != nil {
		t.Fatal(err)
	}
	erin := acctLogin(t, r, "erin", "erin-password", "SECOND")
	acctLogin(t, r, "erin", "erin-password", "THIRD")
	acctLogin(t, r, "erin", "erin-password", "FOURTH")

	list, err := erin.GetDevicesInfo(ctx)
	if err != nil || len(list.Devices) != 4 {
		t.Fatalf("devices: %+v %v", list, err)
	}
	d, err := erin.GetDeviceInfo(ctx, "FIRST")
	if err != nil || d.DisplayName != "Phone" {
		t.Fatalf("device: %+v %v", d, err)
	}
	if err := erin.SetDeviceInfo(ctx, "FIRST", &mautrix.ReqDeviceInfo{DisplayName: "Old phone"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := erin.GetDeviceInfo(ctx, "FIRST"); d.DisplayName != "Old phone" {
		t.Fatalf("rename: %+v", d)
	}
	_, err = erin.GetDeviceInfo(ctx, "NOPE")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	err = erin.SetDeviceInfo(ctx, "NOPE", &mautrix.ReqDeviceInfo{DisplayName: "x"})
	wantClientError(t, err, 404, "M_NOT_FOUND")

	// DELETE /devices/{id}: 401 challenge, wrong password, then success.
	status, body := r.JSON(t, "DELETE", "/_matrix/client/v3/devices/FIRST", erin.AccessToken, map[string]any{})
	session := acctChallenge(t, "delete device", status, body, "m.login.password")
	status, body = r.JSON(t, "DELETE", "/_matrix/client/v3/devices/FIRST", erin.AccessToken, map[string]any{"auth": passwordAuth(session, "erin", "wrong")})
	if status != 401 || body["errcode"] != "M_FORBIDDEN" || body["session"] != session {
		t.Fatalf("wrong password: %d %v", status, body)
	}
	status, body = r.JSON(t, "DELETE", "/_matrix/client/v3/devices/FIRST", erin.AccessToken, map[string]any{"auth": passwordAuth(session, r.UserID("erin").String(), "erin-password")})
	if status != 200 {
		t.Fatalf("delete device: %d %v", status, body)
	}
	_, err = erin.GetDeviceInfo(ctx, "FIRST")
	wantClientError(t, err, 404, "M_NOT_FOUND")

	// POST /delete_devices.
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/delete_devices", erin.AccessToken, map[string]any{"devices": []string{"THIRD", "FOURTH"}})
	session = acctChallenge(t, "delete_devices", status, body, "m.login.password")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/delete_devices", erin.AccessToken, map[string]any{
		"devices": []string{"THIRD", "FOURTH"}, "auth": passwordAuth(session, "erin", "erin-password")})
	if status != 200 {
		t.Fatalf("delete_devices: %d %v", status, body)
	}
	list, _ = erin.GetDevicesInfo(ctx)
	if len(list.Devices) != 1 || list.Devices[0].DeviceID != "SECOND" {
		t.Fatalf("devices left: %+v", list.Devices)
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/delete_devices", erin.AccessToken, map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "delete_devices without devices")
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/account/3pid", erin.AccessToken, nil)
	if status != 200 || body["threepids"] == nil || len(body["threepids"].([]any)) != 0 {
		t.Fatalf("3pid: %d %v", status, body)
	}
}

// TestDeleteDeviceOtherUsersPassword: the password of another account
// (even a right one) does not authorise deleting the caller's device, and
// that is a final 403, not a 401 inviting another try.
func TestDeleteDeviceOtherUsersPassword(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	for _, u := range []string{"frank", "grace"} {
		if _, err := acctClient(t, r).RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: u, Password: u + "-password"}); err != nil {
			t.Fatal(err)
		}
	}
	frank := acctLogin(t, r, "frank", "frank-password", "KEEP")
	acctLogin(t, r, "frank", "frank-password", "VICTIM")

	status, body := r.JSON(t, "DELETE", "/_matrix/client/v3/devices/VICTIM", frank.AccessToken, map[string]any{})
	session := acctChallenge(t, "delete device", status, body, "m.login.password")
	status, body = r.JSON(t, "DELETE", "/_matrix/client/v3/devices/VICTIM", frank.AccessToken,
		map[string]any{"auth": passwordAuth(session, r.UserID("grace").String(), "grace-password")})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "another user's password")
	// Without a session too.
	status, body = r.JSON(t, "DELETE", "/_matrix/client/v3/devices/VICTIM", frank.AccessToken,
		map[string]any{"auth": passwordAuth("", "grace", "grace-password")})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "another user's password, no session")
	if _, err := frank.GetDeviceInfo(ctx, "VICTIM"); err != nil {
		t.Fatalf("device deleted: %v", err)
	}
	status, body = r.JSON(t, "DELETE", "/_matrix/client/v3/devices/VICTIM", frank.AccessToken,
		map[string]any{"auth": passwordAuth(session, "frank", "frank-password")})
	if status != 200 {
		t.Fatalf("delete with own password: %d %v", status, body)
	}
}

func TestAccountPasswordAndDeactivation(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	if _, err := acctClient(t, r).RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "fay", Password: "fay-old-password"}); err != nil {
		t.Fatal(err)
	}
	fay := acctLogin(t, r, "fay", "fay-old-password", "MAIN")
	other := acctLogin(t, r, "fay", "fay-old-password", "OTHER")

	status, body := r.JSON(t, "POST", "/_matrix/client/v3/account/password", fay.AccessToken, map[string]any{"new_password": "fay-new-password"})
	session := acctChallenge(t, "password", status, body, "m.login.password")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/account/password", fay.AccessToken, map[string]any{
		"new_password": "fay-new-password", "auth": passwordAuth(session, "fay", "fay-old-password")})
	if status != 200 {
		t.Fatalf("change password: %d %v", status, body)
	}
	if _, err := fay.Whoami(ctx); err != nil {
		t.Fatalf("the requesting session was logged out: %v", err)
	}
	_, err := other.Whoami(ctx)
	wantClientError(t, err, 401, "M_UNKNOWN_TOKEN")
	acctLogin(t, r, "fay", "fay-new-password", "")

	// Fay is in a room with gus; deactivation makes her leave it.
	gus := r.CreateUser("gus")
	room := testrig.PublicRoom(t, gus, fay)
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/account/deactivate", fay.AccessToken, map[string]any{})
	session = acctChallenge(t, "deactivate", status, body, "m.login.password")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/account/deactivate", fay.AccessToken, map[string]any{
		"auth": passwordAuth(session, "fay", "fay-new-password"), "erase": false})
	if status != 200 || body["id_server_unbind_result"] != "success" {
		t.Fatalf("deactivate: %d %v", status, body)
	}
	var member event.MemberEventContent
	if err := gus.StateEvent(ctx, room, event.StateMember, r.UserID("fay").String(), &member); err != nil {
		t.Fatal(err)
	}
	if member.Membership != event.MembershipLeave {
		t.Fatalf("fay's membership after deactivation: %q", member.Membership)
	}
	_, err = fay.Whoami(ctx)
	wantClientError(t, err, 401, "M_UNKNOWN_TOKEN")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "fay"}, "password": "fay-new-password"})
	wantAPIError(t, status, body, 403, "M_USER_DEACTIVATED", "login after deactivation")
}

func TestAccountProfile(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	hal, ida := r.CreateUser("hal"), r.CreateUser("ida")
	room := testrig.PublicRoom(t, hal, ida)
	if err := hal.SetDisplayName(ctx, "Hal 9000"); err != nil {
		t.Fatal(err)
	}
	avatar := id.ContentURI{Homeserver: r.Server.Cfg.ServerName, FileID: "abcdef"}
	if err := hal.SetAvatarURL(ctx, avatar); err != nil {
		t.Fatal(err)
	}
	// Everyone sees the new profile, globally and in the room.
	p, err := ida.GetProfile(ctx, hal.UserID)
	if err != nil || p.DisplayName != "Hal 9000" || p.AvatarURL != avatar {
		t.Fatalf("profile: %+v %v", p, err)
	}
	dn, err := ida.GetDisplayName(ctx, hal.UserID)
	if err != nil || dn.DisplayName != "Hal 9000" {
		t.Fatalf("displayname: %+v %v", dn, err)
	}
	var member event.MemberEventContent
	if err := ida.StateEvent(ctx, room, event.StateMember, hal.UserID.String(), &member); err != nil {
		t.Fatal(err)
	}
	if member.Displayname != "Hal 9000" || member.AvatarURL != avatar.CUString() || member.Membership != event.MembershipJoin {
		t.Fatalf("member event: %+v", member)
	}

	// Only one's own profile can be changed.
	status, body := r.JSON(t, "PUT", "/_matrix/client/v3/profile/"+url.PathEscape(hal.UserID.String())+"/displayname", ida.AccessToken, map[string]any{"displayname": "pwned"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "set someone else's name")
	status, body = r.JSON(t, "PUT", "/_matrix/client/v3/profile/"+url.PathEscape(ida.UserID.String())+"/displayname", ida.AccessToken, map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "missing value")
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/profile/"+url.PathEscape("@nobody:"+r.Server.Cfg.ServerName), "", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "unknown user")
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/profile/"+url.PathEscape("@nobody:"+r.Server.Cfg.ServerName)+"/displayname", "", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "unknown user's displayname")

	// Removing the avatar removes it everywhere.
	if err := hal.DeleteProfileField(ctx, "avatar_url"); err != nil {
		t.Fatal(err)
	}
	status, body = r.JSON(t, "GET", "/_matrix/client/v3/profile/"+url.PathEscape(hal.UserID.String()), "", nil)
	if status != 200 || body["avatar_url"] != nil || body["displayname"] != "Hal 9000" {
		t.Fatalf("profile after delete: %d %v", status, body)
	}
	member = event.MemberEventContent{}
	if err := ida.StateEvent(ctx, room, event.StateMember, hal.UserID.String(), &member); err != nil {
		t.Fatal(err)
	}
	if member.AvatarURL != "" || member.Displayname != "Hal 9000" {
		t.Fatalf("member event after delete: %+v", member)
	}
}

// FuzzAccountBodies throws arbitrary bodies at the account endpoints: the
// answer must be JSON, never a 5xx, and every error must carry an errcode
// except a user-interactive auth challenge, which carries flows instead.
func FuzzAccountBodies(f *testing.F) {
	for _, seed := range []string{`{}`, `[]`, `nul`, `"x"`, "\x00\xff", `{"type":"m.login.password","user":"alice","password":"pw"}`,
		`{"identifier":{"type":"m.id.user","user":5}}`, `{"identifier":"x"}`, `{"auth":{"type":"m.login.dummy"}}`,
		`{"auth":{"type":"m.login.password","session":"x"}}`, `{"auth":[]}`, `{"username":"Ä","password":"p"}`,
		`{"devices":null}`, `{"devices":[1]}`, `{"displayname":null}`, `{"displayname":{"a":1}}`, `{"avatar_url":"mxc://x/y"}`,
		`{"new_password":"n","logout_devices":"yes"}`, `{"nonce":"n","username":"u","password":"p","mac":"zz","admin":"y"}`,
		`{"display_name":7}`, `{"refresh_token":5}`, `{"refresh_token":"axr_x"}`, `{"locked":"yes"}`, `{"suspended":null}`} {
		for i := range 10 {
			f.Add(seed, uint8(i))
		}
	}
	r := testrig.Start(f, func(c *config.Config) { c.RegistrationSharedSecret = "fuzz" })
	alice := r.CreateUser("alice")
	me := url.PathEscape(alice.UserID.String())
	endpoints := []struct{ method, path string }{
		{http.MethodPost, "/_matrix/client/v3/login"},
		{http.MethodPost, "/_matrix/client/v3/register"},
		{http.MethodPost, "/_matrix/client/v3/account/password"},
		{http.MethodPost, "/_matrix/client/v3/delete_devices"},
		{http.MethodPut, "/_matrix/client/v3/profile/" + me + "/displayname"},
		{http.MethodPut, "/_matrix/client/v3/profile/" + me + "/avatar_url"},
		{http.MethodPut, "/_matrix/client/v3/devices/DEV_alice"},
		{http.MethodPost, "/_synapse/admin/v1/register"},
		{http.MethodPost, "/_matrix/client/v3/refresh"},
		{http.MethodPut, "/_matrix/client/v1/admin/lock/" + me},
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		ep := endpoints[int(which)%len(endpoints)]
		status, resp := r.DoT(t, ep.method, ep.path, alice.AccessToken, bytes.NewReader([]byte(body)))
		if status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, status, resp)
		}
		var parsed map[string]any
		if err := json.Unmarshal(resp, &parsed); err != nil {
			t.Fatalf("%s %s with %q: non-JSON answer %q", ep.method, ep.path, body, resp)
		}
		if status >= 400 {
			_, hasCode := parsed["errcode"].(string)
			_, hasFlows := parsed["flows"]
			if !hasCode && !(status == 401 && hasFlows) {
				t.Fatalf("%s %s with %q: error without errcode: %s", ep.method, ep.path, body, resp)
			}
		}
	})
}

// TestWeakPasswordsRefused: registration and password changes refuse a
// password shorter than password_min_length with 400 M_WEAK_PASSWORD, before
// any user-interactive auth, and change nothing.
func TestWeakPasswordsRefused(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	wantWeak := func(what string, status int, body map[string]any) {
		t.Helper()
		if status != http.StatusBadRequest || body["errcode"] != "M_WEAK_PASSWORD" {
			t.Fatalf("%s: %d %v, want 400 M_WEAK_PASSWORD", what, status, body)
		}
	}
	status, body := r.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "gil", "password": "five5", "auth": map[string]any{"type": "m.login.dummy"}})
	wantWeak("register", status, body)
	// Eight characters (not bytes: "pässwörd" is 10 bytes) are enough.
	if _, err := acctClient(t, r).RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "gil", Password: "pässwörd"}); err != nil {
		t.Fatalf("register after the refusal: %v", err)
	}
	gil := acctLogin(t, r, "gil", "pässwörd", "MAIN")
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/account/password", gil.AccessToken, map[string]any{
		"new_password": "short", "auth": passwordAuth("", "gil", "pässwörd")})
	wantWeak("password change", status, body)
	acctLogin(t, r, "gil", "pässwörd", "AGAIN") // unchanged

	// The setting moves the bar.
	r2 := testrig.Start(t, func(c *config.Config) { c.PasswordMinLength = 12 })
	status, body = r2.JSON(t, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "hal", "password": "elevenchars", "auth": map[string]any{"type": "m.login.dummy"}})
	wantWeak("register under password_min_length 12", status, body)
}
