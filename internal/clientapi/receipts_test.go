package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// receiptOf finds user's receipt of type typ in m.receipt ephemeral events.
func receiptOf(evs []*event.Event, typ, user string) (eventID string, data map[string]any) {
	for _, ev := range evs {
		if ev.Type.Type != "m.receipt" {
			continue
		}
		for evID, byType := range ev.Content.Raw {
			users, _ := byType.(map[string]any)[typ].(map[string]any)
			if d, ok := users[user].(map[string]any); ok {
				return evID, d
			}
		}
	}
	return "", nil
}

func TestReceiptsReachOtherMembers(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, msg := sharedRoom(t, alice, bob)
	since := initialSync(t, alice)

	if err := bob.SendReceipt(ctx, roomID, msg, event.ReceiptTypeRead, map[string]any{}); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	resp := syncUntil(t, alice, since, func(s *mautrix.RespSync) bool {
		got, _ := receiptOf(ephemeralOf(s, roomID), "m.read", bob.UserID.String())
		return got == msg.String()
	})
	_, data := receiptOf(ephemeralOf(resp, roomID), "m.read", bob.UserID.String())
	if _, ok := data["ts"].(float64); !ok || data["thread_id"] != nil {
		t.Fatalf("receipt data %v", data)
	}

	// A private receipt is seen by its owner only.
	second := testrig.SendText(t, alice, roomID, "again")
	aliceSince, bobSince := initialSync(t, alice), initialSync(t, bob)
	if err := bob.SendReceipt(ctx, roomID, second, event.ReceiptTypeReadPrivate, map[string]any{}); err != nil {
		t.Fatalf("private receipt: %v", err)
	}
	syncUntil(t, bob, bobSince, func(s *mautrix.RespSync) bool {
		got, _ := receiptOf(ephemeralOf(s, roomID), "m.read.private", bob.UserID.String())
		return got == second.String()
	})
	quiet, err := alice.SyncRequest(ctx, 300, aliceSince, "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := receiptOf(ephemeralOf(quiet, roomID), "m.read.private", bob.UserID.String()); got != "" {
		t.Fatalf("alice saw bob's private receipt")
	}

	// Threaded receipt on the main timeline carries its thread_id.
	if err := bob.SendReceipt(ctx, roomID, second, event.ReceiptTypeRead, map[string]any{"thread_id": "main"}); err != nil {
		t.Fatalf("threaded receipt: %v", err)
	}
	syncUntil(t, alice, aliceSince, func(s *mautrix.RespSync) bool {
		got, d := receiptOf(ephemeralOf(s, roomID), "m.read", bob.UserID.String())
		return got == second.String() && d["thread_id"] == "main"
	})
}

