package slidingsync_test

// Behaviour matrix-rust-sdk (Element X) and matrix-js-sdk rely on, and the
// request forms of the MSC's current text.

import (
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

const v4Path = "/_matrix/client/v4/sync"

// v4 posts a body to /v4/sync with pos and timeout in the body.
func v4(t *testing.T, r *testrig.Rig, c *mautrix.Client, body map[string]any) (*ssResp, map[string]json.RawMessage) {
	t.Helper()
	status, raw := r.Do(http.MethodPost, v4Path, c.AccessToken, jsonReader(body))
	if status != http.StatusOK {
		t.Fatalf("v4 sync: %d %s", status, raw)
	}
	var out ssResp
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	var rawRooms struct {
		Rooms map[string]json.RawMessage `json:"rooms"`
	}
	_ = json.Unmarshal(raw, &rawRooms)
	return &out, rawRooms.Rooms
}

func invite(t *testing.T, from, to *mautrix.Client, room id.RoomID) {
	t.Helper()
	if _, err := from.InviteUser(context.Background(), room, &mautrix.ReqInviteUser{UserID: to.UserID}); err != nil {
		t.Fatal(err)
	}
}

func stateTypes(rr *ssRoom) map[string]int {
	out := map[string]int{}
	for _, raw := range rr.RequiredState {
		var ev ssEvent
		_ = json.Unmarshal(raw, &ev)
		out[ev.Type]++
	}
	return out
}

// An invite seen as stripped state is sent whole (initial) once joined, so
// the client replaces the stripped state with the real room.
func TestJoinedInviteIsInitial(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "Party")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 5, map[string]any{
		"required_state": [][]string{{"m.room.create", ""}, {"m.room.name", ""}}})})
	first := ss(t, r, bob, "", 0, body)
	invite(t, alice, bob, room)
	resp := ss(t, r, bob, first.Pos, 5000, body)
	if ri := resp.Rooms[room.String()]; ri == nil || !ri.Initial || len(ri.InviteState) == 0 || len(ri.StrippedState) != 0 {
		t.Fatalf("invite on the unstable path has invite_state: %+v", ri)
	}
	testrig.Join(t, room, bob)
	resp = ss(t, r, bob, resp.Pos, 5000, body)
	rj := resp.Rooms[room.String()]
	if rj == nil || !rj.Initial || len(rj.InviteState) != 0 {
		t.Fatalf("joined room should be initial: %+v", rj)
	}
	if st := stateTypes(rj); st["m.room.create"] != 1 || st["m.room.name"] != 1 {
		t.Fatalf("joined room's required_state is whole: %v", st)
	}
	if len(rj.Timeline) != 5 || rj.Timeline[4].Type != "m.room.member" || !rj.Limited || rj.Name != "Party" {
		t.Fatalf("joined room's timeline: %+v", rj)
	}
}

// Raising timeline_limit resends the room with the longer timeline marked
// unstable_expanded_timeline (what matrix-rust-sdk reads) and limited (so
// matrix-js-sdk takes it as a chunk to merge), and does not resend state.
func TestExpandedTimelineOnTheUnstablePath(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	for _, m := range []string{"a", "b", "c"} {
		testrig.SendText(t, alice, room, m)
	}
	body := func(limit int) map[string]any {
		return req(map[string]any{"all": list([][]int{{0, 9}}, limit, nil)})
	}
	first := ss(t, r, alice, "", 0, body(1))
	if rr := first.Rooms[room.String()]; len(rr.Timeline) != 1 || !rr.Limited || rr.Name != "R" {
		t.Fatalf("first: %+v", rr)
	}
	resp := ss(t, r, alice, first.Pos, 0, body(3))
	rr := resp.Rooms[room.String()]
	if rr == nil || !rr.ExpandedTimeline || rr.V4Expanded || !rr.Limited || rr.Initial || len(rr.Timeline) != 3 {
		t.Fatalf("expanded: %+v", rr)
	}
	if rr.Timeline[0].Content["body"] != "a" || rr.Timeline[2].Content["body"] != "c" || *rr.NumLive != 0 {
		t.Fatalf("expanded timeline: %+v", rr.Timeline)
	}
	if len(rr.RequiredState) != 0 || rr.Name != "" {
		t.Fatalf("state already sent is not resent: %+v", rr)
	}
	// Going back to 1 and up to 3 again with no new events: the client has
	// those 3 already (no gap since), so nothing is resent.
	resp = ss(t, r, alice, resp.Pos, 0, body(1))
	resp = ss(t, r, alice, resp.Pos, 0, body(3))
	if rr := resp.Rooms[room.String()]; rr != nil {
		t.Fatalf("nothing new: %+v", rr)
	}
	// timeline_limit 0: the room with a new event, no events, limited.
	testrig.SendText(t, alice, room, "d")
	resp = ss(t, r, alice, resp.Pos, 0, body(0))
	if rr := resp.Rooms[room.String()]; rr == nil || len(rr.Timeline) != 0 || !rr.Limited {
		t.Fatalf("timeline_limit 0: %+v", rr)
	}
}

