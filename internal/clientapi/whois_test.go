package clientapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestWhois(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	if err := r.Server.DB.CreateUser(ctx, storage.User{UserID: r.UserID("root").String(), Localpart: "root", IsAdmin: true, CreatedTS: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	root := r.CreateUserDevice("root", "ROOTDEV", false)
	path := "/admin/whois/" + esc(alice.UserID.String())

	check := func(who string, status int, body map[string]any) {
		t.Helper()
		if status != 200 || body["user_id"] != alice.UserID.String() {
			t.Fatalf("%s: %d %v", who, status, body)
		}
		dev, _ := body["devices"].(map[string]any)["DEV_alice"].(map[string]any)
		sessions, _ := dev["sessions"].([]any)
		if len(sessions) != 1 {
			t.Fatalf("%s: devices %v", who, body["devices"])
		}
		if _, ok := sessions[0].(map[string]any)["connections"].([]any); !ok {
			t.Fatalf("%s: session without connections: %v", who, sessions[0])
		}
	}
	status, body := apiCall(t, r, alice, v3, http.MethodGet, path, nil)
	check("self", status, body)
	status, body = apiCall(t, r, root, v3, http.MethodGet, path, nil)
	check("admin", status, body)
	status, body = apiCall(t, r, bob, v3, http.MethodGet, path, nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	// Others learn nothing about whether a user exists.
	status, body = apiCall(t, r, bob, v3, http.MethodGet, "/admin/whois/"+esc("@nobody:axon.test"), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, root, v3, http.MethodGet, "/admin/whois/"+esc("@nobody:axon.test"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}
