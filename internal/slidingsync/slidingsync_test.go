package slidingsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

const ssPath = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

type ssRoom struct {
	Name              string            `json:"name"`
	Heroes            []map[string]any  `json:"heroes"`
	Initial           bool              `json:"initial"`
	IsDM              bool              `json:"is_dm"`
	RequiredState     []json.RawMessage `json:"required_state"`
	Timeline          []ssEvent         `json:"timeline"`
	PrevBatch         string            `json:"prev_batch"`
	Limited           bool              `json:"limited"`
	NumLive           *int              `json:"num_live"`
	BumpStamp         int64             `json:"bump_stamp"`
	JoinedCount       *int              `json:"joined_count"`
	InvitedCount      *int              `json:"invited_count"`
	NotificationCount int               `json:"notification_count"`
	HighlightCount    int               `json:"highlight_count"`
	InviteState       []ssEvent         `json:"invite_state"`
	ExpandedTimeline  bool              `json:"unstable_expanded_timeline"`
	V4Expanded        bool              `json:"expanded_timeline"`
	StrippedState     []ssEvent         `json:"stripped_state"`
	Membership        string            `json:"membership"`
	Lists             []string          `json:"lists"`
}

type ssEvent struct {
	Type     string         `json:"type"`
	Sender   string         `json:"sender"`
	StateKey *string        `json:"state_key"`
	EventID  string         `json:"event_id"`
	Content  map[string]any `json:"content"`
}

type ssResp struct {
	Pos   string `json:"pos"`
	Lists map[string]struct {
		Count int `json:"count"`
	} `json:"lists"`
	Rooms      map[string]*ssRoom         `json:"rooms"`
	Extensions map[string]json.RawMessage `json:"extensions"`
}

// ss sends a sliding sync request and decodes a 200 answer.
func ss(t *testing.T, r *testrig.Rig, c *mautrix.Client, pos string, timeoutMS int, body any) *ssResp {
	t.Helper()
	status, raw := ssRaw(t, r, c, pos, timeoutMS, body)
	if status != http.StatusOK {
		t.Fatalf("sliding sync: %d %s", status, raw)
	}
	var out ssResp
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode: %v: %s", err, raw)
	}
	return &out
}