// /v4/sync speaks the MSC's current text: pos and timeout in the body, a
// single range, is_invited, required_state as {include, exclude,
// lazy_members}, stripped_state, expanded_timeline, membership and lists.
func TestV4RequestAndResponseForms(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "Shared")
	invite(t, alice, bob, room)
	testrig.Join(t, room, bob)
	testrig.SendText(t, bob, room, "hi")
	invited := createRoom(t, alice, "Invitation")
	invite(t, alice, bob, invited)
	rs := map[string]any{
		"include":      []map[string]any{{}},
		"exclude":      []map[string]any{{"type": "m.room.member"}, {"type": "m.room.power_levels", "state_key": ""}},
		"lazy_members": true,
	}
	body := func(pos string, limit int) map[string]any {
		b := map[string]any{"conn_id": "v4", "timeout": 0, "lists": map[string]any{
			"joined":  map[string]any{"range": []int{0, 9}, "timeline_limit": limit, "required_state": rs, "filters": map[string]any{"is_invited": false}},
			"invites": map[string]any{"range": []int{0, 9}, "timeline_limit": 1, "required_state": rs, "filters": map[string]any{"is_invited": true}},
		}}
		if pos != "" {
			b["pos"] = pos
		}
		return b
	}
	resp, raw := v4(t, r, alice, body("", 1))
	if resp.Lists["joined"].Count != 2 || resp.Lists["invites"].Count != 0 {
		t.Fatalf("alice's lists: %+v", resp.Lists)
	}
	rr := resp.Rooms[room.String()]
	if rr == nil || rr.Membership != "join" || len(rr.Lists) != 1 || rr.Lists[0] != "joined" {
		t.Fatalf("membership/lists: %s", raw[room.String()])
	}
	st := stateTypes(rr)
	members := map[string]bool{}
	for _, x := range rr.RequiredState {
		var ev ssEvent
		_ = json.Unmarshal(x, &ev)
		if ev.Type == "m.room.member" {
			members[*ev.StateKey] = true
		}
	}
	// Everything but excluded members and power levels; bob's membership
	// comes lazily (his message is the timeline), not excluded.
	if st["m.room.create"] != 1 || st["m.room.name"] != 1 || st["m.room.power_levels"] != 0 || len(members) != 1 || !members[bob.UserID.String()] {
		t.Fatalf("required_state: %v members %v", st, members)
	}
	// Bob's invite on /v4 is stripped_state with membership "invite".
	bresp, braw := v4(t, r, bob, body("", 1))
	ri := bresp.Rooms[invited.String()]
	if ri == nil || len(ri.StrippedState) == 0 || len(ri.InviteState) != 0 || ri.Membership != "invite" || bresp.Lists["invites"].Count != 1 {
		t.Fatalf("v4 invite: %s", braw[invited.String()])
	}
	// pos in the body continues the connection; an expansion says
	// expanded_timeline.
	testrig.SendText(t, bob, room, "more")
	resp, raw = v4(t, r, alice, body(resp.Pos, 3))
	rr = resp.Rooms[room.String()]
	if rr == nil || !rr.V4Expanded || strings.Contains(string(raw[room.String()]), "unstable_expanded_timeline") || len(rr.Timeline) != 3 {
		t.Fatalf("v4 expansion: %s", raw[room.String()])
	}
	// A pos in the body that the server never issued.
	b := body("12345", 1)
	if status, out := r.Do(http.MethodPost, v4Path, alice.AccessToken, jsonReader(b)); status != http.StatusBadRequest || !strings.Contains(string(out), "M_UNKNOWN_POS") {
		t.Fatalf("unknown body pos: %d %s", status, out)
	}
}

