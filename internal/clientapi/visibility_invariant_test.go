package clientapi_test

// The history visibility invariant, tested once across every read path:
// what a user may see of a room is bounded by their membership history.
// Nothing that happened after they left (or were kicked or banned) comes
// back from any endpoint, a user who never joined reads no state at all,
// and which messages they see follows history_visibility as the spec's
// module defines it (content/client-server-api/modules/history_visibility.md).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// Markers: unique words in the room, each sent at one step of the story.
const (
	mkMsgBefore  = "zebramsgb"   // message before the viewer was invited or banned
	mkMsgInvited = "zebramsgi"   // message while the viewer was invited
	mkMsgDuring  = "zebramsgd"   // message while the viewer was joined (or simply out)
	mkRoot       = "zebraroot"   // thread root, sent with mkMsgDuring
	mkReplyD     = "zebrareplyd" // thread reply, sent with mkMsgDuring
	mkName1      = "zebraname1"  // the room's first name
	// After the viewer's departure (or, for those who never joined, at
	// the end): none of these may reach anyone but a current member.
	mkMsgAfter   = "zebramsga"
	mkReplyAfter = "zebrareplya"
	mkName2      = "zebraname2"
	mkTopic2     = "zebratopica"
	mkCarol      = "zebracarol" // a user who joins after the departure
	mkNick2      = "zebranicka" // the owner's display name set after the departure
)

var afterMarkers = []string{mkMsgAfter, mkReplyAfter, mkName2, mkTopic2, mkCarol, mkNick2}

// viewerHistory is one membership history of the viewer in the room.
type viewerHistory struct {
	name string
	// invited: the viewer was invited (mkMsgInvited is sent while they are).
	invited bool
	// joined: the viewer was joined while mkMsgDuring was sent.
	joined bool
	// stays: still joined when the room changes afterwards.
	stays bool
	// forgot: left and forgot the room (as if they had never joined).
	forgot bool
	// departure is the viewer's membership after the story ("" none).
	departure string
}

var viewerHistories = []viewerHistory{
	{name: "never_joined"},
	{name: "invited_then_rejected", invited: true, departure: "leave"},
	{name: "banned_before_joining", departure: "ban"},
	{name: "joined_then_left", invited: true, joined: true, departure: "leave"},
	{name: "joined_then_kicked", invited: true, joined: true, departure: "leave"},
	{name: "joined_then_banned", invited: true, joined: true, departure: "ban"},
	{name: "left_and_forgot", invited: true, joined: true, forgot: true, departure: "leave"},
	{name: "still_joined", invited: true, joined: true, stays: true, departure: "join"},
}

// visibleMessages lists the message markers the spec lets the viewer see
// under one history visibility.
func (h viewerHistory) visibleMessages(vis string) []string {
	if vis == "world_readable" {
		out := []string{mkMsgBefore, mkMsgDuring, mkRoot, mkReplyD, mkMsgAfter, mkReplyAfter}
		if h.invited {
			out = append(out, mkMsgInvited)
		}
		return out
	}
	if h.forgot {
		return nil
	}
	var out []string
	// Rule 3: shared history is open to anyone who joined at any point
	// after it was sent.
	if vis == "shared" && h.joined {
		out = append(out, mkMsgBefore, mkMsgInvited)
	}
	// Rule 4: invited history is open from the invite onwards.
	if vis == "invited" && h.invited {
		out = append(out, mkMsgInvited)
	}
	if h.joined {
		out = append(out, mkMsgDuring, mkRoot, mkReplyD)
	}
	if h.stays {
		out = append(out, mkMsgAfter, mkReplyAfter)
	}
	return out
}

// live reports whether the viewer may read the room as it is now.
func (h viewerHistory) live(vis string) bool { return h.stays || vis == "world_readable" }

// readsState reports whether the viewer may read any of the room's state:
// now, or as it was when they left.
func (h viewerHistory) readsState(vis string) bool { return h.live(vis) || (h.joined && !h.forgot) }

// story is one room, the viewer's history in it, and the IDs of its events.
type story struct {
	roomID                                      id.RoomID
	before, invited, during, root, replyD, msgA id.EventID
	replyA                                      id.EventID
	atBeforeCarol                               string // a /members ?at= token before carol joined
	atBeforeRoom                                string // one from before the room existed (what a fresh room's prev_batch is)
	carol                                       id.UserID
}

