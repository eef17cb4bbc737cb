package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestThreadedReceiptsLowerCounts follows the spec's threaded read
// receipts: an unthreaded receipt reads everything up to its event, a
// "main" receipt only the main timeline, a thread receipt only that thread;
// clients that do not ask for per-thread counts get the sum. (The shape of
// Complement's TestThreadedReceipts, with intentional mentions.)
//
//	A<--B<--C<--E  [m.thread to A]; C and D mention bob
//	A<--D          [main timeline]
//	A<--F<--G      [F m.reference to A, G m.annotation to F]
func TestThreadedReceiptsLowerCounts(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, hello := sharedRoom(t, alice, bob)

	send := func(typ string, content map[string]any) string {
		t.Helper()
		resp, err := alice.SendMessageEvent(ctx, roomID, event.NewEventType(typ), content)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		return resp.EventID.String()
	}
	mention := map[string]any{"user_ids": []string{bob.UserID.String()}}
	a := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "A"})
	inThread := map[string]any{"rel_type": "m.thread", "event_id": a}
	b := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "B", "m.relates_to": inThread})
	send("m.room.message", map[string]any{"msgtype": "m.text", "body": "C", "m.relates_to": inThread, "m.mentions": mention})
	d := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "D", "m.mentions": mention})
	e := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "E", "m.relates_to": inThread})
	f := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "F",
		"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": a}})
	g := send("m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": f, "key": "x"}})

	// counts returns "notify/highlight" for the room and, with threaded, the
	// main timeline and thread A.
	counts := func(threaded bool) string {
		t.Helper()
		q := url.Values{}
		if threaded {
			q.Set("filter", `{"room":{"timeline":{"unread_thread_notifications":true}}}`)
		}
		body := syncRaw(t, r, bob.AccessToken, q)
		room, _ := body["rooms"].(map[string]any)["join"].(map[string]any)[roomID.String()].(map[string]any)
		c := func(m any) string {
			cm, _ := m.(map[string]any)
			if cm == nil {
				return "-"
			}
			return fmt.Sprintf("%v/%v", cm["notification_count"], cm["highlight_count"])
		}
		threads, hasThreads := room["unread_thread_notifications"].(map[string]any)
		if !threaded {
			if hasThreads {
				t.Fatalf("thread counts without asking: %v", threads)
			}
			return c(room["unread_notifications"])
		}
		return c(room["unread_notifications"]) + " " + c(threads[a])
	}
	receipt := func(eventID string, thread any) {
		t.Helper()
		body := map[string]any{}
		if thread != nil {
			body["thread_id"] = thread
		}
		path := "/rooms/" + esc(roomID.String()) + "/receipt/m.read/" + esc(eventID)
		if status, resp := apiCall(t, r, bob, v3, http.MethodPost, path, body); status != 200 {
			t.Fatalf("receipt on %s (%v): %d %v", eventID, thread, status, resp)
		}
	}
	check := func(step, wantAll, wantThreaded string) {
		t.Helper()
		if got := counts(false); got != wantAll {
			t.Errorf("%s: counts %s, want %s", step, got, wantAll)
		}
		if got := counts(true); got != wantThreaded {
			t.Errorf("%s: main and thread counts %s, want %s", step, got, wantThreaded)
		}
	}

	receipt(hello.String(), nil) // the room's first message, before A
	check("nothing read", "6/2", "3/1 3/1")
	receipt(a, "main") // reads A only: the thread is another timeline
	check("main receipt on A", "5/2", "2/1 3/1")
	receipt(b, a) // reads B in the thread
	check("thread receipt on B", "4/2", "2/1 2/1")
	receipt(d, "main") // reads D, and not C before it in the thread
	check("main receipt on D", "3/1", "1/0 2/1")
	receipt(d, nil) // reads A to D everywhere
	check("unthreaded receipt on D", "2/0", "1/0 1/0")
	receipt(g, a) // G is after E: the whole thread is read
	check("thread receipt on G", "1/0", "1/0 -")

	// GET /notifications marks read what the counts leave out: E by the
	// thread receipt, and only F unread.
	status, body := apiCall(t, r, bob, v3, http.MethodGet, "/notifications", nil)
	if status != 200 {
		t.Fatalf("notifications: %d %v", status, body)
	}
	read := map[string]any{}
	for _, n := range body["notifications"].([]any) {
		nm := n.(map[string]any)
		read[nm["event"].(map[string]any)["event_id"].(string)] = nm["read"]
	}
	if read[e] != true || read[f] != false || read[d] != true {
		t.Errorf("notifications read flags: E %v, F %v, D %v; want true, false, true", read[e], read[f], read[d])
	}
}