// Bad requests get M_INVALID_PARAM or M_BAD_JSON and change nothing.
func TestBadRequests(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	lists := map[string]any{}
	for i := 0; i <= 100; i++ {
		lists["l"+itoa(i)] = list([][]int{{0, 1}}, 1, nil)
	}
	subs := map[string]any{}
	for i := 0; i <= 100; i++ {
		subs["!r"+itoa(i)+":axon.test"] = map[string]any{"timeline_limit": 1}
	}
	for name, tc := range map[string]struct {
		path, body, code string
	}{
		"too many lists":         {ssPath, string(mustJSON(map[string]any{"lists": lists})), "M_INVALID_PARAM"},
		"too many subscriptions": {ssPath, string(mustJSON(map[string]any{"room_subscriptions": subs})), "M_INVALID_PARAM"},
		"negative timeout query": {ssPath + "?timeout=-1", `{}`, "M_INVALID_PARAM"},
		"negative timeout body":  {v4Path, `{"timeout": -5}`, "M_INVALID_PARAM"},
		"odd required_state":     {ssPath, `{"lists": {"a": {"ranges": [[0,1]], "required_state": [["m.room.name"]]}}}`, "M_BAD_JSON"},
		"required_state number":  {ssPath, `{"lists": {"a": {"ranges": [[0,1]], "required_state": 7}}}`, "M_BAD_JSON"},
		"unknown set_presence":   {ssPath + "?set_presence=dancing", `{}`, "M_INVALID_PARAM"},
		"body set_presence":      {v4Path, `{"set_presence": "dancing"}`, "M_INVALID_PARAM"},
	} {
		status, raw := r.Do(http.MethodPost, tc.path, alice.AccessToken, strings.NewReader(tc.body))
		if status != http.StatusBadRequest || !strings.Contains(string(raw), tc.code) {
			t.Errorf("%s: %d %s", name, status, raw)
		}
	}
}

// A request on a connection ends the long-poll in progress on it at once
// (the client gave up on it), rather than waiting for its timeout.
func TestNewRequestEndsLongPoll(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	first := ss(t, r, alice, "", 0, body)
	done := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		ssRaw(t, r, alice, first.Pos, 20000, body)
		done <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	second := ss(t, r, alice, first.Pos, 0, body)
	select {
	case d := <-done:
		if d > 5*time.Second {
			t.Fatalf("the first long-poll took %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first long-poll is still waiting")
	}
	if time.Since(start) > 5*time.Second || second.Pos == "" {
		t.Fatalf("second request: %+v after %v", second, time.Since(start))
	}
}

// Lazy members include the targets of membership events in the timeline.
func TestLazyMembersIncludeMembershipTargets(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "R")
	sub := map[string]any{"conn_id": "lazy", "room_subscriptions": map[string]any{room.String(): map[string]any{
		"timeline_limit": 1, "required_state": [][]string{{"m.room.member", "$LAZY"}}}}}
	first := ss(t, r, alice, "", 0, sub)
	invite(t, alice, bob, room)
	resp := ss(t, r, alice, first.Pos, 5000, sub)
	rr := resp.Rooms[room.String()]
	if rr == nil || len(rr.Timeline) != 1 {
		t.Fatalf("invite in timeline: %+v", rr)
	}
	found := false
	for _, x := range rr.RequiredState {
		var ev ssEvent
		_ = json.Unmarshal(x, &ev)
		if ev.Type == "m.room.member" && *ev.StateKey == bob.UserID.String() {
			found = true
		}
	}
	if !found || rr.InvitedCount == nil || *rr.InvitedCount != 1 {
		t.Fatalf("bob's membership as a lazy member / invited_count: %+v", rr)
	}
}

