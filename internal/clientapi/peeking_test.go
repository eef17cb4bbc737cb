package clientapi_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestPeekEvents(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	open := worldReadableRoom(t, alice)
	private := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})

	// A non-member peeks: the first call (no from, no wait) gives a token.
	status, body := apiCall(t, r, bob, v3, "GET", "/events?timeout=0&room_id="+url.QueryEscape(open.String()), nil)
	if status != 200 || len(chunkIDs(body)) != 0 || body["end"] == nil || body["start"] == nil {
		t.Fatalf("first peek: %d %v", status, body)
	}
	from := body["end"].(string)

	// A long-poll from there is woken by the next message.
	type result struct {
		status  int
		body    map[string]any
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		s, b := apiCall(t, r, bob, v3, "GET", "/events?timeout=20000&from="+url.QueryEscape(from)+"&room_id="+url.QueryEscape(open.String()), nil)
		done <- result{s, b, time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond)
	sent := testrig.SendText(t, alice, open, "hello lurkers")
	res := <-done
	if ids := chunkIDs(res.body); res.status != 200 || len(ids) != 1 || ids[0] != sent.String() {
		t.Fatalf("peek long-poll: %d %v", res.status, res.body)
	}
	if res.elapsed > 5*time.Second {
		t.Fatalf("peek long-poll took %v: not woken by the message", res.elapsed)
	}
	chunk := res.body["chunk"].([]any)[0].(map[string]any)
	if chunk["room_id"] != open.String() || chunk["sender"] != alice.UserID.String() {
		t.Fatalf("peeked event: %v", chunk)
	}
	// The next peek continues after it.
	status, body = apiCall(t, r, bob, v3, "GET", "/events?timeout=0&from="+url.QueryEscape(res.body["end"].(string))+"&room_id="+url.QueryEscape(open.String()), nil)
	if status != 200 || len(chunkIDs(body)) != 0 {
		t.Fatalf("peek after end: %d %v", status, body)
	}

	// Rooms that are not world-readable, or unknown, cannot be peeked into.
	status, body = apiCall(t, r, bob, v3, "GET", "/events?timeout=0&room_id="+url.QueryEscape(private.String()), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v3, "GET", "/events?timeout=0&room_id="+url.QueryEscape("!nope:axon.test"), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v3, "GET", "/events?timeout=0&room_id=nope", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v3, "GET", "/events?timeout=x", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v3, "GET", "/events?from=garbage", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
}

func TestEventStream(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	testrig.Join(t, room, bob)
	other := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	status, body := apiCall(t, r, bob, v3, "GET", "/initialSync?limit=1", nil)
	if status != 200 {
		t.Fatalf("initialSync: %d %v", status, body)
	}
	from := body["end"].(string)
	done := make(chan map[string]any, 1)
	go func() {
		_, b := apiCall(t, r, bob, v3, "GET", "/events?timeout=20000&from="+url.QueryEscape(from), nil)
		done <- b
	}()
	time.Sleep(100 * time.Millisecond)
	// A message in a room bob is not in must not show, the one in his room must.
	testrig.SendText(t, alice, other, "not for bob")
	sent := testrig.SendText(t, alice, room, "for bob")
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		b := <-done
		got = chunkIDs(b)
		if len(got) == 0 {
			go func() {
				_, b2 := apiCall(t, r, bob, v3, "GET", "/events?timeout=5000&from="+url.QueryEscape(b["end"].(string)), nil)
				done <- b2
			}()
		}
	}
	if len(got) != 1 || got[0] != sent.String() {
		t.Fatalf("event stream: %v, want only %s", got, sent)
	}
}

