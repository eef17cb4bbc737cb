package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestLoginToken(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	const getToken = "/_matrix/client/v1/login/get_token"

	// Advertised in GET /login and in the capabilities.
	flows, err := alice.GetLoginFlows(ctx)
	if err != nil || !flows.HasFlow("m.login.token") || !flows.HasFlow("m.login.password") {
		t.Fatalf("flows %+v %v", flows, err)
	}
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/login", "", nil)
	if status != 200 || body["flows"].([]any)[1].(map[string]any)["get_login_token"] != true {
		t.Fatalf("GET /login: %d %v", status, body)
	}
	caps, err := alice.Capabilities(ctx)
	if err != nil || caps.GetLoginToken == nil || !caps.GetLoginToken.Enabled {
		t.Fatalf("capabilities %+v %v", caps, err)
	}

	// The password is confirmed through user-interactive auth first.
	status, body = r.JSON(t, http.MethodPost, getToken, alice.AccessToken, map[string]any{})
	session := acctChallenge(t, "get_token", status, body, "m.login.password")
	status, body = r.JSON(t, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": session, "password": "wrong",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}}})
	wantAPIError(t, status, body, 401, "M_FORBIDDEN", "wrong password")
	// Bob's password does not confirm for alice.
	status, body = r.JSON(t, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": session, "password": "password-bob",
		"identifier": map[string]any{"type": "m.id.user", "user": "bob"}}})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "other user's password")
	status, body = r.JSON(t, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": session, "password": "password-alice",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}}})
	if status != 200 || body["expires_in_ms"] != float64(120000) {
		t.Fatalf("get_token: %d %v", status, body)
	}
	token, _ := body["login_token"].(string)
	if len(token) < 32 {
		t.Fatalf("login token %q", token)
	}

	// A new device logs in with it, once.
	fresh, err := mautrix.NewClient(r.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := fresh.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeToken, Token: token, DeviceID: "NEWDEV", InitialDeviceDisplayName: "phone", StoreCredentials: true})
	if err != nil {
		t.Fatalf("token login: %v", err)
	}
	if resp.UserID != alice.UserID || resp.DeviceID != "NEWDEV" || resp.AccessToken == "" {
		t.Fatalf("login response %+v", resp)
	}
	who, err := fresh.Whoami(ctx)
	if err != nil || who.UserID != alice.UserID || who.DeviceID != "NEWDEV" {
		t.Fatalf("whoami %+v %v", who, err)
	}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": token})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "reused token")
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": "made-up"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "unknown token")
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token"})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "missing token")

	// Without an access token the endpoint is refused.
	status, body = r.JSON(t, http.MethodPost, getToken, "", map[string]any{})
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN", "no access token")
	_ = bob
}

func TestLoginTokenExpires(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	db := r.Server.DB
	// A token whose expiry has passed is refused and removed.
	if err := db.AddLoginToken(ctx, "hash-of-old", alice.UserID.String(), 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsumeLoginToken(ctx, "hash-of-old", 2); err == nil {
		t.Fatal("expired token accepted")
	}
	if err := db.AddLoginToken(ctx, "hash-of-new", alice.UserID.String(), 0, 100); err != nil {
		t.Fatal(err)
	}
	if u, err := db.ConsumeLoginToken(ctx, "hash-of-new", 50); err != nil || u != alice.UserID.String() {
		t.Fatalf("valid token: %q %v", u, err)
	}
	if _, err := db.ConsumeLoginToken(ctx, "hash-of-new", 50); err == nil {
		t.Fatal("token used twice")
	}
}