// required_state that shrinks is not resent; growing it again sends the
// state it now covers.
func TestRequiredStateShrinksAndGrows(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	sub := func(rs [][]string) map[string]any {
		return map[string]any{"conn_id": "rs", "room_subscriptions": map[string]any{room.String(): map[string]any{
			"timeline_limit": 1, "required_state": rs}}}
	}
	all := [][]string{{"*", "*"}}
	name := [][]string{{"m.room.name", ""}}
	resp := ss(t, r, alice, "", 0, sub(all))
	if st := stateTypes(resp.Rooms[room.String()]); st["m.room.create"] != 1 || st["m.room.member"] != 1 {
		t.Fatalf("all state: %v", st)
	}
	resp = ss(t, r, alice, resp.Pos, 0, sub(name))
	if rr := resp.Rooms[room.String()]; rr != nil {
		t.Fatalf("shrinking resends nothing: %+v", rr)
	}
	resp = ss(t, r, alice, resp.Pos, 0, sub(append(name, []string{"m.room.create", ""})))
	rr := resp.Rooms[room.String()]
	if rr == nil || rr.Initial {
		t.Fatalf("growing resends the room: %+v", rr)
	}
	if st := stateTypes(rr); st["m.room.create"] != 1 || st["m.room.name"] != 1 || st["m.room.member"] != 0 {
		t.Fatalf("grown state: %v", st)
	}
}

// Members joining and leaving shared rooms reach the e2ee extension's
// device_lists without the server reading every event since the last
// response; a user who shares no room any more is in left.
func TestE2EEDeviceListMembership(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 0}}, 1, nil)})
	body["extensions"] = map[string]any{"e2ee": map[string]any{"enabled": true}}
	lists := func(resp *ssResp) (changed, left []string) {
		var e struct {
			DeviceLists struct {
				Changed []string `json:"changed"`
				Left    []string `json:"left"`
			} `json:"device_lists"`
		}
		_ = json.Unmarshal(resp.Extensions["e2ee"], &e)
		return e.DeviceLists.Changed, e.DeviceLists.Left
	}
	resp := ss(t, r, alice, "", 0, body)
	// Activity in another room keeps the list window ([0,0]) off the
	// shared room: device lists cover all rooms, not just the window.
	other := createRoom(t, alice, "other")
	invite(t, alice, bob, room)
	testrig.Join(t, room, bob)
	testrig.SendText(t, alice, other, "bump")
	resp = ss(t, r, alice, resp.Pos, 0, body)
	if changed, _ := lists(resp); len(changed) != 1 || changed[0] != bob.UserID.String() {
		t.Fatalf("changed after bob joined: %s", resp.Extensions["e2ee"])
	}
	if _, err := bob.LeaveRoom(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	resp = ss(t, r, alice, resp.Pos, 0, body)
	if _, left := lists(resp); len(left) != 1 || left[0] != bob.UserID.String() {
		t.Fatalf("left after bob left: %s", resp.Extensions["e2ee"])
	}
	resp = ss(t, r, alice, resp.Pos, 0, body)
	if changed, left := lists(resp); len(changed)+len(left) != 0 {
		t.Fatalf("nothing new: %s", resp.Extensions["e2ee"])
	}
}

