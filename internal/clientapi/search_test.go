package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// searchRoomEvents posts a room_events search and returns its category.
func searchRoomEvents(t *testing.T, r *testrig.Rig, c *mautrix.Client, criteria map[string]any, nextBatch string) map[string]any {
	t.Helper()
	path := "/search"
	if nextBatch != "" {
		path += "?next_batch=" + nextBatch
	}
	status, body := apiCall(t, r, c, v3, http.MethodPost, path, map[string]any{"search_categories": map[string]any{"room_events": criteria}})
	if status != 200 {
		t.Fatalf("search %v: %d %v", criteria, status, body)
	}
	return body["search_categories"].(map[string]any)["room_events"].(map[string]any)
}

func resultIDs(cat map[string]any) []string {
	var out []string
	for _, r := range cat["results"].([]any) {
		out = append(out, r.(map[string]any)["result"].(map[string]any)["event_id"].(string))
	}
	return out
}

func TestSearch(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	if err := alice.SetDisplayName(ctx, "Alice A"); err != nil {
		t.Fatal(err)
	}
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Animals"})
	if err != nil {
		t.Fatal(err)
	}
	send := func(c *mautrix.Client, room id.RoomID, text string) id.EventID {
		t.Helper()
		res, err := c.SendText(ctx, room, text)
		if err != nil {
			t.Fatal(err)
		}
		return res.EventID
	}
	fox := send(alice, room.RoomID, "The quick brown fox")
	dog := send(alice, room.RoomID, "A lazy dog sleeps")
	thinking := send(alice, room.RoomID, "Quick thinking, Fox!")
	// Encrypted events carry no text the server can read: never indexed.
	if _, err := alice.SendMessageEvent(ctx, room.RoomID, event.EventEncrypted, map[string]any{
		"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "quick", "body": "quick", "sender_key": "k", "session_id": "s", "device_id": "D",
	}); err != nil {
		t.Fatal(err)
	}

	// Found right after the send, best match first; recent is newest first.
	cat := searchRoomEvents(t, r, alice, map[string]any{"search_term": "quick fox"}, "")
	if ids := resultIDs(cat); len(ids) != 2 || cat["count"] != float64(2) {
		t.Fatalf("quick fox: %v %v", ids, cat)
	}
	if hl := fmt.Sprint(cat["highlights"]); hl != "[fox quick]" {
		t.Fatalf("highlights: %s", hl)
	}
	res0 := cat["results"].([]any)[0].(map[string]any)
	if res0["rank"].(float64) <= 0 || res0["result"].(map[string]any)["room_id"] != room.RoomID.String() {
		t.Fatalf("result: %v", res0)
	}
	cat = searchRoomEvents(t, r, alice, map[string]any{"search_term": "QUICK", "order_by": "recent"}, "")
	if ids := resultIDs(cat); !slices.Equal(ids, []string{thinking.String(), fox.String()}) {
		t.Fatalf("recent: %v", ids)
	}
	// Word prefixes match.
	if ids := resultIDs(searchRoomEvents(t, r, alice, map[string]any{"search_term": "thin"}, "")); !slices.Equal(ids, []string{thinking.String()}) {
		t.Fatalf("prefix: %v", ids)
	}
	// Room names are searchable by key, and only when the key is asked for.
	cat = searchRoomEvents(t, r, alice, map[string]any{"search_term": "animals", "keys": []string{"content.name"}}, "")
	if ids := resultIDs(cat); len(ids) != 1 || cat["results"].([]any)[0].(map[string]any)["result"].(map[string]any)["type"] != "m.room.name" {
		t.Fatalf("name key: %v", cat)
	}
	if ids := resultIDs(searchRoomEvents(t, r, alice, map[string]any{"search_term": "animals", "keys": []string{"content.body"}}, "")); len(ids) != 0 {
		t.Fatalf("body key found the name: %v", ids)
	}

	// Context, profiles, state and groups.
	cat = searchRoomEvents(t, r, alice, map[string]any{
		"search_term":   "lazy",
		"event_context": map[string]any{"before_limit": 1, "after_limit": 1, "include_profile": true},
		"include_state": true,
		"groupings":     map[string]any{"group_by": []any{map[string]any{"key": "room_id"}, map[string]any{"key": "sender"}}},
	}, "")
	if ids := resultIDs(cat); !slices.Equal(ids, []string{dog.String()}) {
		t.Fatalf("lazy: %v", ids)
	}
	cx := cat["results"].([]any)[0].(map[string]any)["context"].(map[string]any)
	eb, ea := cx["events_before"].([]any), cx["events_after"].([]any)
	if len(eb) != 1 || eb[0].(map[string]any)["event_id"] != fox.String() || len(ea) != 1 || ea[0].(map[string]any)["event_id"] != thinking.String() ||
		cx["start"] == "" || cx["end"] == "" {
		t.Fatalf("context: %v", cx)
	}
	if p := cx["profile_info"].(map[string]any)[alice.UserID.String()].(map[string]any); p["displayname"] != "Alice A" {
		t.Fatalf("profile: %v", cx["profile_info"])
	}
	state := cat["state"].(map[string]any)[room.RoomID.String()].([]any)
	if len(state) < 5 || state[0].(map[string]any)["type"] != "m.room.create" {
		t.Fatalf("state: %v", state)
	}
	groups := cat["groups"].(map[string]any)
	g := groups["room_id"].(map[string]any)[room.RoomID.String()].(map[string]any)
	if fmt.Sprint(g["results"]) != fmt.Sprint([]string{dog.String()}) || g["order"] != float64(1) {
		t.Fatalf("room group: %v", groups)
	}
	if _, ok := groups["sender"].(map[string]any)[alice.UserID.String()]; !ok {
		t.Fatalf("sender group: %v", groups)
	}

	// A redacted message leaves the index at once.
	if _, err := alice.RedactEvent(ctx, room.RoomID, dog); err != nil {
		t.Fatal(err)
	}
	if ids := resultIDs(searchRoomEvents(t, r, alice, map[string]any{"search_term": "lazy"}, "")); len(ids) != 0 {
		t.Fatalf("redacted still found: %v", ids)
	}

	// Bob, not in the room, finds nothing; in a room whose history is for
	// members since they joined, he finds only what came after his join.
	if ids := resultIDs(searchRoomEvents(t, r, bob, map[string]any{"search_term": "quick"}, "")); len(ids) != 0 {
		t.Fatalf("non-member found: %v", ids)
	}
	private, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}, InitialState: []*event.Event{{
		Type: event.StateHistoryVisibility, Content: event.Content{Raw: map[string]any{"history_visibility": "joined"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	send(alice, private.RoomID, "secret quick plan")
	if _, err := bob.JoinRoom(ctx, private.RoomID.String(), nil); err != nil {
		t.Fatal(err)
	}
	later := send(alice, private.RoomID, "public quick plan")
	if ids := resultIDs(searchRoomEvents(t, r, bob, map[string]any{"search_term": "plan"}, "")); !slices.Equal(ids, []string{later.String()}) {
		t.Fatalf("joined-only history: %v", ids)
	}
	// The rooms filter narrows the search.
	cat = searchRoomEvents(t, r, alice, map[string]any{"search_term": "quick", "filter": map[string]any{"rooms": []string{private.RoomID.String()}}}, "")
	if ids := resultIDs(cat); len(ids) != 2 {
		t.Fatalf("rooms filter: %v", ids)
	}
	cat = searchRoomEvents(t, r, alice, map[string]any{"search_term": "quick", "filter": map[string]any{"senders": []string{bob.UserID.String()}}}, "")
	if ids := resultIDs(cat); len(ids) != 0 {
		t.Fatalf("senders filter: %v", ids)
	}

	// Paging: 25 matches in pages of 10 cover each exactly once, both orders.
	for i := 0; i < 25; i++ {
		send(bob, private.RoomID, fmt.Sprintf("paging message %d", i))
	}
	for _, order := range []string{"rank", "recent"} {
		seen := map[string]bool{}
		var sizes []int
		next := ""
		for page := 0; page < 5; page++ {
			cat = searchRoomEvents(t, r, bob, map[string]any{"search_term": "paging", "order_by": order, "filter": map[string]any{"limit": 10}}, next)
			ids := resultIDs(cat)
			sizes = append(sizes, len(ids))
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("%s: %s twice", order, id)
				}
				seen[id] = true
			}
			next, _ = cat["next_batch"].(string)
			if next == "" {
				break
			}
		}
		if len(seen) != 25 || sizes[0] != 10 || sizes[1] != 10 {
			t.Fatalf("%s paging: %d results in pages %v", order, len(seen), sizes)
		}
	}

	// Errors.
	status, body := apiCall(t, r, alice, v3, http.MethodPost, "/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "order_by": "size"}}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{}}})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/search", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x", "keys": []string{"content.nope"}}}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/search?next_batch=zz", map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": "x"}}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	// Query syntax in the term is just text.
	if ids := resultIDs(searchRoomEvents(t, r, alice, map[string]any{"search_term": `"thinking" -* ( : ^`}, "")); len(ids) != 1 {
		t.Fatalf("syntax chars: %v", ids)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodPost, "/search", map[string]any{"search_categories": map[string]any{}})
	if status != 200 {
		t.Fatalf("no categories: %d %v", status, body)
	}
}

// TestSearchNextBatchOnFullPages: a full page carries next_batch even when
// no hit is left (20 hits in pages of 10, or one hit in pages of 1), and
// the page after it is empty without one.
func TestSearchNextBatchOnFullPages(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	for i := 0; i < 20; i++ {
		testrig.SendText(t, alice, room, fmt.Sprintf("Message number %d", i))
	}
	for _, order := range []string{"recent", "rank"} {
		criteria := map[string]any{"search_term": "Message", "order_by": order, "filter": map[string]any{"limit": 10, "rooms": []string{room.String()}}}
		var sizes []int
		next, pages := "", 0
		for ; pages < 4; pages++ {
			cat := searchRoomEvents(t, r, alice, criteria, next)
			sizes = append(sizes, len(resultIDs(cat)))
			next, _ = cat["next_batch"].(string)
			if next == "" {
				break
			}
		}
		if !slices.Equal(sizes, []int{10, 10, 0}) {
			t.Fatalf("%s: page sizes %v, want [10 10 0] with next_batch on the full pages", order, sizes)
		}
	}
	cat := searchRoomEvents(t, r, alice, map[string]any{"search_term": "number 4", "order_by": "recent",
		"filter": map[string]any{"limit": 1, "rooms": []string{room.String()}}}, "")
	if ids := resultIDs(cat); len(ids) != 1 || cat["next_batch"] == nil {
		t.Fatalf("one hit in a page of one: %v", cat)
	}
}
