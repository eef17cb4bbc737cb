package clientapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestCustomProfileFields: spec v1.16's extended profiles. m.tz and
// namespaced fields (any JSON value) are stored, read one by one and with
// the whole profile, and deleted; bad keys and values, other users and
// profiles over 64 KiB are refused without changing anything; custom
// fields stay out of member events and go with deactivation.
func TestCustomProfileFields(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	me := url.PathEscape(alice.UserID.String())
	field := func(key string) string { return "/_matrix/client/v3/profile/" + me + "/" + key }
	put := func(c *mautrix.Client, key string, body any) (int, map[string]any) {
		return r.JSON(t, http.MethodPut, field(key), c.AccessToken, body)
	}
	get := func(key string) (int, map[string]any) { return r.JSON(t, http.MethodGet, field(key), "", nil) }
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
	if err := alice.SetDisplayName(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}

	status, body := put(alice, "m.tz", map[string]any{"m.tz": "Europe/Paris"})
	wantStatusOK(t, status, body, "set m.tz")
	job := map[string]any{"title": "Engineer", "since": 2020, "tags": []any{"go"}}
	status, body = put(alice, "org.example.job", map[string]any{"org.example.job": job})
	wantStatusOK(t, status, body, "set an object field")

	status, body = get("m.tz")
	if status != 200 || body["m.tz"] != "Europe/Paris" || len(body) != 1 {
		t.Fatalf("GET m.tz: %d %v", status, body)
	}
	status, body = get("org.example.job")
	if got, _ := body["org.example.job"].(map[string]any); status != 200 || got["title"] != "Engineer" || got["since"] != float64(2020) {
		t.Fatalf("GET org.example.job: %d %v", status, body)
	}
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/profile/"+me, "", nil)
	if status != 200 || body["displayname"] != "Alice" || body["m.tz"] != "Europe/Paris" || body["org.example.job"] == nil {
		t.Fatalf("GET profile: %d %v", status, body)
	}
	// Custom fields are not part of member events.
	var member map[string]any
	if err := alice.StateEvent(ctx, room, event.StateMember, alice.UserID.String(), &member); err != nil {
		t.Fatal(err)
	}
	if _, ok := member["m.tz"]; ok || member["displayname"] != "Alice" {
		t.Errorf("member event: %v", member)
	}

	// Bad input: the spec's errors, and nothing changes.
	for _, c := range []struct {
		what, key string
		body      any
		status    int
		code      string
	}{
		{"m.tz not a string", "m.tz", map[string]any{"m.tz": 5}, 400, "M_INVALID_PARAM"},
		{"null value", "org.example.job", map[string]any{"org.example.job": nil}, 400, "M_INVALID_PARAM"},
		{"key missing from the body", "org.example.job", map[string]any{"other": 1}, 400, "M_MISSING_PARAM"},
		{"key outside the grammar", "Job", map[string]any{"Job": 1}, 400, "M_INVALID_PARAM"},
		{"key over 255 bytes", "org.x" + strings.Repeat("a", 260), map[string]any{"org.x" + strings.Repeat("a", 260): 1}, 400, "M_KEY_TOO_LARGE"},
		{"profile over 64 KiB", "org.example.big", map[string]any{"org.example.big": strings.Repeat("x", 65536)}, 400, "M_PROFILE_TOO_LARGE"},
		{"displayname not a string", "displayname", map[string]any{"displayname": []int{1}}, 400, "M_INVALID_PARAM"},
	} {
		status, body := put(alice, c.key, c.body)
		wantAPIError(t, status, body, c.status, c.code, c.what)
	}
	status, body = put(bob, "m.tz", map[string]any{"m.tz": "Asia/Tokyo"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "bob sets alice's field")
	status, body = r.JSON(t, http.MethodDelete, field("m.tz"), bob.AccessToken, nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN", "bob deletes alice's field")
	if status, body = get("m.tz"); body["m.tz"] != "Europe/Paris" {
		t.Fatalf("m.tz after refused changes: %d %v", status, body)
	}
	if status, _ = get("org.example.big"); status != 404 {
		t.Fatalf("a refused field was stored: %d", status)
	}

	// The 64 KiB bound is on the whole profile: two fields of 40 KB do not fit.
	status, body = put(alice, "org.example.a", map[string]any{"org.example.a": strings.Repeat("a", 40000)})
	wantStatusOK(t, status, body, "first 40 KB field")
	status, body = put(alice, "org.example.b", map[string]any{"org.example.b": strings.Repeat("b", 40000)})
	wantAPIError(t, status, body, 400, "M_PROFILE_TOO_LARGE", "second 40 KB field")
	// Replacing a field counts its new value only.
	status, body = put(alice, "org.example.a", map[string]any{"org.example.a": strings.Repeat("c", 60000)})
	wantStatusOK(t, status, body, "replacing the big field")

	// DELETE removes a field.
	status, body = r.JSON(t, http.MethodDelete, field("org.example.job"), alice.AccessToken, nil)
	wantStatusOK(t, status, body, "delete")
	status, body = get("org.example.job")
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "deleted field")

	// Deactivation takes the custom fields with the rest of the profile.
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/account/deactivate", alice.AccessToken, map[string]any{})
	session := acctChallenge(t, "deactivate", status, body, "m.login.password")
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/account/deactivate", alice.AccessToken, map[string]any{
		"auth": passwordAuth(session, "alice", "password-alice")})
	wantStatusOK(t, status, body, "deactivate")
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/profile/"+me, "", nil)
	if _, ok := body["m.tz"]; ok || status != 200 {
		t.Errorf("profile after deactivation: %d, m.tz kept: %v", status, ok)
	}
}

// wantStatusOK fails unless a request succeeded.
func wantStatusOK(t testing.TB, status int, body map[string]any, what string) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("%s: got %d %v, want 200", what, status, body)
	}
}