// Connections live in memory: after a restart the client's pos is unknown
// (M_UNKNOWN_POS) and a request without one starts over with every room
// initial. Clients (matrix-js-sdk, matrix-rust-sdk) start over on it.
func TestRestartForgetsConnections(t *testing.T) {
	dir := t.TempDir()
	r := testrig.StartIn(t, dir)
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	first := ss(t, r, alice, "", 0, body)
	r.Stop()
	r2 := testrig.StartIn(t, dir)
	status, raw := ssRaw(t, r2, alice, first.Pos, 0, body)
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "M_UNKNOWN_POS") {
		t.Fatalf("old pos after restart: %d %s", status, raw)
	}
	resp := ss(t, r2, alice, "", 0, body)
	if rr := resp.Rooms[room.String()]; rr == nil || !rr.Initial || rr.Name != "R" {
		t.Fatalf("fresh connection: %+v", rr)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// Lists are ordered by the newest event of any type, so a change that does
// not bump (a topic) still brings a room into the window; its bump_stamp
// stays that of its last message.
func TestListsFollowAnyActivityBumpStampFollowsMessages(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	a := createRoom(t, alice, "A")
	b := createRoom(t, alice, "B")
	testrig.SendText(t, alice, b, "newest")
	body := req(map[string]any{"top": list([][]int{{0, 0}}, 1, nil)})
	resp := ss(t, r, alice, "", 0, body)
	if len(resp.Rooms) != 1 || resp.Rooms[b.String()] == nil {
		t.Fatalf("window holds B: %v", keys(resp.Rooms))
	}
	bBump := resp.Rooms[b.String()].BumpStamp
	if _, err := alice.SendStateEvent(context.Background(), a, event.StateTopic, "", map[string]any{"topic": "t"}); err != nil {
		t.Fatal(err)
	}
	resp = ss(t, r, alice, resp.Pos, 5000, body)
	ra := resp.Rooms[a.String()]
	if ra == nil || !ra.Initial || len(ra.Timeline) != 1 || ra.Timeline[0].Type != "m.room.topic" || *ra.NumLive != 1 {
		t.Fatalf("the topic change brings A into the window: %v %+v", keys(resp.Rooms), ra)
	}
	if ra.BumpStamp >= bBump {
		t.Fatalf("A's bump_stamp %d is its creation, below B's message %d", ra.BumpStamp, bBump)
	}
}

// A device has a bounded number of connections: opening one more forgets
// its least recently used one, whose pos becomes unknown; the others stay.
func TestConnectionsPerDeviceAreBounded(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	createRoom(t, alice, "R")
	conn := func(i int) map[string]any {
		return map[string]any{"conn_id": "c" + itoa(i), "lists": map[string]any{"all": list([][]int{{0, 0}}, 1, nil)}}
	}
	pos := make([]string, 11)
	for i := 0; i < 10; i++ {
		pos[i] = ss(t, r, alice, "", 0, conn(i)).Pos
		time.Sleep(2 * time.Millisecond) // distinct last-use times
	}
	pos[10] = ss(t, r, alice, "", 0, conn(10)).Pos
	if status, raw := ssRaw(t, r, alice, pos[0], 0, conn(0)); status != http.StatusBadRequest || !strings.Contains(string(raw), "M_UNKNOWN_POS") {
		t.Fatalf("the oldest connection should be gone: %d %s", status, raw)
	}
	for i := 1; i <= 10; i++ {
		ss(t, r, alice, pos[i], 0, conn(i))
	}
}

// A room new to the connection gets the receipts on the events it is sent
// and the user's own, not every member's; m.direct marks is_dm.
func TestInitialRoomReceiptsAndDM(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := createRoom(t, alice, "R")
	for _, u := range []*mautrix.Client{bob, carol} {
		invite(t, alice, u, room)
		testrig.Join(t, room, u)
	}
	old := testrig.SendText(t, alice, room, "old")
	if err := carol.MarkRead(ctx, room, old); err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRead(ctx, room, old); err != nil {
		t.Fatal(err)
	}
	latest := testrig.SendText(t, alice, room, "latest")
	if err := bob.MarkRead(ctx, room, latest); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAccountData(ctx, "m.direct", map[string][]string{bob.UserID.String(): {room.String()}}); err != nil {
		t.Fatal(err)
	}
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	body["extensions"] = map[string]any{"receipts": map[string]any{"enabled": true}}
	resp := ss(t, r, alice, "", 0, body)
	if rr := resp.Rooms[room.String()]; rr == nil || !rr.IsDM {
		t.Fatalf("is_dm from m.direct: %+v", rr)
	}
	var ext struct {
		Rooms map[string]struct {
			Content map[string]map[string]map[string]any `json:"content"`
		} `json:"rooms"`
	}
	_ = json.Unmarshal(resp.Extensions["receipts"], &ext)
	c := ext.Rooms[room.String()].Content
	if c[latest.String()]["m.read"][bob.UserID.String()] == nil || c[old.String()]["m.read"][alice.UserID.String()] == nil {
		t.Fatalf("bob's receipt on the timeline event and alice's own: %s", resp.Extensions["receipts"])
	}
	if c[old.String()]["m.read"][carol.UserID.String()] != nil {
		t.Fatalf("carol's receipt on an event not sent: %s", resp.Extensions["receipts"])
	}
}

// Sliding sync marks the user online like /v3/sync, unless set_presence is
// offline.
func TestSlidingSyncSetsPresence(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	presence := func(c *mautrix.Client) string {
		status, raw := r.Do(http.MethodGet, "/_matrix/client/v3/presence/"+c.UserID.String()+"/status", c.AccessToken, nil)
		if status != http.StatusOK {
			t.Fatalf("presence: %d %s", status, raw)
		}
		var p struct {
			Presence string `json:"presence"`
		}
		_ = json.Unmarshal(raw, &p)
		return p.Presence
	}
	if status, raw := r.Do(http.MethodPost, ssPath+"?set_presence=offline", bob.AccessToken, strings.NewReader(`{}`)); status != http.StatusOK {
		t.Fatalf("offline sync: %d %s", status, raw)
	}
	if p := presence(bob); p == "online" {
		t.Fatalf("set_presence=offline left bob %q", p)
	}
	ss(t, r, alice, "", 0, map[string]any{})
	if p := presence(alice); p != "online" {
		t.Fatalf("alice after a sliding sync: %q", p)
	}
}

// A room the user was kicked from stays in the lists, so a fresh
// connection (a client that was away) learns of the kick.
func TestKickedRoomStaysListed(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "Strict")
	invite(t, alice, bob, room)
	testrig.Join(t, room, bob)
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	resp := ss(t, r, bob, "", 0, body)
	rr := resp.Rooms[room.String()]
	if resp.Lists["all"].Count != 1 || rr == nil || !rr.Initial || len(rr.Timeline) != 1 || rr.Timeline[0].Content["membership"] != "leave" {
		t.Fatalf("kicked room on a new connection: %+v %+v", resp.Lists, rr)
	}
	// Still counted later, and not resent for activity after the kick.
	testrig.SendText(t, alice, room, "after the kick")
	resp = ss(t, r, bob, resp.Pos, 0, body)
	if resp.Lists["all"].Count != 1 || resp.Rooms[room.String()] != nil {
		t.Fatalf("later: %+v %v", resp.Lists, keys(resp.Rooms))
	}
}