func ssRaw(t *testing.T, r *testrig.Rig, c *mautrix.Client, pos string, timeoutMS int, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	path := ssPath + "?timeout=" + itoa(timeoutMS)
	if pos != "" {
		path += "&pos=" + pos
	}
	return r.Do(http.MethodPost, path, c.AccessToken, bytes.NewReader(b))
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func list(ranges [][]int, limit int, extra map[string]any) map[string]any {
	l := map[string]any{"ranges": ranges, "timeline_limit": limit, "required_state": [][]string{{"m.room.name", ""}}}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

func req(lists map[string]any) map[string]any {
	return map[string]any{"conn_id": "main", "lists": lists}
}

// createRoom creates a named private room of c's.
func createRoom(t *testing.T, c *mautrix.Client, name string) id.RoomID {
	t.Helper()
	return testrig.CreateRoom(t, c, &mautrix.ReqCreateRoom{Name: name, Preset: "private_chat"})
}

func TestVersionsAdvertisesSlidingSync(t *testing.T) {
	r := testrig.Start(t)
	_, body := r.Do(http.MethodGet, "/_matrix/client/versions", "", nil)
	if !strings.Contains(string(body), `"org.matrix.simplified_msc3575":true`) {
		t.Fatalf("versions: %s", body)
	}
}

func TestListOrderingWindowAndMoveToTop(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	a := createRoom(t, alice, "A")
	b := createRoom(t, alice, "B")
	c := createRoom(t, alice, "C")
	testrig.SendText(t, alice, c, "newest")

	body := req(map[string]any{"all": list([][]int{{0, 1}}, 1, nil)})
	resp := ss(t, r, alice, "", 0, body)
	if resp.Lists["all"].Count != 3 {
		t.Fatalf("count: %+v", resp.Lists)
	}
	if len(resp.Rooms) != 2 || resp.Rooms[c.String()] == nil || resp.Rooms[b.String()] == nil {
		t.Fatalf("window [0,1] should hold C and B: %v", keys(resp.Rooms))
	}
	rc := resp.Rooms[c.String()]
	if !rc.Initial || rc.Name != "C" || len(rc.Timeline) != 1 || rc.Timeline[0].Content["body"] != "newest" || !rc.Limited {
		t.Fatalf("room C: %+v", rc)
	}
	if rc.JoinedCount == nil || *rc.JoinedCount != 1 || rc.PrevBatch == "" || rc.BumpStamp <= resp.Rooms[b.String()].BumpStamp {
		t.Fatalf("room C fields: %+v", rc)
	}
	if len(rc.RequiredState) != 1 {
		t.Fatalf("required_state: %d", len(rc.RequiredState))
	}

	// A message in the oldest room moves it into the window, sent whole.
	testrig.SendText(t, alice, a, "bump")
	resp2 := ss(t, r, alice, resp.Pos, 5000, body)
	ra := resp2.Rooms[a.String()]
	if ra == nil || !ra.Initial || len(ra.Timeline) != 1 || ra.Timeline[0].Content["body"] != "bump" {
		t.Fatalf("room A after bump: %v %+v", keys(resp2.Rooms), ra)
	}
	if resp2.Rooms[c.String()] != nil {
		t.Fatalf("room C did not change: %v", keys(resp2.Rooms))
	}
	// A second message in C (already sent) comes incrementally.
	testrig.SendText(t, alice, c, "again")
	resp3 := ss(t, r, alice, resp2.Pos, 5000, body)
	rc3 := resp3.Rooms[c.String()]
	if rc3 == nil || rc3.Initial || len(rc3.Timeline) != 1 || rc3.NumLive == nil || *rc3.NumLive != 1 || rc3.Limited {
		t.Fatalf("room C incremental: %+v", rc3)
	}
	if rc3.BumpStamp <= ra.BumpStamp {
		t.Fatalf("bump stamps: C %d A %d", rc3.BumpStamp, ra.BumpStamp)
	}
}

func keys(m map[string]*ssRoom) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPosReuseAndUnknownPos(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 5, nil)})
	first := ss(t, r, alice, "", 0, body)
	testrig.SendText(t, alice, room, "hello")
	second := ss(t, r, alice, first.Pos, 5000, body)
	retry := ss(t, r, alice, first.Pos, 5000, body)
	for _, resp := range []*ssResp{second, retry} {
		rr := resp.Rooms[room.String()]
		if rr == nil || len(rr.Timeline) != 1 || rr.Timeline[0].Content["body"] != "hello" {
			t.Fatalf("retry should repeat the answer: %+v", rr)
		}
	}
	// After a retry, the retried answer's pos works.
	if resp := ss(t, r, alice, retry.Pos, 0, body); len(resp.Rooms) != 0 {
		t.Fatalf("nothing new expected: %v", keys(resp.Rooms))
	}
	for _, pos := range []string{"999999", "garbage"} {
		status, raw := ssRaw(t, r, alice, pos, 0, body)
		if status != http.StatusBadRequest || !strings.Contains(string(raw), "M_UNKNOWN_POS") {
			t.Fatalf("pos %s: %d %s", pos, status, raw)
		}
	}
	// Another connection ID does not know this pos.
	other := map[string]any{"conn_id": "other", "lists": body["lists"]}
	if status, raw := ssRaw(t, r, alice, retry.Pos, 0, other); status != http.StatusBadRequest {
		t.Fatalf("other conn: %d %s", status, raw)
	}
}