func TestHistoryVisibilityInvariant(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	n := 0
	for _, vis := range []string{"joined", "shared", "invited", "world_readable"} {
		for _, h := range viewerHistories {
			n++
			viewer := r.CreateUser(fmt.Sprintf("viewer%d", n))
			carol := r.CreateUser(fmt.Sprintf("%s%d", mkCarol, n))
			st := tellStory(t, r, alice, viewer, carol, vis, h)
			t.Run(vis+"/"+h.name, func(t *testing.T) {
				checkInvariant(t, r, viewer, alice, st, vis, h)
			})
		}
	}
}

// tellStory builds a room of alice's with the given history visibility in
// which the viewer lives through h, then changes the room again.
func tellStory(t *testing.T, r *testrig.Rig, alice, viewer, carol *mautrix.Client, vis string, h viewerHistory) story {
	t.Helper()
	ctx := context.Background()
	atBeforeRoom := initialSync(t, alice)
	preset := "private_chat"
	if vis == "world_readable" {
		preset = "public_chat"
	}
	st := story{roomID: testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: preset, Name: mkName1,
		InitialState: []*event.Event{{Type: event.StateHistoryVisibility, Content: event.Content{Raw: map[string]any{"history_visibility": vis}}}}})}
	roomID := st.roomID
	st.carol, st.atBeforeRoom = carol.UserID, atBeforeRoom
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	st.before = testrig.SendText(t, alice, roomID, mkMsgBefore)
	if h.invited {
		_, err := alice.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: viewer.UserID})
		must(err, "invite")
		st.invited = testrig.SendText(t, alice, roomID, mkMsgInvited)
	}
	if h.joined {
		testrig.Join(t, roomID, viewer)
	} else if h.invited {
		_, err := viewer.LeaveRoom(ctx, roomID)
		must(err, "reject")
	}
	if h.departure == "ban" && !h.joined {
		_, err := alice.BanUser(ctx, roomID, &mautrix.ReqBanUser{UserID: viewer.UserID, Reason: "pre-emptive"})
		must(err, "pre-emptive ban")
	}
	st.during = testrig.SendText(t, alice, roomID, mkMsgDuring)
	st.root = testrig.SendText(t, alice, roomID, mkRoot)
	resp, err := alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{"msgtype": "m.text", "body": mkReplyD,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": st.root}})
	must(err, "thread reply")
	st.replyD = resp.EventID
	if h.joined && !h.stays {
		switch {
		case h.name == "joined_then_kicked":
			_, err = alice.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: viewer.UserID})
		case h.departure == "ban":
			_, err = alice.BanUser(ctx, roomID, &mautrix.ReqBanUser{UserID: viewer.UserID})
		default:
			_, err = viewer.LeaveRoom(ctx, roomID)
		}
		must(err, "departure")
	}
	if h.forgot {
		_, err = viewer.ForgetRoom(ctx, roomID)
		must(err, "forget")
	}

	// The room changes after the viewer's departure.
	_, body := apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(roomID.String())+"/messages?dir=b&limit=1", nil)
	st.atBeforeCarol, _ = body["start"].(string)
	_, err = alice.SendStateEvent(ctx, roomID, event.StateRoomName, "", map[string]any{"name": mkName2})
	must(err, "name")
	_, err = alice.SendStateEvent(ctx, roomID, event.StateTopic, "", map[string]any{"topic": mkTopic2})
	must(err, "topic")
	_, err = alice.SendStateEvent(ctx, roomID, event.StateMember, alice.UserID.String(), map[string]any{"membership": "join", "displayname": mkNick2})
	must(err, "display name")
	if vis != "world_readable" {
		_, err = alice.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: carol.UserID})
		must(err, "invite carol")
	}
	testrig.Join(t, roomID, carol)
	st.msgA = testrig.SendText(t, alice, roomID, mkMsgAfter)
	resp, err = alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{"msgtype": "m.text", "body": mkReplyAfter,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": st.root}})
	must(err, "thread reply after")
	st.replyA = resp.EventID
	return st
}

// readPath is one read endpoint as the viewer calls it.
type readPath struct {
	name, method, path string
	body               any
}

