package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json/v2"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/storage"
)

// remoteServer signs PDUs as another homeserver would.
type remoteServer struct {
	name string
	key  ed25519.PrivateKey
}

const remoteName = "remote.test"

func newRemote(t *testing.T) *remoteServer {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &remoteServer{name: remoteName, key: priv}
}

// keys serves the remote's key and the local server's.
func (rs *remoteServer) keys(local ed25519.PublicKey) pdu.GetKeyFunc {
	return func(server string, kid id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		var pub ed25519.PublicKey
		switch {
		case server == rs.name && kid == "ed25519:remote":
			pub = rs.key.Public().(ed25519.PublicKey)
		case server == "rooms.test" && kid == "ed25519:test":
			pub = local
		default:
			return "", time.Time{}, fmt.Errorf("unknown key %s of %s", kid, server)
		}
		return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(time.Hour), nil
	}
}

// pduSpec is a remote event to build.
type pduSpec struct {
	sender, typ string
	stateKey    *string
	content     map[string]any
	prev        []string
	// authFrom is the state whose events the PDU cites as auth events.
	authFrom storage.StateMap
	depth    int64
}

func (rs *remoteServer) build(t *testing.T, s *Service, roomID string, version id.RoomVersion, sp pduSpec) (raw []byte, eventID string) {
	t.Helper()
	content, _ := json.Marshal(sp.content)
	p := &pdu.PDU{Type: sp.typ, Sender: id.UserID(sp.sender), RoomID: id.RoomID(roomID), Content: content, StateKey: sp.stateKey,
		OriginServerTS: time.Now().UnixMilli(), Depth: sp.depth, AuthEvents: []id.EventID{}}
	for _, x := range sp.prev {
		p.PrevEvents = append(p.PrevEvents, id.EventID(x))
	}
	for _, k := range p.AuthEventSelection(version) {
		if evID, ok := sp.authFrom[storage.StateKey{Type: k.Type, StateKey: k.StateKey}]; ok {
			p.AuthEvents = append(p.AuthEvents, id.EventID(evID))
		}
	}
	if err := p.FillContentHash(); err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(version, rs.name, "ed25519:remote", rs.key); err != nil {
		t.Fatal(err)
	}
	evID, err := p.GetEventID(version)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw, string(evID)
}

func extremities(t *testing.T, s *Service, roomID string) []string {
	t.Helper()
	x, err := s.db.ForwardExtremities(context.Background(), roomID)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func timelineIDs(t *testing.T, s *Service, roomID string) []string {
	t.Helper()
	evs, err := s.db.RoomEventsBackward(context.Background(), roomID, s.db.Position()+1, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.EventID)
	}
	return out
}

// The pipeline's three outcomes for remote events (accepted, rejected,
// soft-failed), forks with several forward extremities, and what clients
// can see of each, in each room version with a different auth shape.
func TestRemoteEventOutcomes(t *testing.T) {
	for _, version := range []id.RoomVersion{"10", "12"} {
		t.Run("v"+string(version), func(t *testing.T) { testRemoteEventOutcomes(t, version) })
	}
}