func TestInviteAppearsInInviteList(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	createRoom(t, bob, "Bob's own")
	body := req(map[string]any{
		"invites": list([][]int{{0, 9}}, 1, map[string]any{"filters": map[string]any{"is_invite": true}}),
		"rooms":   list([][]int{{0, 9}}, 1, map[string]any{"filters": map[string]any{"is_invite": false}}),
	})
	first := ss(t, r, bob, "", 0, body)
	if first.Lists["invites"].Count != 0 || first.Lists["rooms"].Count != 1 {
		t.Fatalf("counts: %+v", first.Lists)
	}
	room := createRoom(t, alice, "Invitation")
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	resp := ss(t, r, bob, first.Pos, 5000, body)
	if resp.Lists["invites"].Count != 1 {
		t.Fatalf("counts: %+v", resp.Lists)
	}
	ri := resp.Rooms[room.String()]
	if ri == nil || len(ri.InviteState) == 0 || ri.Name != "Invitation" || len(ri.Timeline) != 0 {
		t.Fatalf("invite room: %+v", ri)
	}
	last := ri.InviteState[len(ri.InviteState)-1]
	if last.Type != "m.room.member" || last.Content["membership"] != "invite" {
		t.Fatalf("own member event last: %+v", last)
	}
	// Joining moves it to the rooms list, sent whole with its timeline.
	testrig.Join(t, room, bob)
	resp = ss(t, r, bob, resp.Pos, 5000, body)
	if resp.Lists["invites"].Count != 0 || resp.Lists["rooms"].Count != 2 {
		t.Fatalf("counts after join: %+v", resp.Lists)
	}
	rj := resp.Rooms[room.String()]
	if rj == nil || len(rj.Timeline) != 1 || rj.Timeline[0].Type != "m.room.member" || rj.JoinedCount == nil || *rj.JoinedCount != 2 {
		t.Fatalf("joined room: %+v", rj)
	}
}

func TestLeavingARoom(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "Leaving")
	other := createRoom(t, alice, "Staying")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 3, nil)})
	first := ss(t, r, alice, "", 0, body)
	if first.Lists["all"].Count != 2 {
		t.Fatalf("count: %+v", first.Lists)
	}
	if _, err := alice.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	resp := ss(t, r, alice, first.Pos, 5000, body)
	rl := resp.Rooms[room.String()]
	if rl == nil || len(rl.Timeline) != 1 || rl.Timeline[0].Content["membership"] != "leave" {
		t.Fatalf("left room should carry the leave: %+v", rl)
	}
	testrig.SendText(t, alice, other, "still here")
	resp = ss(t, r, alice, resp.Pos, 5000, body)
	if resp.Lists["all"].Count != 1 || resp.Rooms[room.String()] != nil {
		t.Fatalf("left room should be gone: %+v %v", resp.Lists, keys(resp.Rooms))
	}
}

func TestRoomSubscriptionRequiredStateAndExpansion(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := createRoom(t, alice, "")
	for _, u := range []*mautrix.Client{bob, carol} {
		if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: u.UserID}); err != nil {
			t.Fatal(err)
		}
		testrig.Join(t, room, u)
	}
	testrig.SendText(t, carol, room, "from carol")
	testrig.SendText(t, bob, room, "from bob")
	sub := func(limit int) map[string]any {
		return map[string]any{"conn_id": "subs", "room_subscriptions": map[string]any{room.String(): map[string]any{
			"timeline_limit": limit,
			"required_state": [][]string{{"m.room.member", "$LAZY"}, {"m.room.member", "$ME"}, {"m.room.create", "*"}},
		}}}
	}
	resp := ss(t, r, alice, "", 0, sub(1))
	rr := resp.Rooms[room.String()]
	if rr == nil || len(rr.Timeline) != 1 {
		t.Fatalf("subscription: %+v", rr)
	}
	members := map[string]bool{}
	var creates int
	for _, raw := range rr.RequiredState {
		var ev ssEvent
		_ = json.Unmarshal(raw, &ev)
		if ev.Type == "m.room.member" {
			members[*ev.StateKey] = true
		}
		if ev.Type == "m.room.create" {
			creates++
		}
	}
	if !members[alice.UserID.String()] || !members[bob.UserID.String()] || members[carol.UserID.String()] || creates != 1 {
		t.Fatalf("required_state: lazy bob + me alice + create, got %v creates=%d", members, creates)
	}
	if len(rr.Heroes) != 2 || rr.JoinedCount == nil || *rr.JoinedCount != 3 {
		t.Fatalf("heroes/counts: %+v", rr)
	}
	// A longer timeline_limit resends the room with an expanded timeline.
	resp = ss(t, r, alice, resp.Pos, 0, sub(10))
	rr = resp.Rooms[room.String()]
	if rr == nil || !rr.ExpandedTimeline || len(rr.Timeline) < 3 {
		t.Fatalf("expanded: %+v", rr)
	}
	// Unread counts: bob's and carol's messages notify alice.
	if rr.NotificationCount != 2 {
		t.Fatalf("notification_count: %d", rr.NotificationCount)
	}
}

