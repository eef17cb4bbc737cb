package keys_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

// FuzzKeyBodies throws arbitrary bodies at the key server's endpoints: each
// must answer with success or a Matrix error, never a 5xx or a non-JSON body.
func FuzzKeyBodies(f *testing.F) {
	for _, seed := range []string{`{}`, `[]`, `nul`, "\x00\xff", `{"device_keys":{"user_id":"@alice:axon.test","device_id":"DEV_alice","keys":{}}}`,
		`{"one_time_keys":{"signed_curve25519:A":{"key":"x","signatures":{}}}}`, `{"one_time_keys":{"curve25519:A":"abc"}}`,
		`{"fallback_keys":{"signed_curve25519:A":"x","signed_curve25519:B":"y"}}`, `{"device_keys":{"@alice:axon.test":["X"]}}`,
		`{"one_time_keys":{"@alice:axon.test":{"DEV_alice":"signed_curve25519"}}}`,
		`{"master_key":{"user_id":"@alice:axon.test","usage":["master"],"keys":{"ed25519:a":"a"}}}`,
		`{"@alice:axon.test":{"DEV_alice":{"keys":{},"signatures":{"@alice:axon.test":{"ed25519:x":"y"}}}}}`,
		`{"rooms":{"!r:axon.test":{"sessions":{"s":{"first_message_index":1,"forwarded_count":0,"is_verified":true,"session_data":{}}}}}}`,
		`{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":{}}`, `{"first_message_index":1.5}`} {
		f.Add(seed, uint8(0))
	}
	r := testrig.Start(f)
	alice := r.CreateUser("alice")
	token := alice.AccessToken
	if status, body := r.Do(http.MethodPost, "/_matrix/client/v3/room_keys/version", token,
		bytes.NewReader([]byte(`{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":{}}`))); status != 200 {
		f.Fatalf("create backup: %d %s", status, body)
	}
	endpoints := []struct{ method, path string }{
		{http.MethodPost, "/_matrix/client/v3/keys/upload"},
		{http.MethodPost, "/_matrix/client/v3/keys/query"},
		{http.MethodPost, "/_matrix/client/v3/keys/claim"},
		{http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload"},
		{http.MethodPost, "/_matrix/client/v3/keys/signatures/upload"},
		{http.MethodPut, "/_matrix/client/v3/room_keys/keys?version=1"},
		{http.MethodPut, "/_matrix/client/v3/room_keys/keys/!r:axon.test?version=1"},
		{http.MethodPut, "/_matrix/client/v3/room_keys/keys/!r:axon.test/s?version=1"},
		{http.MethodPost, "/_matrix/client/v3/room_keys/version"},
		{http.MethodPut, "/_matrix/client/v3/room_keys/version/1"},
	}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		ep := endpoints[int(which)%len(endpoints)]
		status, resp := r.DoT(t, ep.method, ep.path, token, bytes.NewReader([]byte(body)))
		if status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, status, resp)
		}
		var parsed map[string]any
		if err := json.Unmarshal(resp, &parsed); err != nil {
			t.Fatalf("%s %s with %q: non-JSON answer %q", ep.method, ep.path, body, resp)
		}
		if status >= 400 {
			if _, ok := parsed["errcode"].(string); !ok {
				t.Fatalf("error without errcode: %s", resp)
			}
		}
	})
}