func testRemoteEventOutcomes(t *testing.T, version id.RoomVersion) {
	ctx := context.Background()
	s, pub := newService(t)
	rs := newRemote(t)
	keys := rs.keys(pub)
	roomID := create(t, s, string(version), "public_chat")
	rob, eve := "@rob:"+remoteName, "@eve:"+remoteName
	var heardMu sync.Mutex
	heard := map[string]bool{}
	s.Subscribe(func(ev *Event) { heardMu.Lock(); heard[ev.EventID] = true; heardMu.Unlock() })
	state := func() storage.StateMap {
		st, err := s.CurrentState(ctx, roomID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	depth := func() int64 {
		r, _ := s.lockRoom(ctx, roomID)
		defer r.mu.Unlock()
		return r.depth + 1
	}
	accept := func(raw []byte) *Event {
		t.Helper()
		ev, err := s.AcceptRemote(ctx, roomID, raw, keys)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}

	// Accepted: a remote user joins the public room, then talks.
	joinRaw, joinID := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.member", stateKey: &rob,
		content: map[string]any{"membership": "join"}, prev: extremities(t, s, roomID), authFrom: state(), depth: depth()})
	if ev := accept(joinRaw); !ev.InStream() || ev.RejectedReason != "" {
		t.Fatalf("join: %+v", ev.Event)
	}
	if m, _ := s.Membership(ctx, roomID, rob); m != "join" {
		t.Fatalf("rob's membership after his join: %q", m)
	}
	if x := extremities(t, s, roomID); !slices.Equal(x, []string{joinID}) {
		t.Fatalf("extremities %v, want the join", x)
	}
	// Delivered twice, it is the same event, stored once.
	before := s.db.Position()
	if ev := accept(joinRaw); ev.EventID != joinID || s.db.Position() != before {
		t.Fatal("a repeated PDU was stored again")
	}
	m1Raw, m1 := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "hello from afar"}, prev: []string{joinID}, authFrom: state(), depth: depth()})
	accept(m1Raw)

	// Rejected: a user who is not in the room sends a message; and an
	// event citing a rejected event as an auth event.
	eveRaw, eveID := rs.build(t, s, roomID, version, pduSpec{sender: eve, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "let me in"}, prev: []string{m1}, authFrom: state(), depth: depth()})
	ev := accept(eveRaw)
	if ev.InStream() || ev.RejectedReason == "" || !ev.PDU.InternalMeta.Rejected {
		t.Fatalf("message of a non-member: stream %d, reason %q", ev.StreamPos, ev.RejectedReason)
	}
	stored, err := s.db.GetEvent(ctx, eveID)
	if err != nil || stored.RejectedReason == "" || stored.StreamPos >= 0 {
		t.Fatalf("rejected event as stored: %+v %v", stored, err)
	}
	eveJoinState := state()
	eveJoinState[storage.StateKey{Type: "m.room.member", StateKey: eve}] = eveID // a rejected "membership"
	citing, _ := rs.build(t, s, roomID, version, pduSpec{sender: eve, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "me again"}, prev: []string{m1}, authFrom: eveJoinState, depth: depth()})
	if ev := accept(citing); ev.InStream() || ev.RejectedReason == "" {
		t.Fatalf("event citing a rejected auth event: %+v", ev.Event)
	}
	if x := extremities(t, s, roomID); !slices.Equal(x, []string{m1}) {
		t.Fatalf("extremities %v after rejections, want only %s", x, m1)
	}
	if tl := timelineIDs(t, s, roomID); slices.Contains(tl, eveID) || !slices.Contains(tl, m1) {
		t.Fatalf("timeline %v: rejected events must not show, accepted ones must", tl)
	}

	// A fork: a local message follows m1, and rob sends one citing m1 too.
	// No state changed between them, so the states agree and both become
	// forward extremities; the next local event cites both.
	local, err := send(t, s, roomID, user("alice"), "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "meanwhile"})
	if err != nil {
		t.Fatal(err)
	}
	forkRaw, forkID := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "crossing"}, prev: []string{m1}, authFrom: state(), depth: depth()})
	if ev := accept(forkRaw); !ev.InStream() {
		t.Fatalf("forked message: %+v", ev.Event)
	}
	want := []string{local.EventID, forkID}
	slices.Sort(want)
	if x := extremities(t, s, roomID); !slices.Equal(x, want) {
		t.Fatalf("extremities %v, want both forks %v", x, want)
	}
	merge, err := send(t, s, roomID, user("alice"), "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "merged"})
	if err != nil {
		t.Fatal(err)
	}
	if got := eventIDStrings(merge.PDU.PrevEvents); !sameIDs(merge.PDU.PrevEvents, want) {
		t.Fatalf("merging event cites %v, want %v", got, want)
	}
	if x := extremities(t, s, roomID); !slices.Equal(x, []string{merge.EventID}) {
		t.Fatalf("extremities %v after the merge", x)
	}

	// A fork across a state change: alice sets the topic, and rob's server,
	// not yet aware, sends a message citing the event before it. The two
	// states conflict on the topic; state resolution keeps alice's topic,
	// and the room has two forward extremities until the next local event.
	topicKey := ""
	topic, err := send(t, s, roomID, user("alice"), "m.room.topic", &topicKey, map[string]any{"topic": "A"})
	if err != nil {
		t.Fatal(err)
	}
	crossRaw, crossID := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "what topic?"}, prev: []string{merge.EventID}, authFrom: state(), depth: depth()})
	if ev := accept(crossRaw); !ev.InStream() {
		t.Fatalf("message forking across a state change: %+v", ev.Event)
	}
	if got := state()[storage.StateKey{Type: "m.room.topic"}]; got != topic.EventID {
		t.Fatalf("topic after resolution is %s, want alice's %s", got, topic.EventID)
	}
	want = []string{topic.EventID, crossID}
	slices.Sort(want)
	if x := extremities(t, s, roomID); !slices.Equal(x, want) {
		t.Fatalf("extremities %v, want %v", x, want)
	}
	if m, _ := s.Membership(ctx, roomID, rob); m != "join" {
		t.Fatalf("rob's membership after the resolution: %q", m)
	}

	// Soft-failed: alice bans rob; rob's server, not yet aware, sends a
	// message citing the event before the ban. Its auth events and the
	// state before it allow it; the current state does not.
	beforeBan := state()
	if err := s.Ban(ctx, roomID, user("alice"), rob, "spam"); err != nil {
		t.Fatal(err)
	}
	lateRaw, lateID := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"msgtype": "m.text", "body": "did I miss something"}, prev: []string{merge.EventID}, authFrom: beforeBan, depth: depth()})
	xBefore := extremities(t, s, roomID)
	ev = accept(lateRaw)
	if ev.InStream() || !ev.SoftFailed || ev.RejectedReason != "" {
		t.Fatalf("message from a banned user citing old state: stream %d soft-failed %v reason %q", ev.StreamPos, ev.SoftFailed, ev.RejectedReason)
	}
	if x := extremities(t, s, roomID); !slices.Equal(x, xBefore) {
		t.Fatalf("a soft-failed event became an extremity: %v", x)
	}
	if tl := timelineIDs(t, s, roomID); slices.Contains(tl, lateID) {
		t.Fatal("a soft-failed event shows in the timeline")
	}
	if m, _ := s.Membership(ctx, roomID, rob); m != "ban" {
		t.Fatalf("rob's membership %q after the soft-failed message", m)
	}

	// Listeners (sync, push) hear of accepted events only, once.
	heardMu.Lock()
	for id, want := range map[string]bool{joinID: true, m1: true, forkID: true, crossID: true, eveID: false, lateID: false} {
		if heard[id] != want {
			t.Errorf("listeners heard of %s: %v, want %v", id, heard[id], want)
		}
	}
	heardMu.Unlock()

	// Not accepted at all: a forged signature, an unknown prev event.
	forged, _ := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"body": "x"}, prev: xBefore, authFrom: state(), depth: depth()})
	var p map[string]any
	json.Unmarshal(forged, &p)
	p["origin_server_ts"] = 1.0
	forged, _ = json.Marshal(p)
	pos := s.db.Position()
	if _, err := s.AcceptRemote(ctx, roomID, forged, keys); err == nil {
		t.Fatal("a PDU whose signature does not verify was taken")
	}
	orphan, _ := rs.build(t, s, roomID, version, pduSpec{sender: rob, typ: "m.room.message",
		content: map[string]any{"body": "x"}, prev: []string{"$unknown"}, authFrom: state(), depth: depth()})
	if _, err := s.AcceptRemote(ctx, roomID, orphan, keys); err == nil {
		t.Fatal("a PDU with unknown prev events was taken")
	}
	if s.db.Position() != pos {
		t.Fatal("refused PDUs advanced the stream")
	}
}
