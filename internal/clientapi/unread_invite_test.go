package clientapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestCountsAfterInvitedJoin: counting starts at the join, so the invite
// (which notifies under .m.rule.invite_for_me) and the room's history are
// not unread; a sync right after the join must not leave a cache entry that
// makes the next one recount the room from its start.
func TestCountsAfterInvitedJoin(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	bob := r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "x"})
	resp0, _ := bob.SyncRequest(ctx, 0, "", "", false, "")
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	resp1, _ := bob.SyncRequest(ctx, 0, resp0.NextBatch, "", false, "")
	testrig.Join(t, room, bob)
	resp2, _ := bob.SyncRequest(ctx, 0, resp1.NextBatch, "", false, "")
	if c := resp2.Rooms.Join[room].UnreadNotifications; c == nil || c.NotificationCount != 0 {
		t.Fatalf("after join: %+v", c)
	}
	for i := 0; i < 3; i++ {
		testrig.SendText(t, alice, room, "m")
	}
	resp3, _ := bob.SyncRequest(ctx, 0, resp2.NextBatch, "", false, "")
	if c := resp3.Rooms.Join[room].UnreadNotifications; c == nil || c.NotificationCount != 3 {
		t.Fatalf("after 3 messages: %+v", c)
	}
	resp4, _ := bob.SyncRequest(ctx, 0, "", "", false, "")
	if c := resp4.Rooms.Join[room].UnreadNotifications; c == nil || c.NotificationCount != 3 {
		t.Fatalf("initial sync: %+v", c)
	}
}

// TestThreadCountsAndThreadedReceipts: with unread_thread_notifications,
// thread replies count per thread; a threaded receipt clears its thread
// (at once, not after the next message), an unthreaded one clears all.
func TestThreadCountsAndThreadedReceipts(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, _, room := bobsRoom(t, r)
	root := testrig.SendText(t, bob, room, "root")
	var reply id.EventID
	for _, body := range []string{"r1", "r2"} {
		resp, err := bob.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{
			"msgtype": "m.text", "body": body, "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root.String()},
		})
		if err != nil {
			t.Fatal(err)
		}
		reply = resp.EventID
	}
	filter := url.QueryEscape(`{"room":{"timeline":{"unread_thread_notifications":true}}}`)
	counts := func() (int, map[string]any) {
		t.Helper()
		status, raw := r.Do(http.MethodGet, "/_matrix/client/v3/sync?filter="+filter, alice.AccessToken, nil)
		if status != 200 {
			t.Fatalf("sync: %d %s", status, raw)
		}
		var resp struct {
			Rooms struct {
				Join map[string]struct {
					Unread  map[string]int `json:"unread_notifications"`
					Threads map[string]any `json:"unread_thread_notifications"`
				} `json:"join"`
			} `json:"rooms"`
		}
		json.Unmarshal(raw, &resp)
		jr := resp.Rooms.Join[room.String()]
		return jr.Unread["notification_count"], jr.Threads
	}
	main, threads := counts()
	th, _ := threads[root.String()].(map[string]any)
	if main != 1 || th == nil || th["notification_count"] != float64(2) {
		t.Fatalf("main %d, threads %v", main, threads)
	}
	if err := alice.SendReceipt(ctx, room, reply, event.ReceiptTypeRead, map[string]any{"thread_id": root.String()}); err != nil {
		t.Fatal(err)
	}
	main, threads = counts()
	if th, _ := threads[root.String()].(map[string]any); main != 1 || (th != nil && th["notification_count"] != float64(0)) {
		t.Fatalf("after threaded receipt: main %d, threads %v", main, threads)
	}
	if err := alice.SendReceipt(ctx, room, root, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	if main, threads = counts(); main != 0 {
		t.Fatalf("after unthreaded receipt: main %d, threads %v", main, threads)
	}
}