// A removed avatar comes as "avatar": null (matrix-rust-sdk clears it), a
// set one as its URL.
func TestAvatarSetAndRemoved(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room := createRoom(t, alice, "R")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	resp := ss(t, r, alice, "", 0, body)
	avatar := func(resp *ssResp) string {
		t.Helper()
		status, raw := ssRaw(t, r, alice, resp.Pos, 5000, body)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, raw)
		}
		var out struct {
			Pos   string
			Rooms map[string]map[string]json.RawMessage
		}
		_ = json.Unmarshal(raw, &out)
		resp.Pos = out.Pos
		return string(out.Rooms[room.String()]["avatar"])
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateRoomAvatar, "", map[string]any{"url": "mxc://axon.test/pic"}); err != nil {
		t.Fatal(err)
	}
	if a := avatar(resp); a != `"mxc://axon.test/pic"` {
		t.Fatalf("set avatar: %s", a)
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateRoomAvatar, "", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if a := avatar(resp); a != "null" {
		t.Fatalf("removed avatar: %q", a)
	}
}

// A room the user left is shown as it was when they left: a later rename
// and later members do not reach them, even with all state asked for.
func TestLeftRoomShowsStateAtLeave(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := createRoom(t, alice, "Before")
	invite(t, alice, bob, room)
	testrig.Join(t, room, bob)
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, room, event.StateRoomName, "", map[string]any{"name": "After"}); err != nil {
		t.Fatal(err)
	}
	invite(t, alice, carol, room)
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 0, map[string]any{"required_state": [][]string{{"*", "*"}}})})
	resp := ss(t, r, bob, "", 0, body)
	rr := resp.Rooms[room.String()]
	if rr == nil || rr.Name != "Before" || rr.JoinedCount != nil {
		t.Fatalf("left room: %+v", rr)
	}
	for _, x := range rr.RequiredState {
		var ev ssEvent
		_ = json.Unmarshal(x, &ev)
		if (ev.Type == "m.room.name" && ev.Content["name"] != "Before") || (ev.Type == "m.room.member" && *ev.StateKey == carol.UserID.String()) {
			t.Fatalf("state after the kick leaked: %s", x)
		}
	}
}

