package clientapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

const refreshLifetime = 90 * time.Second

// startRefreshRig starts a server whose refreshable access tokens live
// refreshLifetime, with an account clock the test moves forward (so that
// tokens expire without sleeping), and returns that clock's advance.
func startRefreshRig(t *testing.T, opts ...testrig.Option) (*testrig.Rig, func(time.Duration)) {
	t.Helper()
	opts = append([]testrig.Option{func(c *config.Config) { c.RefreshTokens.AccessTokenLifetime = refreshLifetime }}, opts...)
	r := testrig.Start(t, opts...)
	var offset atomic.Int64
	r.Server.Accounts.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	return r, func(d time.Duration) { offset.Add(int64(d)) }
}

// pair is an access token and its refresh token.
type pair struct{ access, refresh string }

// wantPair checks a login/register/refresh answer that carries a refresh
// token and returns the tokens.
func wantPair(t *testing.T, what string, status int, body map[string]any) pair {
	t.Helper()
	p := pair{access: str(body["access_token"]), refresh: str(body["refresh_token"])}
	if status != 200 || !strings.HasPrefix(p.access, "axo_") || !strings.HasPrefix(p.refresh, "axr_") ||
		body["expires_in_ms"] != float64(refreshLifetime.Milliseconds()) {
		t.Fatalf("%s: %d %v", what, status, body)
	}
	return p
}

func str(v any) string { s, _ := v.(string); return s }

func refreshWith(t *testing.T, r *testrig.Rig, token string) (int, map[string]any) {
	t.Helper()
	return r.JSON(t, http.MethodPost, "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": token})
}

// wantWorks checks that an access token authenticates.
func wantWorks(t *testing.T, r *testrig.Rig, what, token string) {
	t.Helper()
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", token, nil)
	if status != 200 || body["user_id"] != "@alice:axon.test" {
		t.Fatalf("%s: whoami %d %v", what, status, body)
	}
}

// wantUnknownToken checks an M_UNKNOWN_TOKEN answer and its soft_logout.
func wantUnknownToken(t *testing.T, what string, status int, body map[string]any, softLogout bool) {
	t.Helper()
	if status != 401 || body["errcode"] != "M_UNKNOWN_TOKEN" || body["soft_logout"] != softLogout {
		t.Fatalf("%s: got %d %v, want 401 M_UNKNOWN_TOKEN soft_logout=%v", what, status, body, softLogout)
	}
}

func whoami(t *testing.T, r *testrig.Rig, token string) (int, map[string]any) {
	t.Helper()
	return r.JSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", token, nil)
}

func TestRefreshTokens(t *testing.T) {
	r, advance := startRefreshRig(t)
	r.CreateUser("alice")
	login := func(refresh bool, device string) (int, map[string]any) {
		return r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"},
			"password": "password-alice", "device_id": device, "refresh_token": refresh})
	}

	// Clients that do not opt in get a token that never expires.
	status, body := login(false, "PLAIN")
	if _, has := body["refresh_token"]; status != 200 || has || body["expires_in_ms"] != nil {
		t.Fatalf("login without refresh_token: %d %v", status, body)
	}
	plain := str(body["access_token"])

	status, body = login(true, "PHONE")
	if body["device_id"] != "PHONE" {
		t.Fatalf("device: %v", body)
	}
	p1 := wantPair(t, "login", status, body)
	wantWorks(t, r, "first access token", p1.access)
	// The two kinds of token are not interchangeable.
	status, body = whoami(t, r, p1.refresh)
	wantUnknownToken(t, "refresh token as access token", status, body, false)
	status, body = refreshWith(t, r, p1.access)
	wantUnknownToken(t, "access token as refresh token", status, body, false)

	// A refresh gives a new pair on the same device.
	status, body = refreshWith(t, r, p1.refresh)
	p2 := wantPair(t, "refresh", status, body)
	if p2.access == p1.access || p2.refresh == p1.refresh {
		t.Fatal("refresh returned the old tokens")
	}
	// A client that lost that answer can repeat the refresh: the old
	// refresh token works until the new pair is used. The pair it never
	// received is replaced.
	status, body = refreshWith(t, r, p1.refresh)
	p3 := wantPair(t, "repeated refresh", status, body)
	status, body = whoami(t, r, p2.access)
	wantUnknownToken(t, "pair replaced by a repeat", status, body, false)
	status, body = whoami(t, r, p3.access)
	if status != 200 || body["device_id"] != "PHONE" {
		t.Fatalf("refreshed token: %d %v", status, body)
	}
	// Using the new access token revoked the old refresh token.
	status, body = refreshWith(t, r, p1.refresh)
	wantUnknownToken(t, "old refresh token after the new access token was used", status, body, false)
	// The access token the refresh replaced still works until it expires,
	// so requests already under way do not fail.
	wantWorks(t, r, "replaced access token before expiry", p1.access)

	// Using the new refresh token also revokes the one before it.
	status, body = refreshWith(t, r, p3.refresh)
	p4 := wantPair(t, "refresh with the new refresh token", status, body)
	status, body = refreshWith(t, r, p4.refresh)
	p5 := wantPair(t, "second rotation", status, body)
	status, body = refreshWith(t, r, p3.refresh)
	wantUnknownToken(t, "refresh token two rotations old", status, body, false)

	// Expired access tokens are a soft logout; non-opted-in tokens live on.
	advance(refreshLifetime + time.Second)
	status, body = whoami(t, r, p5.access)
	wantUnknownToken(t, "expired access token", status, body, true)
	status, body = whoami(t, r, p1.access)
	wantUnknownToken(t, "expired replaced token", status, body, false) // two refreshes ago: forgotten
	wantWorks(t, r, "token without refresh after the lifetime", plain)
	advance(24 * time.Hour)
	wantWorks(t, r, "token without refresh a day later", plain)

	// The refresh token still works after the access token expired.
	status, body = refreshWith(t, r, p5.refresh)
	p6 := wantPair(t, "refresh after expiry", status, body)
	wantWorks(t, r, "access token refreshed after expiry", p6.access)

	// Logging out ends both tokens.
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/logout", p6.access, map[string]any{})
	if status != 200 {
		t.Fatalf("logout: %d %v", status, body)
	}
	status, body = refreshWith(t, r, p6.refresh)
	wantUnknownToken(t, "refresh after logout", status, body, false)
	status, body = whoami(t, r, p6.access)
	wantUnknownToken(t, "access after logout", status, body, false)

	// Bad requests.
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/refresh", "", map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "missing refresh_token")
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": 5})
	wantAPIError(t, status, body, 400, "M_BAD_JSON", "refresh_token not a string")
	status, body = refreshWith(t, r, "axr_made-up")
	wantUnknownToken(t, "unknown refresh token", status, body, false)
	status, body = refreshWith(t, r, "")
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM", "empty refresh_token")
}