func (st story) readPaths(viewer *mautrix.Client) []readPath {
	room := "/rooms/" + esc(st.roomID.String())
	lazy := url.QueryEscape(`{"lazy_load_members":true}`)
	paths := []readPath{
		{"state", http.MethodGet, v3 + room + "/state", nil},
		{"state_name", http.MethodGet, v3 + room + "/state/m.room.name/", nil},
		{"state_topic", http.MethodGet, v3 + room + "/state/m.room.topic/", nil},
		{"state_carol", http.MethodGet, v3 + room + "/state/m.room.member/" + esc(st.carol.String()), nil},
		{"members", http.MethodGet, v3 + room + "/members", nil},
		{"members_at", http.MethodGet, v3 + room + "/members?at=" + url.QueryEscape(st.atBeforeCarol), nil},
		{"members_at_origin", http.MethodGet, v3 + room + "/members?at=" + url.QueryEscape(st.atBeforeRoom), nil},
		{"joined_members", http.MethodGet, v3 + room + "/joined_members", nil},
		{"messages_b", http.MethodGet, v3 + room + "/messages?dir=b&limit=100", nil},
		{"messages_f", http.MethodGet, v3 + room + "/messages?dir=f&limit=100", nil},
		{"messages_lazy", http.MethodGet, v3 + room + "/messages?dir=b&limit=100&filter=" + lazy, nil},
		{"relations", http.MethodGet, v1 + room + "/relations/" + esc(st.root.String()), nil},
		{"threads", http.MethodGet, v1 + room + "/threads", nil},
		{"notifications", http.MethodGet, v3 + "/notifications", nil},
		{"initial_sync", http.MethodGet, v3 + "/initialSync?archived=true", nil},
		{"room_initial_sync", http.MethodGet, v3 + room + "/initialSync", nil},
		{"sliding_sync", http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", map[string]any{
			"room_subscriptions": map[string]any{st.roomID.String(): map[string]any{"required_state": [][]string{{"*", "*"}}, "timeline_limit": 50}},
			"lists":              map[string]any{"all": map[string]any{"ranges": [][]int{{0, 10}}, "required_state": [][]string{{"*", "*"}}, "timeline_limit": 50}},
		}},
		{"hierarchy", http.MethodGet, v1 + room + "/hierarchy", nil},
		{"room_summary", http.MethodGet, v1 + "/room_summary/" + esc(st.roomID.String()), nil},
	}
	for _, ev := range []struct {
		name string
		id   id.EventID
	}{{"before", st.before}, {"invited", st.invited}, {"during", st.during}, {"root", st.root}, {"reply", st.replyD}, {"after", st.msgA}} {
		if ev.id == "" {
			continue
		}
		paths = append(paths,
			readPath{"event_" + ev.name, http.MethodGet, v3 + room + "/event/" + esc(ev.id.String()), nil},
			readPath{"context_" + ev.name, http.MethodGet, v3 + room + "/context/" + esc(ev.id.String()) + "?limit=4", nil})
	}
	for _, word := range []string{mkMsgBefore, mkMsgInvited, mkMsgDuring, mkRoot, mkReplyD, mkMsgAfter, mkReplyAfter} {
		paths = append(paths, readPath{"search_" + word, http.MethodPost, v3 + "/search", map[string]any{"search_categories": map[string]any{
			"room_events": map[string]any{"search_term": word, "filter": map[string]any{"rooms": []string{st.roomID.String()}}}}}})
	}
	return paths
}

func checkInvariant(t *testing.T, r *testrig.Rig, viewer, alice *mautrix.Client, st story, vis string, h viewerHistory) {
	visible := map[string]bool{}
	for _, m := range h.visibleMessages(vis) {
		visible[m] = true
	}
	// A user who may see nothing of the room learns nothing of it: not
	// even its name.
	seesNothing := len(visible) == 0 && !h.readsState(vis)
	forbidden := []string{mkMsgBefore, mkMsgInvited, mkMsgDuring, mkRoot, mkReplyD}
	if !h.live(vis) {
		forbidden = append(forbidden, afterMarkers...)
	}
	if seesNothing {
		forbidden = append(forbidden, mkName1)
	}
	bodies := map[string]string{}
	for _, p := range st.readPaths(viewer) {
		status, raw := doRaw(t, r, viewer, p)
		bodies[p.name] = raw
		for _, m := range forbidden {
			if !visible[m] && strings.Contains(raw, m) {
				t.Errorf("%s: %d answer shows %q, which the viewer may not see: %s", p.name, status, m, clip(raw))
			}
		}
		checkStatus(t, p.name, status, raw, vis, h)
	}

	// Every message the viewer may see is there to read.
	for _, m := range h.visibleMessages(vis) {
		if !strings.Contains(bodies["messages_b"], m) || !strings.Contains(bodies["messages_f"], m) {
			t.Errorf("/messages lacks %q, which the viewer may see: %s", m, clip(bodies["messages_b"]))
		}
	}
	// State: the room as it is for live readers, as the viewer left it
	// for those who left (with their own departure in it), none otherwise.
	if h.readsState(vis) {
		want := mkName1
		if h.live(vis) {
			want = mkName2
		}
		if !strings.Contains(bodies["state_name"], want) {
			t.Errorf("state_name: want %q: %s", want, bodies["state_name"])
		}
		if got := membershipIn(bodies["members"], viewer.UserID); got != h.departure {
			t.Errorf("members: viewer is %q, want %q: %s", got, h.departure, clip(bodies["members"]))
		}
		if got := membershipIn(bodies["state"], viewer.UserID); got != h.departure {
			t.Errorf("state: viewer is %q, want %q", got, h.departure)
		}
	}
	// ?at= before carol joined never lists carol, whoever asks; before the
	// room existed, it had no members.
	if strings.Contains(bodies["members_at"], mkCarol) {
		t.Errorf("members_at: carol joined after that point: %s", clip(bodies["members_at"]))
	}
	if h.readsState(vis) && !strings.Contains(bodies["members_at_origin"], `"chunk":[]`) {
		t.Errorf("members_at_origin: members before the room existed: %s", clip(bodies["members_at_origin"]))
	}
	// Thread summaries count what the viewer may see of the thread.
	if visible[mkRoot] {
		wantCount := 1
		if visible[mkReplyAfter] {
			wantCount = 2
		}
		if got := threadCount(bodies["event_root"]); got != wantCount {
			t.Errorf("event_root: thread count %d, want %d: %s", got, wantCount, clip(bodies["event_root"]))
		}
	}
	// Search counts only what the viewer may see, in the rooms they are
	// or were in (not those they never entered or forgot).
	for _, word := range []string{mkMsgBefore, mkMsgInvited, mkMsgDuring, mkRoot, mkReplyD, mkMsgAfter, mkReplyAfter} {
		raw := bodies["search_"+word]
		want := 0
		if visible[word] && h.departure != "" && !h.forgot {
			want = 1
		}
		if results, count := searchCounts(raw); count != want || results != want {
			t.Errorf("search %q: %d results, count %d, want %d", word, results, count, want)
		}
	}
}