func TestInitialSync(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Chat"})
	var sent []string
	for _, text := range []string{"one", "two", "three"} {
		resp, err := alice.SendText(ctx, room, text)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, resp.EventID.String())
	}
	invited := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
	left := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if _, err := alice.LeaveRoom(ctx, left); err != nil {
		t.Fatal(err)
	}

	status, body := apiCall(t, r, alice, v3, "GET", "/initialSync?limit=2", nil)
	if status != 200 || body["end"] == nil {
		t.Fatalf("initialSync: %d %v", status, body)
	}
	if _, ok := body["presence"].([]any); !ok {
		t.Fatalf("initialSync presence: %v", body["presence"])
	}
	if ad, _ := body["account_data"].([]any); len(ad) == 0 || ad[0].(map[string]any)["type"] != "m.push_rules" {
		t.Fatalf("initialSync account_data: %v", body["account_data"])
	}
	byRoom := map[string]map[string]any{}
	for _, x := range body["rooms"].([]any) {
		rm := x.(map[string]any)
		byRoom[rm["room_id"].(string)] = rm
	}
	if _, has := byRoom[left.String()]; has || len(byRoom) != 2 {
		t.Fatalf("initialSync rooms: %v", byRoom)
	}
	joined := byRoom[room.String()]
	msgs := joined["messages"].(map[string]any)
	if joined["membership"] != "join" || joined["visibility"] != "private" {
		t.Fatalf("joined room: %v", joined)
	}
	if ids := chunkIDs(msgs); len(ids) != 2 || ids[0] != sent[1] || ids[1] != sent[2] {
		t.Fatalf("messages chunk %v, want the last two in order", ids)
	}
	state := map[string]bool{}
	for _, e := range joined["state"].([]any) {
		ev := e.(map[string]any)
		state[ev["type"].(string)] = true
		if ev["room_id"] != room.String() {
			t.Fatalf("state event without room_id: %v", ev)
		}
	}
	if !state["m.room.create"] || !state["m.room.name"] || !state["m.room.member"] {
		t.Fatalf("state types: %v", state)
	}
	// The start token pages back to the message before the chunk.
	older, err := alice.Messages(ctx, room, msgs["start"].(string), "", mautrix.DirectionBackward, nil, 1)
	if err != nil || len(older.Chunk) != 1 || older.Chunk[0].ID.String() != sent[0] {
		t.Fatalf("paging back from start: %v %+v", err, older)
	}
	// The end token pages forward to what comes next.
	next := testrig.SendText(t, alice, room, "four")
	newer, err := alice.Messages(ctx, room, msgs["end"].(string), "", mautrix.DirectionForward, nil, 5)
	if err != nil || len(newer.Chunk) != 1 || newer.Chunk[0].ID != next {
		t.Fatalf("paging forward from end: %v %+v", err, newer)
	}
	inv := byRoom[invited.String()]
	if inv["membership"] != "invite" || inv["invite"].(map[string]any)["sender"] != bob.UserID.String() {
		t.Fatalf("invited room: %v", inv)
	}

	// archived=true adds the room alice left, as she left it.
	status, body = apiCall(t, r, alice, v3, "GET", "/initialSync?archived=true", nil)
	found := false
	for _, x := range body["rooms"].([]any) {
		rm := x.(map[string]any)
		if rm["room_id"] == left.String() {
			found = rm["membership"] == "leave"
		}
	}
	if status != 200 || !found {
		t.Fatalf("archived initialSync: %d %v", status, body)
	}
	status, body = apiCall(t, r, alice, v3, "GET", "/initialSync?archived=maybe", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
}

func TestRoomInitialSync(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	open := worldReadableRoom(t, alice)
	private := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{carol.UserID}})
	first := testrig.SendText(t, alice, open, "welcome")
	path := func(room id.RoomID) string { return "/rooms/" + esc(room.String()) + "/initialSync" }
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline}); err != nil {
		t.Fatal(err)
	}

	// A member.
	status, body := apiCall(t, r, alice, v3, "GET", path(open), nil)
	msgs, _ := body["messages"].(map[string]any)
	if ids := chunkIDs(msgs); status != 200 || body["membership"] != "join" || len(ids) == 0 || ids[len(ids)-1] != first.String() {
		t.Fatalf("member room initialSync: %d %v", status, body)
	}
	if p, _ := body["presence"].([]any); len(p) != 1 || p[0].(map[string]any)["sender"] != alice.UserID.String() {
		t.Fatalf("room initialSync presence: %v", body["presence"])
	}
	// A non-member previews the world-readable room: no membership, same messages.
	status, body = apiCall(t, r, bob, v3, "GET", path(open)+"?limit=1", nil)
	msgs, _ = body["messages"].(map[string]any)
	if ids := chunkIDs(msgs); status != 200 || len(ids) != 1 || ids[0] != first.String() || body["state"] == nil {
		t.Fatalf("preview room initialSync: %d %v", status, body)
	}
	if _, has := body["membership"]; has {
		t.Fatalf("preview has a membership: %v", body)
	}
	// Its start token works for /messages as a non-member too.
	older, err := bob.Messages(ctx, open, msgs["start"].(string), "", mautrix.DirectionBackward, nil, 1)
	if err != nil || len(older.Chunk) != 1 {
		t.Fatalf("non-member paging: %v %+v", err, older)
	}
	// Private rooms: refused to strangers (and for unknown rooms alike).
	status, body = apiCall(t, r, bob, v3, "GET", path(private), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v3, "GET", path("!nope:axon.test"), nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v3, "GET", path(open)+"?limit=-1", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")

	// A user who left sees the room as it was when they left.
	testrig.Join(t, private, carol)
	before := testrig.SendText(t, alice, private, "before carol left")
	if _, err := carol.LeaveRoom(ctx, private); err != nil {
		t.Fatal(err)
	}
	testrig.SendText(t, alice, private, "after carol left")
	if _, err := alice.SendStateEvent(ctx, private, event.StateRoomName, "", map[string]any{"name": "Renamed later"}); err != nil {
		t.Fatal(err)
	}
	status, body = apiCall(t, r, carol, v3, "GET", path(private), nil)
	msgs, _ = body["messages"].(map[string]any)
	ids := chunkIDs(msgs)
	if status != 200 || body["membership"] != "leave" || len(ids) < 2 || ids[len(ids)-2] != before.String() {
		t.Fatalf("left room initialSync: %d %v", status, body)
	}
	for _, e := range body["state"].([]any) {
		if e.(map[string]any)["type"] == "m.room.name" {
			t.Fatalf("left user sees state from after leaving: %v", e)
		}
	}
}

