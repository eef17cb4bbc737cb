package clientapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

// FuzzRequestBodies throws arbitrary bodies at endpoints that decode JSON
// and checks the server answers every one with a Matrix error or success,
// never a 5xx and never a non-JSON body.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{`{}`, `{"msgtype":"m.text","body":"hi"}`, `[]`, `nul`, `{"a":1.5}`, `{"name":{"x":[1,2,3]}}`,
		`{"preset":"public_chat","invite":["@x"]}`, `"str"`, `{"user_id":5}`, "\x00\xff", `{"room":{"timeline":{"limit":-1}}}`} {
		f.Add(seed, uint8(0))
	}
	r := testrig.Start(f)
	alice := r.CreateUser("alice")
	token := alice.AccessToken
	status, body := r.Do(http.MethodPost, "/_matrix/client/v3/createRoom", token, bytes.NewReader([]byte(`{"preset":"public_chat"}`)))
	if status != 200 {
		f.Fatalf("createRoom: %d %s", status, body)
	}
	var created struct {
		RoomID string `json:"room_id"`
	}
	json.Unmarshal(body, &created)
	room := url.PathEscape(created.RoomID)
	endpoints := []struct{ method, path string }{
		{http.MethodPut, "/_matrix/client/v3/rooms/" + room + "/send/m.room.message/"},
		{http.MethodPut, "/_matrix/client/v3/rooms/" + room + "/state/m.room.topic/"},
		{http.MethodPost, "/_matrix/client/v3/createRoom"},
		{http.MethodPost, "/_matrix/client/v3/rooms/" + room + "/invite"},
		{http.MethodPost, "/_matrix/client/v3/user/" + url.PathEscape(alice.UserID.String()) + "/filter"},
		{http.MethodPost, "/_matrix/client/v3/rooms/" + room + "/kick"},
	}
	n := 0
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		ep := endpoints[int(which)%len(endpoints)]
		path := ep.path
		if ep.method == http.MethodPut && path[len(path)-1] == '/' && bytes.Contains([]byte(path), []byte("/send/")) {
			n++
			path += "txn" + string(rune('a'+n%26)) + string(rune('a'+(n/26)%26)) + string(rune('a'+(n/676)%26))
		}
		status, resp := r.DoT(t, ep.method, path, token, bytes.NewReader([]byte(body)))
		if status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", ep.method, path, body, status, resp)
		}
		var parsed map[string]any
		if err := json.Unmarshal(resp, &parsed); err != nil {
			t.Fatalf("%s %s with %q: non-JSON answer %q", ep.method, path, body, resp)
		}
		if status >= 400 {
			if _, ok := parsed["errcode"].(string); !ok {
				t.Fatalf("error without errcode: %s", resp)
			}
		}
	})
}