func TestReceiptErrors(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, msg := sharedRoom(t, alice, bob)
	other := testrig.CreateRoom(t, carol, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	otherMsg := testrig.SendText(t, carol, other, "elsewhere")
	path := func(room id.RoomID, typ string, ev id.EventID) string {
		return "/rooms/" + esc(room.String()) + "/receipt/" + typ + "/" + esc(ev.String())
	}
	cases := []struct {
		name   string
		as     *mautrix.Client
		path   string
		body   any
		status int
		code   string
	}{
		{"unknown type", bob, path(roomID, "m.seen", msg), map[string]any{}, 400, "M_INVALID_PARAM"},
		{"unknown event", bob, path(roomID, "m.read", "$nope"), map[string]any{}, 404, "M_NOT_FOUND"},
		{"event of another room", alice, path(roomID, "m.read", otherMsg), map[string]any{}, 404, "M_NOT_FOUND"},
		{"not joined", carol, path(roomID, "m.read", msg), map[string]any{}, 403, "M_FORBIDDEN"},
		{"unknown room", bob, path("!nowhere:axon.test", "m.read", msg), map[string]any{}, 404, "M_NOT_FOUND"},
		{"empty thread", bob, path(roomID, "m.read", msg), map[string]any{"thread_id": ""}, 400, "M_INVALID_PARAM"},
		{"thread not a string", bob, path(roomID, "m.read", msg), map[string]any{"thread_id": 5}, 400, "M_INVALID_PARAM"},
		{"thread on fully_read", bob, path(roomID, "m.fully_read", msg), map[string]any{"thread_id": "main"}, 400, "M_INVALID_PARAM"},
		{"bad thread id", bob, path(roomID, "m.read", msg), map[string]any{"thread_id": "thread"}, 400, "M_INVALID_PARAM"},
		{"not json", bob, path(roomID, "m.read", msg), "{", 400, "M_NOT_JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := apiCall(t, r, c.as, v3, http.MethodPost, c.path, c.body)
			wantAPIError(t, status, body, c.status, c.code)
		})
	}

	// A thread reply cannot be acknowledged as main-timeline or another thread.
	reply, err := alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{
		"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": msg.String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	status, body := apiCall(t, r, bob, v3, http.MethodPost, path(roomID, "m.read", reply.EventID), map[string]any{"thread_id": "main"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, path(roomID, "m.read", reply.EventID), map[string]any{"thread_id": "$other"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	if status, body := apiCall(t, r, bob, v3, http.MethodPost, path(roomID, "m.read", reply.EventID), map[string]any{"thread_id": msg.String()}); status != 200 {
		t.Fatalf("threaded receipt: %d %v", status, body)
	}
}

func TestReadMarkers(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, first := sharedRoom(t, alice, bob)
	second := testrig.SendText(t, alice, roomID, "second")
	bobSince, aliceSince := initialSync(t, bob), initialSync(t, alice)

	if err := bob.SetReadMarkers(ctx, roomID, map[string]any{"m.fully_read": second, "m.read": second}); err != nil {
		t.Fatalf("read markers: %v", err)
	}
	syncUntil(t, bob, bobSince, func(s *mautrix.RespSync) bool {
		jr := s.Rooms.Join[roomID]
		if jr == nil {
			return false
		}
		for _, ev := range jr.AccountData.Events {
			if ev.Type.Type == "m.fully_read" && ev.Content.Raw["event_id"] == second.String() {
				return true
			}
		}
		return false
	})
	syncUntil(t, alice, aliceSince, func(s *mautrix.RespSync) bool {
		got, _ := receiptOf(ephemeralOf(s, roomID), "m.read", bob.UserID.String())
		return got == second.String()
	})

	// The marker never moves backwards, through either endpoint.
	if err := bob.SetReadMarkers(ctx, roomID, map[string]any{"m.fully_read": first}); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendReceipt(ctx, roomID, first, event.ReceiptType("m.fully_read"), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	var marker struct {
		EventID string `json:"event_id"`
	}
	status, body := apiCall(t, r, bob, v3, http.MethodGet, "/user/"+esc(bob.UserID.String())+"/rooms/"+esc(roomID.String())+"/account_data/m.fully_read", nil)
	if status != 200 {
		t.Fatalf("get marker: %d %v", status, body)
	}
	marker.EventID, _ = body["event_id"].(string)
	if marker.EventID != second.String() {
		t.Fatalf("marker moved back to %s", marker.EventID)
	}

	// Clients cannot write the marker directly; a bad event changes nothing.
	err := bob.SetRoomAccountData(ctx, roomID, "m.fully_read", map[string]any{"event_id": first})
	wantClientError(t, err, http.StatusMethodNotAllowed, "M_BAD_JSON")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/rooms/"+esc(roomID.String())+"/read_markers",
		map[string]any{"m.read": first, "m.fully_read": "$missing"})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}

// When a user has both an unthreaded and a threaded receipt on the same
// event, /sync shows the unthreaded one, whichever came last (MSC4102,
// Complement TestThreadReceiptsInSyncMSC4102): the unthreaded one says
// more, and clients without thread support understand only it.
func TestUnthreadedReceiptWinsOverThreadedOnSameEvent(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, root := sharedRoom(t, alice, bob)
	reply, err := alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{
		"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root.String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	since := initialSync(t, alice)
	if err := alice.SendReceipt(ctx, roomID, reply.EventID, event.ReceiptTypeRead, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendReceipt(ctx, roomID, reply.EventID, event.ReceiptTypeRead, map[string]any{"thread_id": root.String()}); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{since, ""} {
		resp, err := alice.SyncRequest(ctx, 0, from, "", false, event.PresenceOffline)
		if err != nil {
			t.Fatal(err)
		}
		got, data := receiptOf(ephemeralOf(resp, roomID), "m.read", alice.UserID.String())
		if got != reply.EventID.String() || data == nil || data["thread_id"] != nil {
			t.Errorf("sync from %q: alice's receipt on %s is %v, want the unthreaded one", from, got, data)
		}
	}
}
