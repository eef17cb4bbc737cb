package clientapi_test

import (
	"net/url"
	"testing"
)

// TestAppServiceCannotActInOthersExclusiveNamespace: a service whose
// (non-exclusive) users namespace also matches another service's exclusive
// one may not assert or log in as that service's users or its sender, as
// it may not register them; ordinary users of its namespace stay its own.
func TestAppServiceCannotActInOthersExclusiveNamespace(t *testing.T) {
	f := newFakeAS(t)
	watcher := `id: watcher
url: ` + f.srv.URL + `
as_token: watcher-as-token
hs_token: watcher-hs-token
sender_localpart: _watcher
namespaces:
  users:
    - exclusive: false
      regex: "@.*:axon\\.test"
`
	r, _ := startWithBridge(t, f, watcher)
	alice := r.CreateUser("alice")
	registerAS(t, r, "_bridge_ann")
	whoami := func(user string) (int, map[string]any) {
		return r.JSON(t, "GET", v3+"/account/whoami?user_id="+url.QueryEscape(user), "watcher-as-token", nil)
	}
	login := func(user string) (int, map[string]any) {
		return r.JSON(t, "POST", v3+"/login", "watcher-as-token", map[string]any{"type": "m.login.application_service",
			"identifier": map[string]any{"type": "m.id.user", "user": user}})
	}
	for _, user := range []string{"@_bridge_ann:axon.test", "@_bridge_bot:axon.test"} {
		status, body := whoami(user)
		wantAPIError(t, status, body, 403, "M_EXCLUSIVE", "assert ", user)
		status, body = login(user)
		wantAPIError(t, status, body, 403, "M_EXCLUSIVE", "login as ", user)
	}
	if status, body := whoami(alice.UserID.String()); status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("watcher asserts alice: %d %v", status, body)
	}
	if status, body := login(alice.UserID.String()); status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("watcher logs in as alice: %d %v", status, body)
	}
	// The owner still acts as its own users.
	if status, body := asCall(t, r, "GET", v3+"/account/whoami", "@_bridge_ann:axon.test", nil); status != 200 {
		t.Fatalf("bridge asserts ann: %d %v", status, body)
	}
}