func TestFilters(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	plain := createRoom(t, alice, "plain")
	enc := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Name: "enc", InitialState: []*event.Event{testrig.Encrypted()}})
	space := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Name: "space", CreationContent: map[string]any{"type": "m.space"}})
	if _, err := alice.SendStateEvent(ctx, space, event.StateSpaceChild, plain.String(), map[string]any{"via": []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	dm := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{IsDirect: true, Invite: []id.UserID{bob.UserID}})
	if err := alice.SetAccountData(ctx, "m.direct", map[string][]string{bob.UserID.String(): {dm.String()}}); err != nil {
		t.Fatal(err)
	}
	body := req(map[string]any{
		"enc":      list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"is_encrypted": true}}),
		"dm":       list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"is_dm": true}}),
		"spaces":   list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"room_types": []string{"m.space"}}}),
		"nospaces": list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"not_room_types": []string{"m.space"}}}),
		"inspace":  list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"spaces": []string{space.String()}}}),
	})
	resp := ss(t, r, alice, "", 0, body)
	want := map[string]int{"enc": 1, "dm": 1, "spaces": 1, "nospaces": 3, "inspace": 1}
	for name, n := range want {
		if resp.Lists[name].Count != n {
			t.Errorf("list %s: count %d, want %d", name, resp.Lists[name].Count, n)
		}
	}
	if rd := resp.Rooms[dm.String()]; rd == nil || !rd.IsDM {
		t.Errorf("dm room: %+v", rd)
	}
	if resp.Rooms[enc.String()] == nil {
		t.Errorf("encrypted room missing")
	}
}

func TestLongPollWakesOnMessage(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	first := ss(t, r, alice, "", 0, body)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = alice.SendText(context.Background(), room, "wake")
	}()
	start := time.Now()
	resp := ss(t, r, alice, first.Pos, 10000, body)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("long-poll did not wake")
	}
	if rr := resp.Rooms[room.String()]; rr == nil || len(rr.Timeline) != 1 || rr.Timeline[0].Content["body"] != "wake" {
		t.Fatalf("woken response: %+v", resp.Rooms)
	}
	// With nothing new the long-poll times out empty.
	start = time.Now()
	resp = ss(t, r, alice, resp.Pos, 300, body)
	if len(resp.Rooms) != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("empty long-poll: %v after %v", keys(resp.Rooms), time.Since(start))
	}
}

