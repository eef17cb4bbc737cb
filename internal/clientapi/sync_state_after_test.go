package clientapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// syncRoom is rooms.<section>.<roomID> of a sync body, or nil.
func syncRoom(body map[string]any, section string, roomID id.RoomID) map[string]any {
	rs, _ := body["rooms"].(map[string]any)
	sec, _ := rs[section].(map[string]any)
	room, _ := sec[roomID.String()].(map[string]any)
	return room
}

// stateIDs lists the event IDs of a room's state section (state or
// state_after), failing when the section is missing.
func stateIDs(t *testing.T, room map[string]any, key string) []string {
	t.Helper()
	sec, ok := room[key].(map[string]any)
	if !ok {
		t.Fatalf("no %s in %v", key, room)
	}
	evs, ok := sec["events"].([]any)
	if !ok {
		t.Fatalf("%s has no events list: %v", key, sec)
	}
	ids := []string{}
	for _, e := range evs {
		ids = append(ids, e.(map[string]any)["event_id"].(string))
	}
	return ids
}

// stateTypes lists "type|state_key" of a state section's events.
func stateTypes(room map[string]any, key string) []string {
	sec, _ := room[key].(map[string]any)
	evs, _ := sec["events"].([]any)
	out := []string{}
	for _, e := range evs {
		m := e.(map[string]any)
		out = append(out, m["type"].(string)+"|"+m["state_key"].(string))
	}
	return out
}

// TestSyncUseStateAfter: with use_state_after=true (MSC4222, v1.16) each
// room carries state_after, the state at the end of its timeline (timeline
// state events included), and no state; without it, the reverse.
func TestSyncUseStateAfter(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, _ := sharedRoom(t, alice, bob)
	topic, err := alice.SendStateEvent(ctx, roomID, event.StateTopic, "", map[string]any{"topic": "first"})
	if err != nil {
		t.Fatal(err)
	}
	after := url.Values{"use_state_after": {"true"}}

	// Initial sync: the whole state at the end of the timeline, with the
	// topic that is also in the timeline.
	initial := syncRaw(t, r, bob.AccessToken, after)
	room := syncRoom(initial, "join", roomID)
	if _, ok := room["state"]; ok {
		t.Fatalf("state sent with use_state_after: %v", room)
	}
	ids := stateIDs(t, room, "state_after")
	if !slices.Contains(ids, topic.EventID.String()) {
		t.Errorf("initial state_after lacks the topic %s (in the timeline): %v", topic.EventID, stateTypes(room, "state_after"))
	}
	for _, want := range []string{"m.room.create|", "m.room.power_levels|", "m.room.member|" + bob.UserID.String()} {
		if !slices.Contains(stateTypes(room, "state_after"), want) {
			t.Errorf("initial state_after lacks %s: %v", want, stateTypes(room, "state_after"))
		}
	}
	// Without the flag: state, which leaves out the timeline's topic.
	plain := syncRoom(syncRaw(t, r, bob.AccessToken, nil), "join", roomID)
	if _, ok := plain["state_after"]; ok {
		t.Fatalf("state_after sent without use_state_after: %v", plain)
	}
	if slices.Contains(stateIDs(t, plain, "state"), topic.EventID.String()) {
		t.Errorf("state has the timeline's topic")
	}

	// Incremental, timeline not limited: the new topic is in state_after
	// (and the timeline); an unchanged state is an empty state_after.
	since := initial["next_batch"].(string)
	topic2, err := alice.SendStateEvent(ctx, roomID, event.StateTopic, "", map[string]any{"topic": "second"})
	if err != nil {
		t.Fatal(err)
	}
	testrig.SendText(t, alice, roomID, "after the topic")
	inc := syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"}, "since": {since}})
	room = syncRoom(inc, "join", roomID)
	if _, ok := room["state"]; ok {
		t.Fatalf("incremental state sent with use_state_after: %v", room)
	}
	if got := stateIDs(t, room, "state_after"); !slices.Equal(got, []string{topic2.EventID.String()}) {
		t.Errorf("incremental state_after %v, want only the new topic %s", stateTypes(room, "state_after"), topic2.EventID)
	}
	since = inc["next_batch"].(string)
	testrig.SendText(t, alice, roomID, "just a message")
	inc = syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"}, "since": {since}})
	if got := stateIDs(t, syncRoom(inc, "join", roomID), "state_after"); len(got) != 0 {
		t.Errorf("state_after without state changes: %v", got)
	}

	// Limited timeline: a name set before the gap is in state_after.
	since = inc["next_batch"].(string)
	name, err := alice.SendStateEvent(ctx, roomID, event.StateRoomName, "", map[string]any{"name": "Named"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		testrig.SendText(t, alice, roomID, "filler")
	}
	inc = syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"}, "since": {since},
		"filter": {`{"room":{"timeline":{"limit":1}}}`}})
	room = syncRoom(inc, "join", roomID)
	if tl := room["timeline"].(map[string]any); tl["limited"] != true {
		t.Fatalf("timeline not limited: %v", tl)
	}
	if got := stateIDs(t, room, "state_after"); !slices.Equal(got, []string{name.EventID.String()}) {
		t.Errorf("limited state_after %v, want the name %s", stateTypes(room, "state_after"), name.EventID)
	}

	// Lazy-loaded members: a kick's member event (its target sent nothing)
	// is still in state_after, since clients ignore the timeline's state.
	if _, err := alice.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	testrig.Join(t, roomID, carol)
	since = syncRaw(t, r, bob.AccessToken, url.Values{"since": {inc["next_batch"].(string)}})["next_batch"].(string)
	if _, err := alice.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	lazy := syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"}, "since": {since},
		"filter": {`{"room":{"state":{"lazy_load_members":true}}}`}})
	if got := stateTypes(syncRoom(lazy, "join", roomID), "state_after"); !slices.Contains(got, "m.room.member|"+carol.UserID.String()) {
		t.Errorf("lazy state_after lacks carol's kick: %v", got)
	}

	// Left room: the state right after the leave, with the leave itself.
	since = lazy["next_batch"].(string)
	if _, err := alice.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	testrig.SendText(t, alice, roomID, "after bob left")
	left := syncRoom(syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"}, "since": {since}}), "leave", roomID)
	if left == nil {
		t.Fatal("no left room")
	}
	if _, ok := left["state"]; ok {
		t.Fatalf("left room has state with use_state_after: %v", left)
	}
	if got := stateTypes(left, "state_after"); !slices.Equal(got, []string{"m.room.member|" + bob.UserID.String()}) {
		t.Errorf("left state_after %v, want bob's leave only", got)
	}
	plainLeft := syncRoom(syncRaw(t, r, bob.AccessToken, url.Values{"since": {since}}), "leave", roomID)
	if _, ok := plainLeft["state_after"]; ok || plainLeft["state"] == nil {
		t.Errorf("left room without the flag: %v", plainLeft)
	}

	// Left room in an initial sync (include_leave): the whole state at the leave.
	full := syncRoom(syncRaw(t, r, bob.AccessToken, url.Values{"use_state_after": {"true"},
		"filter": {`{"room":{"include_leave":true}}`}}), "leave", roomID)
	got := stateTypes(full, "state_after")
	for _, want := range []string{"m.room.create|", "m.room.name|", "m.room.member|" + bob.UserID.String()} {
		if !slices.Contains(got, want) {
			t.Errorf("initial left state_after lacks %s: %v", want, got)
		}
	}
}

func TestSyncUseStateAfterInvalid(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/sync?use_state_after=yes", alice.AccessToken, nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM", "use_state_after=yes")
}