// An m.direct change resends the rooms whose DM state changed, with is_dm
// true or false (the MSC: it must be included when it changes).
func TestDMChangeResendsIsDM(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "R")
	other := createRoom(t, alice, "other")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	first := ss(t, r, alice, "", 0, body)
	if strings.Contains(string(mustJSON(first.Rooms[room.String()])), `"is_dm":true`) {
		t.Fatal("not a DM yet")
	}
	isDM := func(pos string) (string, string) {
		t.Helper()
		status, raw := ssRaw(t, r, alice, pos, 5000, body)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, raw)
		}
		var out struct {
			Pos   string
			Rooms map[string]map[string]json.RawMessage
		}
		_ = json.Unmarshal(raw, &out)
		if _, ok := out.Rooms[other.String()]; ok {
			t.Fatalf("the other room did not change: %s", raw)
		}
		return out.Pos, string(out.Rooms[room.String()]["is_dm"])
	}
	if err := alice.SetAccountData(ctx, "m.direct", map[string][]string{bob.UserID.String(): {room.String()}}); err != nil {
		t.Fatal(err)
	}
	pos, dm := isDM(first.Pos)
	if dm != "true" {
		t.Fatalf("is_dm after m.direct: %q", dm)
	}
	if err := alice.SetAccountData(ctx, "m.direct", map[string][]string{}); err != nil {
		t.Fatal(err)
	}
	if _, dm = isDM(pos); dm != "false" {
		t.Fatalf("is_dm after removal: %q", dm)
	}
}

// The spaces filter reads only spaces the user is joined to (each list its
// own): a space the user is not in matches nothing.
func TestSpacesFilterOnlyJoinedSpaces(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	mkSpace := func(c *mautrix.Client) id.RoomID {
		resp, err := c.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", CreationContent: map[string]any{"type": "m.space"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.RoomID
	}
	child := func(c *mautrix.Client, space, room id.RoomID) {
		if _, err := c.SendStateEvent(ctx, space, event.StateSpaceChild, room.String(), map[string]any{"via": []string{"axon.test"}}); err != nil {
			t.Fatal(err)
		}
	}
	mine := mkSpace(alice)
	a := createRoom(t, alice, "in mine")
	child(alice, mine, a)
	// Bob's private space lists a room alice is in; alice is not in the space.
	shared := createRoom(t, bob, "shared")
	invite(t, bob, alice, shared)
	testrig.Join(t, shared, alice)
	theirs := mkSpace(bob)
	child(bob, theirs, shared)
	body := req(map[string]any{
		"mine":   list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"spaces": []string{mine.String()}}}),
		"theirs": list([][]int{{0, 9}}, 0, map[string]any{"filters": map[string]any{"spaces": []string{theirs.String()}}}),
	})
	resp := ss(t, r, alice, "", 0, body)
	if resp.Lists["mine"].Count != 1 || resp.Lists["theirs"].Count != 0 {
		t.Fatalf("counts: %+v", resp.Lists)
	}
}

