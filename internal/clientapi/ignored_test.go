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

func TestIgnoredUsers(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, _ := sharedRoom(t, alice, bob) // alice said "hello"
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{alice.UserID.String(): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	since := initialSync(t, bob)
	testrig.SendText(t, alice, roomID, "from alice")
	if _, err := alice.SendStateEvent(ctx, roomID, event.StateRoomName, "", map[string]any{"name": "Renamed"}); err != nil {
		t.Fatal(err)
	}
	testrig.SendText(t, bob, roomID, "from bob")
	// Incremental sync: alice's message is left out, her state event kept.
	resp := syncUntil(t, bob, since, func(s *mautrix.RespSync) bool {
		jr := s.Rooms.Join[roomID]
		return jr != nil && len(bodiesOf(jr.Timeline.Events)) > 0
	})
	tl := resp.Rooms.Join[roomID].Timeline.Events
	if got := bodiesOf(tl); len(got) != 1 || got[0] != bob.UserID.String()+":from bob" {
		t.Fatalf("incremental timeline bodies %v", got)
	}
	renamed := false
	for _, ev := range tl {
		renamed = renamed || ev.Type == event.StateRoomName
	}
	if !renamed {
		t.Fatal("the ignored user's state event is missing from the timeline")
	}
	// Initial sync and /messages leave out all her messages too.
	full, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if got := bodiesOf(full.Rooms.Join[roomID].Timeline.Events); len(got) != 1 {
		t.Fatalf("initial sync bodies %v", got)
	}
	msgs, err := bob.Messages(ctx, roomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	if got := bodiesOf(msgs.Chunk); len(got) != 1 || got[0] != bob.UserID.String()+":from bob" {
		t.Fatalf("/messages bodies %v", got)
	}
	// Others still see everything.
	msgs, err = alice.Messages(ctx, roomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil || len(bodiesOf(msgs.Chunk)) != 3 {
		t.Fatalf("alice's /messages: %v %v", bodiesOf(msgs.Chunk), err)
	}

	// Invites from ignored users are not sent; others' are.
	since = initialSync(t, bob)
	fromAlice := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	fromCarol := testrig.CreateRoom(t, carol, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	syncUntil(t, bob, since, func(s *mautrix.RespSync) bool {
		if _, ok := s.Rooms.Invite[fromAlice]; ok {
			t.Fatal("invite from an ignored user was sent")
		}
		_, ok := s.Rooms.Invite[fromCarol]
		return ok
	})
	full, err = bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.Rooms.Invite[fromAlice]; ok {
		t.Fatal("invite from an ignored user in the initial sync")
	}

	// Un-ignoring takes effect at once.
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	full, err = bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.Rooms.Invite[fromAlice]; !ok {
		t.Fatal("invite missing after un-ignoring")
	}
	if got := bodiesOf(full.Rooms.Join[roomID].Timeline.Events); len(got) != 3 {
		t.Fatalf("bodies after un-ignoring %v", got)
	}
}

// TestIgnoredUsersHistoryAndCounts: beyond /sync and /messages, an ignored
// user's events are absent from /context, /relations, /threads, /search,
// /notifications and sliding sync, and do not count as unread.
func TestIgnoredUsersHistoryAndCounts(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	roomID := room
	testrig.Join(t, roomID, bob, carol)
	send := func(c *mautrix.Client, body string, thread id.EventID) id.EventID {
		t.Helper()
		content := map[string]any{"msgtype": "m.text", "body": body}
		if thread != "" {
			content["m.relates_to"] = map[string]any{"rel_type": "m.thread", "event_id": thread}
		}
		resp, err := c.SendMessageEvent(ctx, roomID, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		return resp.EventID
	}
	aliceRoot := send(alice, "searchword alice root", "")
	carolRoot := send(carol, "searchword carol root", "")
	send(carol, "carol in alice's thread", aliceRoot)
	send(alice, "alice in alice's thread", aliceRoot)
	send(carol, "carol again in alice's thread", aliceRoot)
	send(alice, "alice in carol's thread", carolRoot)
	middle := send(alice, "middle", "")
	send(carol, "carol after", "")

	unread := func() float64 {
		t.Helper()
		status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/sync", bob.AccessToken, nil)
		jr, _ := body["rooms"].(map[string]any)["join"].(map[string]any)[roomID.String()].(map[string]any)
		n, _ := jr["unread_notifications"].(map[string]any)["notification_count"].(float64)
		if status != 200 || jr == nil {
			t.Fatalf("sync: %d", status)
		}
		return n
	}
	// Before ignoring, carol's four messages count (eight in all): the
	// cached counts must not survive the change of the ignore list.
	if n := unread(); n != 8 {
		t.Fatalf("unread before ignoring: %v", n)
	}
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{carol.UserID.String(): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	if n := unread(); n != 4 {
		t.Fatalf("unread while ignoring carol: %v, want alice's 4", n)
	}

	// /context around alice's middle message, and of carol's message.
	ctxPath := "/_matrix/client/v3/rooms/" + roomID.String() + "/context/"
	status, body := r.JSON(t, http.MethodGet, ctxPath+middle.String()+"?limit=20", bob.AccessToken, nil)
	before, after := sendersOf(body["events_before"]), sendersOf(body["events_after"])
	if status != 200 || hasSender(before, carol.UserID) || hasSender(after, carol.UserID) || len(before) != 3 {
		t.Fatalf("bob's /context: %d before %v after %v", status, before, after)
	}
	status, body = r.JSON(t, http.MethodGet, ctxPath+middle.String()+"?limit=20", alice.AccessToken, nil)
	if status != 200 || len(sendersOf(body["events_before"])) != 6 || len(sendersOf(body["events_after"])) != 1 {
		t.Fatalf("alice's /context: %d %v %v", status, sendersOf(body["events_before"]), sendersOf(body["events_after"]))
	}
	status, body = r.JSON(t, http.MethodGet, ctxPath+carolRoot.String(), bob.AccessToken, nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "/context of an ignored user's event")

	// /relations of alice's thread root.
	relPath := "/_matrix/client/v1/rooms/" + roomID.String() + "/relations/" + aliceRoot.String()
	status, body = r.JSON(t, http.MethodGet, relPath, bob.AccessToken, nil)
	if got := sendersOf(body["chunk"]); status != 200 || len(got) != 1 || got[0] != alice.UserID.String()+":alice in alice's thread" {
		t.Fatalf("bob's /relations: %d %v", status, got)
	}
	status, body = r.JSON(t, http.MethodGet, relPath+"/m.thread", alice.AccessToken, nil)
	if got := sendersOf(body["chunk"]); status != 200 || len(got) != 3 {
		t.Fatalf("alice's /relations: %d %v", status, got)
	}

	// /threads: carol's thread root is not listed for bob, and the summary
	// of alice's thread counts and shows only alice's reply.
	thrPath := "/_matrix/client/v1/rooms/" + roomID.String() + "/threads"
	summary := func(root any) (float64, string) {
		rel, _ := root.(map[string]any)["unsigned"].(map[string]any)["m.relations"].(map[string]any)["m.thread"].(map[string]any)
		latest, _ := rel["latest_event"].(map[string]any)
		n, _ := rel["count"].(float64)
		s, _ := latest["sender"].(string)
		return n, s
	}
	status, body = r.JSON(t, http.MethodGet, thrPath, bob.AccessToken, nil)
	if got := sendersOf(body["chunk"]); status != 200 || len(got) != 1 || got[0] != alice.UserID.String()+":searchword alice root" {
		t.Fatalf("bob's /threads: %d %v", status, got)
	}
	if n, sender := summary(body["chunk"].([]any)[0]); n != 1 || sender != alice.UserID.String() {
		t.Fatalf("bob's thread summary: %v replies, latest from %s", n, sender)
	}
	status, body = r.JSON(t, http.MethodGet, thrPath, alice.AccessToken, nil)
	if got := sendersOf(body["chunk"]); status != 200 || len(got) != 2 {
		t.Fatalf("alice's /threads: %d %v", status, got)
	}
	if n, sender := summary(body["chunk"].([]any)[1]); n != 3 || sender != carol.UserID.String() {
		t.Fatalf("alice's thread summary: %v replies, latest from %s", n, sender)
	}

	// POST /search.
	search := func(c *mautrix.Client) []string {
		t.Helper()
		status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/search", c.AccessToken, map[string]any{
			"search_categories": map[string]any{"room_events": map[string]any{"search_term": "searchword",
				"event_context": map[string]any{"before_limit": 5, "after_limit": 5}}}})
		if status != 200 {
			t.Fatalf("search: %d %v", status, body)
		}
		var out []string
		for _, res := range body["search_categories"].(map[string]any)["room_events"].(map[string]any)["results"].([]any) {
			m := res.(map[string]any)
			out = append(out, sendersOf([]any{m["result"]})...)
			c := m["context"].(map[string]any)
			out = append(out, sendersOf(c["events_before"])...)
			out = append(out, sendersOf(c["events_after"])...)
		}
		return out
	}
	if got := search(bob); len(got) == 0 || hasSender(got, carol.UserID) {
		t.Fatalf("bob's search results and context: %v", got)
	}
	if got := search(alice); !hasSender(got, carol.UserID) {
		t.Fatalf("alice's search misses carol: %v", got)
	}

	// /notifications lists none of carol's messages.
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/notifications", bob.AccessToken, nil)
	var notified []any
	for _, n := range body["notifications"].([]any) {
		notified = append(notified, n.(map[string]any)["event"])
	}
	if got := sendersOf(notified); status != 200 || len(got) != 4 || hasSender(got, carol.UserID) {
		t.Fatalf("bob's /notifications: %d %v", status, got)
	}

	// Sliding sync: timeline without carol, her invite not shown, counts
	// without her messages.
	invited := testrig.CreateRoom(t, carol, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", bob.AccessToken,
		map[string]any{"lists": map[string]any{"all": map[string]any{"ranges": [][]int{{0, 10}}, "timeline_limit": 20}}})
	if status != 200 {
		t.Fatalf("sliding sync: %d %v", status, body)
	}
	ssRooms := body["rooms"].(map[string]any)
	if _, ok := ssRooms[invited.String()]; ok {
		t.Fatal("sliding sync shows an invite from an ignored user")
	}
	if n := body["lists"].(map[string]any)["all"].(map[string]any)["count"]; n != float64(1) {
		t.Fatalf("sliding sync list count %v", n)
	}
	ssRoom := ssRooms[roomID.String()].(map[string]any)
	if got := sendersOf(ssRoom["timeline"]); len(got) != 4 || hasSender(got, carol.UserID) {
		t.Fatalf("sliding sync timeline %v", got)
	}
	if n := ssRoom["notification_count"]; n != float64(4) {
		t.Fatalf("sliding sync notification_count %v", n)
	}

	// Un-ignoring brings her back at once.
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if n := unread(); n != 8 {
		t.Fatalf("unread after un-ignoring: %v", n)
	}
	status, body = r.JSON(t, http.MethodGet, ctxPath+carolRoot.String(), bob.AccessToken, nil)
	if status != 200 {
		t.Fatalf("/context after un-ignoring: %d %v", status, body)
	}
}
