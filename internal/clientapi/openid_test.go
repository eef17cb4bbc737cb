package clientapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestOpenIDToken(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	userinfo := func(token string) (int, map[string]any) {
		return r.JSON(t, http.MethodGet, "/_matrix/federation/v1/openid/userinfo?access_token="+url.QueryEscape(token), "", nil)
	}
	requestPath := func(user string) string {
		return "/_matrix/client/v3/user/" + url.PathEscape(user) + "/openid/request_token"
	}

	resp, err := alice.RequestOpenIDToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.AccessToken) < 32 || resp.TokenType != "Bearer" || resp.MatrixServerName != "axon.test" || resp.ExpiresIn != 3600 {
		t.Fatalf("token response %+v", resp)
	}
	// The service the token is handed to learns whose it is, as often as it asks.
	for range 2 {
		status, body := userinfo(resp.AccessToken)
		if status != 200 || body["sub"] != alice.UserID.String() || len(body) != 1 {
			t.Fatalf("userinfo: %d %v", status, body)
		}
	}
	// It proves identity only: it is no access token.
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", resp.AccessToken, nil)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "openid token as access token")
	// Nor is an access token an OpenID token.
	status, body = userinfo(alice.AccessToken)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "access token as openid token")

	// Only for oneself.
	status, body = r.JSON(t, http.MethodPost, requestPath(bob.UserID.String()), alice.AccessToken, map[string]any{})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "token for another user")
	status, body = r.JSON(t, http.MethodPost, requestPath(alice.UserID.String()), "", map[string]any{})
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN", "no access token")
	status, raw := r.Do(http.MethodPost, requestPath(alice.UserID.String()), alice.AccessToken, strings.NewReader("{not json"))
	if status != 400 || !strings.Contains(string(raw), `"M_NOT_JSON"`) {
		t.Fatalf("bad body: %d %s", status, raw)
	}

	// Unknown, missing and expired tokens.
	status, body = userinfo("made-up-token")
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "unknown token")
	status, body = r.JSON(t, http.MethodGet, "/_matrix/federation/v1/openid/userinfo", "", nil)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "no token")
	now := time.Now().UnixMilli()
	if err := r.Server.DB.AddOpenIDToken(ctx, auth.HashToken("expired-token"), alice.UserID.String(), now-7200_000, now-1); err != nil {
		t.Fatal(err)
	}
	status, body = userinfo("expired-token")
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "expired token")

	// A deactivated account's tokens vouch for nobody.
	bobTok, err := bob.RequestOpenIDToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := userinfo(bobTok.AccessToken); status != 200 || body["sub"] != bob.UserID.String() {
		t.Fatalf("bob's token: %d %v", status, body)
	}
	if err := r.Server.Accounts.DeactivateAccount(ctx, nil, bob.UserID.String()); err != nil {
		t.Fatal(err)
	}
	status, body = userinfo(bobTok.AccessToken)
	wantAPIError(t, status, body, 401, "M_UNKNOWN_TOKEN", "deactivated user's token")
}