// A room the user never joined (an invite they rejected, or one withdrawn)
// shows only their own membership event: nothing of the room's state or
// history reaches them.
func TestNeverJoinedRoomsShowOnlyTheMembership(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	rejected := createRoom(t, alice, "Secret name")
	testrig.SendText(t, alice, rejected, "secret history")
	invite(t, alice, bob, rejected)
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 5, map[string]any{"required_state": [][]string{{"*", "*"}}})})
	first := ss(t, r, bob, "", 0, body)
	if ri := first.Rooms[rejected.String()]; ri == nil || len(ri.InviteState) == 0 {
		t.Fatalf("invite: %+v", ri)
	}
	if _, err := bob.LeaveRoom(ctx, rejected); err != nil {
		t.Fatal(err)
	}
	onlyLeave := func(rr *ssRoom, what string) {
		t.Helper()
		if rr == nil || len(rr.Timeline) != 1 || len(rr.RequiredState) != 1 || rr.Name != "" || rr.JoinedCount != nil || len(rr.Heroes) != 0 {
			t.Fatalf("%s: %+v", what, rr)
		}
		var st ssEvent
		_ = json.Unmarshal(rr.RequiredState[0], &st)
		if rr.Timeline[0].Content["membership"] != "leave" || st.Type != "m.room.member" || *st.StateKey != bob.UserID.String() {
			t.Fatalf("%s: %+v %s", what, rr.Timeline, rr.RequiredState[0])
		}
	}
	resp := ss(t, r, bob, first.Pos, 5000, body)
	onlyLeave(resp.Rooms[rejected.String()], "rejected invite")
	if !resp.Rooms[rejected.String()].Initial {
		t.Fatal("the rejected invite replaces the stripped state (initial)")
	}
	// An invite alice withdraws stays listed for a new connection, as a
	// removal, again with nothing but the membership.
	withdrawn := createRoom(t, alice, "Other secret")
	invite(t, alice, bob, withdrawn)
	if _, err := alice.KickUser(ctx, withdrawn, &mautrix.ReqKickUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	fresh := ss(t, r, bob, "", 0, map[string]any{"conn_id": "fresh", "lists": body["lists"]})
	onlyLeave(fresh.Rooms[withdrawn.String()], "withdrawn invite")
	if fresh.Rooms[rejected.String()] != nil {
		t.Fatalf("a room the user left themselves is not listed on a new connection: %v", keys(fresh.Rooms))
	}
}

// Typing and receipts of a room reach its members only, not a user who is
// just invited.
func TestTypingAndReceiptsNotForInvites(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := createRoom(t, alice, "R")
	ev := testrig.SendText(t, alice, room, "hi")
	if err := alice.MarkRead(ctx, room, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UserTyping(ctx, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	invite(t, alice, bob, room)
	on := map[string]any{"enabled": true}
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	body["extensions"] = map[string]any{"typing": on, "receipts": on}
	resp := ss(t, r, bob, "", 0, body)
	if resp.Rooms[room.String()] == nil {
		t.Fatal("the invite is listed")
	}
	if strings.Contains(string(resp.Extensions["typing"]), room.String()) || strings.Contains(string(resp.Extensions["receipts"]), room.String()) {
		t.Fatalf("typing %s receipts %s", resp.Extensions["typing"], resp.Extensions["receipts"])
	}
	// Once joined they arrive.
	testrig.Join(t, room, bob)
	resp = ss(t, r, bob, resp.Pos, 5000, body)
	if !strings.Contains(string(resp.Extensions["typing"]), alice.UserID.String()) {
		t.Fatalf("typing after joining: %s", resp.Extensions["typing"])
	}
}

// A ban from a room the user never had is not listed (the MSC); a ban
// after joining is, like a kick.
func TestBanFromNeverJoinedRoomNotListed(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	body := req(map[string]any{"all": list([][]int{{0, 9}}, 1, nil)})
	first := ss(t, r, bob, "", 0, body)
	preemptive := createRoom(t, alice, "Keep out")
	if _, err := alice.BanUser(ctx, preemptive, &mautrix.ReqBanUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	joined := createRoom(t, alice, "Was in")
	invite(t, alice, bob, joined)
	testrig.Join(t, joined, bob)
	if _, err := alice.BanUser(ctx, joined, &mautrix.ReqBanUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	// Incrementally on the open connection, and on a fresh one.
	for _, resp := range []*ssResp{
		ss(t, r, bob, first.Pos, 5000, body),
		ss(t, r, bob, "", 0, map[string]any{"conn_id": "fresh", "lists": body["lists"]}),
	} {
		if resp.Rooms[preemptive.String()] != nil || resp.Lists["all"].Count != 1 {
			t.Fatalf("pre-emptive ban listed: count %d, rooms %v", resp.Lists["all"].Count, keys(resp.Rooms))
		}
	}
	fresh := ss(t, r, bob, "", 0, map[string]any{"conn_id": "fresh2", "lists": body["lists"]})
	if rr := fresh.Rooms[joined.String()]; rr == nil || len(rr.Timeline) != 1 || rr.Timeline[0].Content["membership"] != "ban" {
		t.Fatalf("ban after joining not listed: %v", keys(fresh.Rooms))
	}
}
