package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// Rooms of every version this server offers work for everyday use: create,
// join, state, messages, redaction, history; knocking from v7 and
// restricted joins from v8, as those versions introduced them; and an
// upgrade to the default version.
func TestOlderRoomVersions(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	for _, version := range []id.RoomVersion{"3", "4", "5", "6", "7", "8", "9"} {
		t.Run("v"+string(version), func(t *testing.T) {
			ctx := t.Context()
			n, _ := strconv.Atoi(string(version))
			room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: version, Name: "v" + string(version)})
			status, body := apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/state/m.room.create/", nil)
			if status != 200 || body["room_version"] != string(version) || body["creator"] != alice.UserID.String() {
				t.Fatalf("create content: %d %v", status, body)
			}
			testrig.Join(t, room, bob)
			msg := testrig.SendText(t, bob, room, "hello from v"+string(version))
			// v3 event IDs are standard base64 and may hold '/' and '+':
			// the IDs the server hands out must work in paths.
			if _, err := alice.GetEvent(ctx, room, msg); err != nil {
				t.Fatalf("get event %s: %v", msg, err)
			}
			if _, err := alice.RedactEvent(ctx, room, msg); err != nil {
				t.Fatalf("redact: %v", err)
			}
			got, err := alice.GetEvent(ctx, room, msg)
			if err != nil || len(got.Content.Raw) != 0 {
				t.Fatalf("redacted event: %v %v", err, got)
			}
			if _, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "old but gold"}); err != nil {
				t.Fatalf("topic: %v", err)
			}
			// Bob (power 0) may not change the name.
			_, err = bob.SendStateEvent(ctx, room, event.StateRoomName, "", map[string]any{"name": "mine"})
			wantClientError(t, err, 403, "M_FORBIDDEN")
			status, body = apiCall(t, r, bob, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?"+url.Values{"dir": {"b"}, "limit": {"50"}}.Encode(), nil)
			if ids := chunkIDs(body); status != 200 || !slices.Contains(ids, msg.String()) {
				t.Fatalf("messages: %d %v", status, body)
			}

			if n >= 7 {
				knockRoom := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: version,
					InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{"join_rule": "knock"}}}}})
				if _, err := carol.KnockRoom(ctx, knockRoom.String(), &mautrix.ReqKnockRoom{}); err != nil {
					t.Fatalf("knock: %v", err)
				}
				if m := membership(t, r, alice, knockRoom, carol.UserID); m != "knock" {
					t.Fatalf("carol's membership after knocking: %q", m)
				}
			}
			if n >= 8 {
				restricted := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: version,
					InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
						"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": room}}}}}}})
				_, err := carol.JoinRoomByID(ctx, restricted)
				wantClientError(t, err, 403, "M_FORBIDDEN")
				if _, err := bob.JoinRoomByID(ctx, restricted); err != nil {
					t.Fatalf("restricted join of a member of the allowed room: %v", err)
				}
			}

			status, body = apiCall(t, r, alice, v3, http.MethodPost, "/rooms/"+esc(room.String())+"/upgrade", map[string]any{"new_version": "12"})
			newRoom, _ := body["replacement_room"].(string)
			if status != 200 || newRoom == "" {
				t.Fatalf("upgrade to 12: %d %v", status, body)
			}
			status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(newRoom)+"/state/m.room.create/", nil)
			if status != 200 || body["room_version"] != "12" {
				t.Fatalf("upgraded room: %d %v", status, body)
			}
		})
	}
}

// A transaction ID names a retransmission of the same request: same
// device, same path. The same ID in another room or for another event
// type is a new event; the same request again is the same event.
func TestTxnIDScopedToPath(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	one := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
	two := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
	send := func(room id.RoomID, typ string) string {
		t.Helper()
		status, body := apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/send/"+typ+"/abc", map[string]any{"body": "x", "msgtype": "m.text"})
		if status != 200 {
			t.Fatalf("send %s in %s: %d %v", typ, room, status, body)
		}
		return body["event_id"].(string)
	}
	first := send(one, "m.room.message")
	if again := send(one, "m.room.message"); again != first {
		t.Fatalf("retransmission gave a new event %s, want %s", again, first)
	}
	other := send(two, "m.room.message")
	otherType := send(one, "m.custom")
	if other == first || otherType == first || other == otherType {
		t.Fatalf("distinct requests share events: %s %s %s", first, other, otherType)
	}
}