// checkStatus checks the answers whose status the history decides.
func checkStatus(t *testing.T, name string, status int, raw, vis string, h viewerHistory) {
	t.Helper()
	want := 0
	switch {
	case strings.HasPrefix(name, "state") || strings.HasPrefix(name, "members"):
		if h.readsState(vis) {
			want = http.StatusOK
		} else {
			want = http.StatusForbidden
		}
	case name == "joined_members":
		if h.live(vis) {
			want = http.StatusOK
		} else {
			want = http.StatusForbidden
		}
	case name == "messages_b" || name == "messages_f":
		// Forgetting a room is as if one never joined it.
		if h.live(vis) || (h.departure != "" && !h.forgot) {
			want = http.StatusOK
		} else {
			want = http.StatusForbidden
		}
	}
	if (name == "state_carol" || name == "state_topic") && want == http.StatusOK && !h.live(vis) {
		want = http.StatusNotFound // carol joined, the topic was set, after the viewer left
	}
	if want != 0 && status != want {
		t.Errorf("%s: status %d, want %d: %s", name, status, want, clip(raw))
	}
}

func doRaw(t *testing.T, r *testrig.Rig, c *mautrix.Client, p readPath) (int, string) {
	t.Helper()
	var body *bytes.Reader
	if p.body != nil {
		b, err := json.Marshal(p.body)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	status, raw := r.DoT(t, p.method, p.path, c.AccessToken, body)
	return status, string(raw)
}

// membershipIn finds user's membership in a JSON list of state events
// (a /state answer or a /members chunk).
func membershipIn(raw string, user id.UserID) string {
	var list []map[string]any
	var obj struct {
		Chunk []map[string]any `json:"chunk"`
	}
	if json.Unmarshal([]byte(raw), &list) != nil {
		if json.Unmarshal([]byte(raw), &obj) != nil {
			return ""
		}
		list = obj.Chunk
	}
	for _, ev := range list {
		if ev["type"] == "m.room.member" && ev["state_key"] == user.String() {
			content, _ := ev["content"].(map[string]any)
			m, _ := content["membership"].(string)
			return m
		}
	}
	return ""
}

func threadCount(raw string) int {
	var ev struct {
		Unsigned struct {
			Relations struct {
				Thread struct {
					Count int `json:"count"`
				} `json:"m.thread"`
			} `json:"m.relations"`
		} `json:"unsigned"`
	}
	_ = json.Unmarshal([]byte(raw), &ev)
	return ev.Unsigned.Relations.Thread.Count
}

func searchCounts(raw string) (results, count int) {
	var body struct {
		Categories struct {
			RoomEvents struct {
				Count   int   `json:"count"`
				Results []any `json:"results"`
			} `json:"room_events"`
		} `json:"search_categories"`
	}
	_ = json.Unmarshal([]byte(raw), &body)
	return len(body.Categories.RoomEvents.Results), body.Categories.RoomEvents.Count
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
