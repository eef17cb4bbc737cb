package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestRedactionThroughSend: m.room.redaction events sent with PUT /send
// (spec v1.18, every room version) redact their target like PUT /redact:
// the same permission check, and before room v11 redacts moves from the
// content to the event's top level.
func TestRedactionThroughSend(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	for _, version := range []id.RoomVersion{"10", "11", "12"} {
		t.Run("v"+string(version), func(t *testing.T) {
			room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: version})
			testrig.Join(t, room, bob)
			target := testrig.SendText(t, alice, room, "secret")
			base := "/_matrix/client/v3/rooms/" + room.String()
			send := func(c *mautrix.Client, txn string, content map[string]any) (int, map[string]any) {
				return r.JSON(t, http.MethodPut, base+"/send/m.room.redaction/"+string(version)+txn, c.AccessToken, content)
			}

			// Bad input changes nothing.
			status, body := send(bob, "b1", map[string]any{"redacts": target})
			wantAPIError(t, status, body, 403, "M_FORBIDDEN", "bob redacts alice's event")
			status, body = send(alice, "a0", map[string]any{"reason": "no target"})
			wantAPIError(t, status, body, 400, "M_BAD_JSON", "no redacts")
			status, body = send(alice, "a1", map[string]any{"redacts": 5})
			wantAPIError(t, status, body, 400, "M_BAD_JSON", "redacts not a string")
			status, body = send(alice, "a2", map[string]any{"redacts": "$nowhere"})
			wantAPIError(t, status, body, 404, "M_NOT_FOUND", "unknown target")
			status, body = r.JSON(t, http.MethodGet, base+"/event/"+target.String(), alice.AccessToken, nil)
			if status != 200 || body["content"].(map[string]any)["body"] != "secret" {
				t.Fatalf("target after refused redactions: %d %v", status, body)
			}

			status, body = send(alice, "a3", map[string]any{"redacts": target, "reason": "oops"})
			if status != 200 {
				t.Fatalf("redaction through /send: %d %v", status, body)
			}
			redactionID := body["event_id"].(string)
			status, body = r.JSON(t, http.MethodGet, base+"/event/"+target.String(), alice.AccessToken, nil)
			if status != 200 || len(body["content"].(map[string]any)) != 0 {
				t.Fatalf("target not redacted: %d %v", status, body)
			}
			if rb, _ := body["unsigned"].(map[string]any)["redacted_because"].(map[string]any); rb["event_id"] != redactionID {
				t.Errorf("redacted_because %v, want %s", rb, redactionID)
			}

			// The redaction as clients get it has redacts at the top level
			// (and in the content from v11), and its reason.
			status, body = r.JSON(t, http.MethodGet, base+"/event/"+redactionID, alice.AccessToken, nil)
			if status != 200 || body["redacts"] != target.String() {
				t.Fatalf("redaction event: %d %v", status, body)
			}
			content := body["content"].(map[string]any)
			_, inContent := content["redacts"]
			if inContent != (version != "10") || content["reason"] != "oops" {
				t.Errorf("redaction content in v%s: %v", version, content)
			}
			// The same transaction is idempotent.
			status, body = send(alice, "a3", map[string]any{"redacts": target, "reason": "oops"})
			if status != 200 || body["event_id"] != redactionID {
				t.Errorf("repeated transaction: %d %v", status, body)
			}
		})
	}
}