// TestRefreshTokenDeviceDeletion: deleting a device, or logging in again on
// it, ends its refresh token; a new login on the device replaces the pair.
func TestRefreshTokenDeviceDeletion(t *testing.T) {
	r, _ := startRefreshRig(t)
	alice := r.CreateUser("alice")
	status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"},
		"password": "password-alice", "device_id": "TABLET", "refresh_token": true})
	p := wantPair(t, "login", status, body)
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"},
		"password": "password-alice", "device_id": "TABLET", "refresh_token": true})
	again := wantPair(t, "second login on the device", status, body)
	status, body = refreshWith(t, r, p.refresh)
	wantUnknownToken(t, "refresh token of the replaced login", status, body, false)

	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/delete_devices", alice.AccessToken, map[string]any{"devices": []string{"TABLET"}})
	session := acctChallenge(t, "delete_devices", status, body, "m.login.password")
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/delete_devices", alice.AccessToken, map[string]any{
		"devices": []string{"TABLET"}, "auth": passwordAuth(session, "alice", "password-alice")})
	if status != 200 {
		t.Fatalf("delete_devices: %d %v", status, body)
	}
	status, body = refreshWith(t, r, again.refresh)
	wantUnknownToken(t, "refresh token of a deleted device", status, body, false)
}

// TestRefreshTokenRegisterAndTokenLogin: the opt-in works on registration
// (through user-interactive auth) and on m.login.token logins.
func TestRefreshTokenRegisterAndTokenLogin(t *testing.T) {
	r, _ := startRefreshRig(t)
	reg := map[string]any{"username": "alice", "password": "pw-alice-1", "refresh_token": true}
	status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/register", "", reg)
	session := acctChallenge(t, "register", status, body, "m.login.dummy")
	reg["auth"] = map[string]any{"type": "m.login.dummy", "session": session}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/register", "", reg)
	p := wantPair(t, "register", status, body)
	wantWorks(t, r, "registered", p.access)
	status, body = refreshWith(t, r, p.refresh)
	wantWorks(t, r, "refreshed after registration", wantPair(t, "refresh after register", status, body).access)

	ctx := context.Background()
	const loginToken = "a-login-token-for-this-test"
	if err := r.Server.DB.AddLoginToken(ctx, auth.HashToken(loginToken), "@alice:axon.test", time.Now().UnixMilli(), time.Now().Add(time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.token", "token": loginToken, "refresh_token": true})
	wantWorks(t, r, "token login", wantPair(t, "token login", status, body).access)
}

// TestRefreshTokensOff: with the access token lifetime set to 0, clients
// asking for refresh tokens get non-expiring access tokens.
func TestRefreshTokensOff(t *testing.T) {
	r, advance := startRefreshRig(t, func(c *config.Config) { c.RefreshTokens.AccessTokenLifetime = 0 })
	r.CreateUser("alice")
	status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"},
		"password": "password-alice", "refresh_token": true})
	if _, has := body["refresh_token"]; status != 200 || has || body["expires_in_ms"] != nil {
		t.Fatalf("login: %d %v", status, body)
	}
	advance(time.Hour)
	wantWorks(t, r, "non-expiring token", str(body["access_token"]))
}
