package clientapi_test

import (
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestThirdPartyWithoutBridges checks the answers of a server with no
// application service: no protocols, and nothing found.
func TestThirdPartyWithoutBridges(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	status, body := apiCall(t, r, alice, v3, "GET", "/thirdparty/protocols", nil)
	if status != 200 || len(body) != 0 {
		t.Fatalf("protocols: %d %v", status, body)
	}
	for _, path := range []string{"/thirdparty/protocol/irc", "/thirdparty/location/irc?channel=x", "/thirdparty/user/irc",
		"/thirdparty/location?alias=" + esc("#a:axon.test"), "/thirdparty/user?userid=" + esc("@a:axon.test")} {
		status, body = apiCall(t, r, alice, v3, "GET", path, nil)
		wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/location", nil)
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, nil, v3, "GET", "/thirdparty/protocols", nil)
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")
}

// TestThirdPartyLookups checks lookups are forwarded to the service that
// declared the protocol and its answers passed on (well-formed ones only).
func TestThirdPartyLookups(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithBridge(t, f)
	alice := r.CreateUser("alice")
	status, body := apiCall(t, r, alice, v3, "GET", "/thirdparty/protocols", nil)
	gitter, _ := body["gitter"].(map[string]any)
	if status != 200 || len(body) != 1 || gitter == nil {
		t.Fatalf("protocols: %d %v", status, body)
	}
	instances, _ := gitter["instances"].([]any)
	if len(instances) != 1 || instances[0].(map[string]any)["instance_id"] != "bridge|gitter" || gitter["icon"] != "mxc://example.org/icon" {
		t.Fatalf("protocol metadata: %v", gitter)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/protocol/gitter", nil)
	if status != 200 || body["location_fields"] == nil {
		t.Fatalf("protocol: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/protocol/irc", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// Arrays are not objects: read them raw.
	status, raw := r.Do("GET", "/_matrix/client/v3/thirdparty/location/gitter?room=matrix/dev", alice.AccessToken, nil)
	if status != 200 || string(raw) != `[{"alias":"#_bridge_matrix_dev:axon.test","fields":{"room":"matrix/dev"},"protocol":"gitter"}]` {
		t.Fatalf("location lookup: %d %s", status, raw)
	}
	status, raw = r.Do("GET", "/_matrix/client/v3/thirdparty/user?userid="+esc("@_bridge_bob:axon.test"), alice.AccessToken, nil)
	if status != 200 || string(raw) != `[{"fields":{"username":"bob"},"protocol":"gitter","userid":"@_bridge_bob:axon.test"}]` {
		t.Fatalf("user reverse lookup: %d %s", status, raw)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/thirdparty/user/irc", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}