func TestExtensions(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "ext")
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	testrig.Join(t, room, bob)
	evID := testrig.SendText(t, bob, room, "read me")
	if err := alice.SetAccountData(ctx, "org.example.global", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetRoomAccountData(ctx, room, "org.example.room", map[string]any{"b": 2}); err != nil {
		t.Fatal(err)
	}
	if err := bob.MarkRead(ctx, room, evID); err != nil {
		t.Fatal(err)
	}
	on := map[string]any{"enabled": true}
	body := func(since string) map[string]any {
		b := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
		b["extensions"] = map[string]any{
			"to_device": map[string]any{"enabled": true, "since": since}, "e2ee": on, "account_data": on, "receipts": on, "typing": on,
		}
		return b
	}
	resp := ss(t, r, alice, "", 0, body(""))
	var ad struct {
		Global []ssEvent            `json:"global"`
		Rooms  map[string][]ssEvent `json:"rooms"`
	}
	_ = json.Unmarshal(resp.Extensions["account_data"], &ad)
	types := map[string]bool{}
	for _, e := range ad.Global {
		types[e.Type] = true
	}
	if !types["org.example.global"] || !types["m.push_rules"] || len(ad.Rooms[room.String()]) != 1 {
		t.Fatalf("account_data: %s", resp.Extensions["account_data"])
	}
	if !strings.Contains(string(resp.Extensions["receipts"]), evID.String()) {
		t.Fatalf("receipts: %s", resp.Extensions["receipts"])
	}
	if !strings.Contains(string(resp.Extensions["e2ee"]), "device_one_time_keys_count") ||
		!strings.Contains(string(resp.Extensions["e2ee"]), "device_unused_fallback_key_types") {
		t.Fatalf("e2ee: %s", resp.Extensions["e2ee"])
	}
	var td struct {
		NextBatch string    `json:"next_batch"`
		Events    []ssEvent `json:"events"`
	}
	_ = json.Unmarshal(resp.Extensions["to_device"], &td)

	// Incremental: to-device, typing, a new receipt.
	if _, err := bob.SendToDevice(ctx, event.Type{Type: "org.example.ping", Class: event.ToDeviceEventType}, &mautrix.ReqSendToDevice{
		Messages: map[id.UserID]map[id.DeviceID]*event.Content{alice.UserID: {alice.DeviceID: {Raw: map[string]any{"n": 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.UserTyping(ctx, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var gotTD, gotTyping bool
	pos := resp.Pos
	since := td.NextBatch
	for i := 0; i < 5 && !(gotTD && gotTyping); i++ {
		resp = ss(t, r, alice, pos, 2000, body(since))
		pos = resp.Pos
		_ = json.Unmarshal(resp.Extensions["to_device"], &td)
		since = td.NextBatch
		for _, e := range td.Events {
			if e.Type == "org.example.ping" && e.Sender == bob.UserID.String() {
				gotTD = true
			}
		}
		if strings.Contains(string(resp.Extensions["typing"]), bob.UserID.String()) {
			gotTyping = true
		}
	}
	if !gotTD || !gotTyping {
		t.Fatalf("to_device %v typing %v", gotTD, gotTyping)
	}
	// Acknowledged to-device messages are not sent again.
	resp = ss(t, r, alice, pos, 0, body(since))
	_ = json.Unmarshal(resp.Extensions["to_device"], &td)
	if len(td.Events) != 0 {
		t.Fatalf("to-device repeated: %+v", td.Events)
	}
}

func jsonReader(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func TestV4PathAndEmptyBody(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	createRoom(t, alice, "R")
	status, raw := r.Do(http.MethodPost, "/_matrix/client/v4/sync?timeout=0", alice.AccessToken, strings.NewReader(`{}`))
	if status != http.StatusOK || !strings.Contains(string(raw), `"pos"`) {
		t.Fatalf("v4: %d %s", status, raw)
	}
	if status, _ := r.Do(http.MethodPost, "/_matrix/client/v4/sync", "", strings.NewReader(`{}`)); status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %d", status)
	}
	if status, _ := r.Do(http.MethodPost, "/_matrix/client/v4/sync", alice.AccessToken, strings.NewReader(`{"lists":`)); status != http.StatusBadRequest {
		t.Fatalf("bad json: %d", status)
	}
}
