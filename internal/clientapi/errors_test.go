package clientapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestEdgeErrors checks the errors every endpoint shares: unknown paths
// and methods, tokens, bodies, and CORS.
func TestEdgeErrors(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	tok := alice.AccessToken
	check := func(name, method, path, token, body string, wantStatus int, wantCode string) map[string]any {
		t.Helper()
		status, parsed := r.JSON(t, method, path, token, body)
		wantAPIError(t, status, parsed, wantStatus, wantCode, name)
		return parsed
	}
	check("unknown endpoint", "GET", "/_matrix/client/v3/nonexistent", tok, "", 404, "M_UNRECOGNIZED")
	check("wrong method", "DELETE", "/_matrix/client/v3/createRoom", tok, "", 405, "M_UNRECOGNIZED")
	check("missing token", "GET", "/_matrix/client/v3/joined_rooms", "", "", 401, "M_MISSING_TOKEN")
	p := check("unknown token", "GET", "/_matrix/client/v3/joined_rooms", "axo_nope", "", 401, "M_UNKNOWN_TOKEN")
	if p["soft_logout"] != false {
		t.Fatalf("soft_logout missing: %v", p)
	}
	check("not json", "POST", "/_matrix/client/v3/createRoom", tok, "{nope", 400, "M_NOT_JSON")
	check("wrong type", "POST", "/_matrix/client/v3/createRoom", tok, `{"name": 5}`, 400, "M_BAD_JSON")
	// JSON is UTF-8: a stray byte is not JSON, whether the body is decoded
	// (register, before any auth) or passed on raw (event content,
	// account data), rather than stored as U+FFFD.
	badUTF8 := `{"test":"a` + "\x81" + `"}`
	check("invalid utf-8, decoded", "POST", "/_matrix/client/v3/register", "", badUTF8, 400, "M_NOT_JSON")
	check("invalid utf-8, raw", "PUT", "/_matrix/client/v3/user/"+url.PathEscape(alice.UserID.String())+"/account_data/org.example", tok, badUTF8, 400, "M_NOT_JSON")
	check("too large", "POST", "/_matrix/client/v3/createRoom", tok, `{"name":"`+strings.Repeat("x", 2<<20)+`"}`, 413, "M_TOO_LARGE")
	check("unknown room", "GET", "/_matrix/client/v3/rooms/"+url.PathEscape("!nope:axon.test")+"/state", tok, "", 404, "M_NOT_FOUND")

	// CORS: preflight for any path, headers on every answer.
	req, _ := http.NewRequest("OPTIONS", r.URL+"/_matrix/client/v3/sync", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("CORS preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestRateLimits checks sends beyond the burst get M_LIMIT_EXCEEDED with
// retry_after_ms, and nothing is stored for them.
func TestRateLimits(t *testing.T) {
	r := testrig.Start(t, func(c *config.Config) {
		c.RateLimits = true
		c.RateLimit.Message = config.RateLimit{PerSecond: 0.01, Burst: 3}
	})
	alice := r.CreateUser("alice")
	var created struct {
		RoomID string `json:"room_id"`
	}
	status, b := r.Do("POST", "/_matrix/client/v3/createRoom", alice.AccessToken, bytes.NewReader([]byte(`{}`)))
	if status != 200 {
		t.Fatalf("createRoom: %d %s", status, b)
	}
	json.Unmarshal(b, &created)
	limited := 0
	for i := 0; i < 6; i++ {
		status, b := r.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(created.RoomID)+"/send/m.room.message/t"+string(rune('a'+i)),
			alice.AccessToken, strings.NewReader(`{"msgtype":"m.text","body":"x"}`))
		if status == 429 {
			var e map[string]any
			json.Unmarshal(b, &e)
			if e["errcode"] != "M_LIMIT_EXCEEDED" || e["retry_after_ms"] == nil {
				t.Fatalf("429 body: %s", b)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
}