func TestEventByID(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	open := worldReadableRoom(t, alice)
	private := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	secret := testrig.SendText(t, alice, private, "secret")
	public := testrig.SendText(t, alice, open, "public")
	status, body := apiCall(t, r, alice, v3, "GET", "/events/"+esc(secret.String()), nil)
	if status != 200 || body["event_id"] != secret.String() || body["room_id"] != private.String() {
		t.Fatalf("member event: %d %v", status, body)
	}
	status, body = apiCall(t, r, bob, v3, "GET", "/events/"+esc(secret.String()), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	if status, body = apiCall(t, r, bob, v3, "GET", "/events/"+esc(public.String()), nil); status != 200 || body["event_id"] != public.String() {
		t.Fatalf("world-readable event: %d %v", status, body)
	}
	status, body = apiCall(t, r, bob, v3, "GET", "/events/"+esc("$nope"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}

// TestWorldReadableNonMember checks that history_visibility world_readable
// lets anyone read a room through the ordinary read endpoints.
func TestWorldReadableNonMember(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	open := worldReadableRoom(t, alice)
	private := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	msg := testrig.SendText(t, alice, open, "readable")
	hidden := testrig.SendText(t, alice, private, "hidden")
	for _, p := range []string{"/messages", "/state", "/members", "/event/" + esc(msg.String()), "/context/" + esc(msg.String()),
		"/state/m.room.name/"} {
		if status, body := r.Do("GET", "/_matrix/client/v3/rooms/"+esc(open.String())+p, bob.AccessToken, nil); status != 200 {
			t.Errorf("non-member GET %s in a world-readable room: %d %s", p, status, body)
		}
	}
	for _, p := range []string{"/messages", "/state", "/members"} {
		status, body := apiCall(t, r, bob, v3, "GET", "/rooms/"+esc(private.String())+p, nil)
		wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	}
	status, body := apiCall(t, r, bob, v3, "GET", "/rooms/"+esc(private.String())+"/event/"+esc(hidden.String()), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}

func TestGuestPeek(t *testing.T) {
	r := testrig.Start(t, guestsOn)
	alice := r.CreateUser("alice")
	open := worldReadableRoom(t, alice)
	guest := registerGuest(t, r)
	if status, body := apiCall(t, r, guest, v3, "GET", "/events?timeout=0&room_id="+url.QueryEscape(open.String()), nil); status != 200 {
		t.Fatalf("guest peek: %d %v", status, body)
	}
	if status, body := apiCall(t, r, guest, v3, "GET", "/rooms/"+esc(open.String())+"/initialSync", nil); status != 200 {
		t.Fatalf("guest room initialSync: %d %v", status, body)
	}
	status, body := apiCall(t, r, guest, v3, "GET", "/events?timeout=0", nil)
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
	status, body = apiCall(t, r, guest, v3, "GET", "/initialSync", nil)
	wantAPIError(t, status, body, 403, "M_GUEST_ACCESS_FORBIDDEN")
}
