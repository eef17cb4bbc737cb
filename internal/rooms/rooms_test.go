package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

const server = "rooms.test"

func newService(t *testing.T) (*Service, ed25519.PublicKey) {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pub, priv, _ := ed25519.GenerateKey(nil)
	s := New(db, server, "ed25519:test", priv, nil)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if err := db.CreateUser(context.Background(), storage.User{UserID: user(u), Localpart: u, CreatedTS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return s, pub
}

func user(l string) string { return "@" + l + ":" + server }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := mxerr.As(err)
	if !ok || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func send(t *testing.T, s *Service, roomID, sender, typ string, stateKey *string, content any) (*Event, error) {
	t.Helper()
	b, _ := json.Marshal(content)
	return s.Send(context.Background(), SendRequest{RoomID: roomID, Sender: sender, Type: typ, StateKey: stateKey, Content: b})
}

func create(t *testing.T, s *Service, version, preset string) string {
	t.Helper()
	roomID, err := s.CreateRoom(context.Background(), CreateRequest{Creator: user("alice"), Preset: preset, RoomVersion: version})
	if err != nil {
		t.Fatalf("create %s room: %v", version, err)
	}
	return roomID
}

func TestEventsAreSignedHashedPDUs(t *testing.T) {
	for _, rv := range SupportedVersions {
		v := string(rv)
		t.Run("v"+v, func(t *testing.T) {
			s, pub := newService(t)
			roomID := create(t, s, v, "public_chat")
			ev, err := send(t, s, roomID, user("alice"), "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "hi"})
			if err != nil {
				t.Fatal(err)
			}
			if !ev.PDU.VerifyContentHash() {
				t.Fatal("content hash does not verify")
			}
			getKey := func(srv string, kid id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
				if srv != server || kid != "ed25519:test" {
					return "", time.Time{}, fmt.Errorf("unknown key")
				}
				return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(time.Hour), nil
			}
			if err := ev.PDU.VerifySignature(id.RoomVersion(v), server, getKey); err != nil {
				t.Fatalf("signature: %v", err)
			}
			gotID, _ := ev.PDU.GetEventID(id.RoomVersion(v))
			if string(gotID) != ev.EventID {
				t.Fatalf("event ID %s is not the reference hash %s", ev.EventID, gotID)
			}
			if len(ev.PDU.PrevEvents) != 1 || len(ev.PDU.AuthEvents) == 0 || ev.PDU.Depth < 2 {
				t.Fatalf("graph fields: prev=%v auth=%v depth=%d", ev.PDU.PrevEvents, ev.PDU.AuthEvents, ev.PDU.Depth)
			}
			if v == "12" {
				create, _ := s.CurrentStateEvent(context.Background(), roomID, "m.room.create", "")
				if "!"+create.EventID[1:] != roomID {
					t.Fatalf("v12 room ID %s is not derived from create event %s", roomID, create.EventID)
				}
			}
		})
	}
}

func TestAuthRejections(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	priv := create(t, s, "12", "private_chat")
	pub := create(t, s, "12", "public_chat")
	bob, carol := user("bob"), user("carol")

	// Rule 6: the sender must be joined.
	_, err := send(t, s, pub, bob, "m.room.message", nil, map[string]any{"body": "x"})
	wantCode(t, err, "M_FORBIDDEN")

	// Join rules: invite-only rooms refuse uninvited joins.
	_, err = s.Join(ctx, JoinRequest{Room: priv, User: bob})
	wantCode(t, err, "M_FORBIDDEN")

	// Public rooms accept them.
	if _, err := s.Join(ctx, JoinRequest{Room: pub, User: bob}); err != nil {
		t.Fatal(err)
	}

	// Rule 8: power level of the event type.
	name := ""
	_, err = send(t, s, pub, bob, "m.room.name", &name, map[string]any{"name": "hijack"})
	wantCode(t, err, "M_FORBIDDEN")

	// Rule 9: state keys starting with @ belong to that user.
	other := user("alice")
	_, err = send(t, s, pub, bob, "org.example.profile", &other, map[string]any{})
	wantCode(t, err, "M_FORBIDDEN")

	// Kick needs power.
	wantCode(t, s.Kick(ctx, pub, bob, user("alice"), ""), "M_FORBIDDEN")

	// Power level changes above one's own level are refused.
	pl := ""
	_, err = send(t, s, pub, bob, "m.room.power_levels", &pl, map[string]any{"users": map[string]int{bob: 100}})
	wantCode(t, err, "M_FORBIDDEN")

	// Bans: a banned user cannot rejoin; unban lets them.
	if err := s.Ban(ctx, pub, user("alice"), bob, "spam"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Join(ctx, JoinRequest{Room: pub, User: bob})
	wantCode(t, err, "M_FORBIDDEN")
	if err := s.Unban(ctx, pub, user("alice"), bob, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, JoinRequest{Room: pub, User: bob}); err != nil {
		t.Fatalf("join after unban: %v", err)
	}

	// Invite then join works for invite-only rooms; a non-member cannot invite.
	wantCode(t, s.Invite(ctx, priv, carol, bob, "", false), "M_FORBIDDEN")
	if err := s.Invite(ctx, priv, user("alice"), carol, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, JoinRequest{Room: priv, User: carol}); err != nil {
		t.Fatalf("invited join: %v", err)
	}

	// Knocking needs a knock join rule.
	_, err = s.Knock(ctx, priv, user("dave"), "")
	wantCode(t, err, "M_FORBIDDEN")
	jr := ""
	if _, err := send(t, s, priv, user("alice"), "m.room.join_rules", &jr, map[string]any{"join_rule": "knock"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Knock(ctx, priv, user("dave"), "let me in"); err != nil {
		t.Fatalf("knock: %v", err)
	}

	// Forbidden events store nothing: the head is unchanged.
	before := s.db.Position()
	_, err = send(t, s, priv, user("dave"), "m.room.message", nil, map[string]any{"body": "x"})
	wantCode(t, err, "M_FORBIDDEN")
	if s.db.Position() != before {
		t.Fatal("a rejected event advanced the stream")
	}
}

func TestRestrictedJoin(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	space := create(t, s, "12", "public_chat")
	room := create(t, s, "12", "private_chat")
	jr := ""
	if _, err := send(t, s, room, user("alice"), "m.room.join_rules", &jr, map[string]any{
		"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Join(ctx, JoinRequest{Room: room, User: user("bob")})
	wantCode(t, err, "M_FORBIDDEN")
	if _, err := s.Join(ctx, JoinRequest{Room: space, User: user("bob")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, JoinRequest{Room: room, User: user("bob")}); err != nil {
		t.Fatalf("restricted join via space membership: %v", err)
	}
	ev, _ := s.CurrentStateEvent(ctx, room, "m.room.member", user("bob"))
	if !strings.Contains(string(ev.PDU.Content), "join_authorised_via_users_server") {
		t.Fatalf("join lacks authoriser: %s", ev.PDU.Content)
	}
}

func TestRedaction(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	room := create(t, s, "11", "public_chat")
	s.Join(ctx, JoinRequest{Room: room, User: user("bob")})
	ev, err := send(t, s, room, user("alice"), "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Redact(ctx, room, user("bob"), ev.EventID, "", "", "")
	wantCode(t, err, "M_FORBIDDEN")
	if _, err := s.Redact(ctx, room, user("alice"), ev.EventID, "oops", "", ""); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Event(ctx, ev.EventID)
	ce := s.Format(ctx, got, Viewer{UserID: user("bob")}, FormatOpts{})
	if strings.Contains(string(ce.Content), "secret") || ce.Unsigned["redacted_because"] == nil {
		t.Fatalf("redacted event still shows content: %s", ce.Content)
	}
}

func TestTxnIdempotentAndSizeLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	room := create(t, s, "12", "public_chat")
	req := SendRequest{RoomID: room, Sender: user("alice"), Type: "m.room.message", Content: []byte(`{"body":"a"}`), TxnDevice: "D", TxnID: "t1"}
	a, err := s.Send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Send(ctx, req)
	if err != nil || a.EventID != b.EventID {
		t.Fatalf("retry gave %v, %v", b, err)
	}
	big := `{"body":"` + strings.Repeat("x", MaxPDUSize) + `"}`
	_, err = s.Send(ctx, SendRequest{RoomID: room, Sender: user("alice"), Type: "m.room.message", Content: []byte(big)})
	wantCode(t, err, "M_TOO_LARGE")
	_, err = s.Send(ctx, SendRequest{RoomID: room, Sender: user("alice"), Type: "m.room.message", Content: []byte(`{"n":1.5}`)})
	wantCode(t, err, "M_BAD_JSON")
	_, err = s.Send(ctx, SendRequest{RoomID: room, Sender: user("alice"), Type: "m.room.message", Content: []byte(`[1]`)})
	wantCode(t, err, "M_BAD_JSON")
}

func TestStateAtAnyEvent(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	room := create(t, s, "12", "public_chat")
	empty := ""
	var topics []*Event
	for i := 0; i < 3*maxChainLen; i++ {
		ev, err := send(t, s, room, user("alice"), "m.room.topic", &empty, map[string]any{"topic": fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, ev)
	}
	// A cold service (fresh caches) must rebuild each state from storage.
	cold := New(s.db, server, s.keyID, s.key, nil)
	for i, ev := range topics {
		st, err := cold.StateAt(ctx, ev.StateAfter)
		if err != nil {
			t.Fatal(err)
		}
		if st[storage.StateKey{Type: "m.room.topic"}] != ev.EventID {
			t.Fatalf("state after topic %d is wrong", i)
		}
		if _, ok := st[storage.StateKey{Type: "m.room.create"}]; !ok {
			t.Fatalf("state after topic %d lost the create event", i)
		}
	}
}

func TestHistoryVisibility(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	room := create(t, s, "12", "public_chat")
	hv := ""
	if _, err := send(t, s, room, user("alice"), "m.room.history_visibility", &hv, map[string]any{"history_visibility": "joined"}); err != nil {
		t.Fatal(err)
	}
	early, _ := send(t, s, room, user("alice"), "m.room.message", nil, map[string]any{"body": "before bob"})
	s.Join(ctx, JoinRequest{Room: room, User: user("bob")})
	late, _ := send(t, s, room, user("alice"), "m.room.message", nil, map[string]any{"body": "after bob"})
	if ok, _ := s.CanSee(ctx, user("bob"), early); ok {
		t.Fatal("joined visibility leaked history from before the join")
	}
	if ok, _ := s.CanSee(ctx, user("bob"), late); !ok {
		t.Fatal("joined member cannot see a message sent while joined")
	}
	if ok, _ := s.CanSee(ctx, user("carol"), late); ok {
		t.Fatal("non-member can see a joined-only message")
	}
	if _, err := send(t, s, room, user("alice"), "m.room.history_visibility", &hv, map[string]any{"history_visibility": "world_readable"}); err != nil {
		t.Fatal(err)
	}
	open, _ := send(t, s, room, user("alice"), "m.room.message", nil, map[string]any{"body": "for all"})
	if ok, _ := s.CanSee(ctx, user("carol"), open); !ok {
		t.Fatal("world_readable message hidden from a non-member")
	}
}

func TestUnsupportedVersion(t *testing.T) {
	s, _ := newService(t)
	// Rooms v1 and v2 use another event format (server-chosen event IDs);
	// the others are not room versions at all.
	for _, v := range []string{"1", "2", "13", "org.matrix.msc3757.10", "nope"} {
		_, err := s.CreateRoom(context.Background(), CreateRequest{Creator: user("alice"), RoomVersion: v})
		wantCode(t, err, "M_UNSUPPORTED_ROOM_VERSION")
		var e *mxerr.Error
		if !errors.As(err, &e) {
			t.Fatal("not a Matrix error")
		}
	}
}

func TestManyRoomsInOneMillisecond(t *testing.T) {
	s, _ := newService(t)
	fixed := time.UnixMilli(1_700_000_000_000)
	s.now = func() time.Time { return fixed }
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		id := create(t, s, "12", "public_chat")
		if seen[id] {
			t.Fatalf("room ID %s reused", id)
		}
		seen[id] = true
	}
}

func TestPrevContent(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	room := create(t, s, "12", "public_chat")
	empty := ""
	first, _ := send(t, s, room, user("alice"), "m.room.topic", &empty, map[string]any{"topic": "one"})
	second, err := send(t, s, room, user("alice"), "m.room.topic", &empty, map[string]any{"topic": "two"})
	if err != nil {
		t.Fatal(err)
	}
	cold := New(s.db, server, s.keyID, s.key, nil)
	ev, _ := cold.Event(ctx, second.EventID)
	ce := cold.Format(ctx, ev, Viewer{UserID: user("alice")}, FormatOpts{})
	prev, _ := json.Marshal(ce.Unsigned["prev_content"])
	if string(prev) != `{"topic":"one"}` || ce.Unsigned["replaces_state"] != first.EventID {
		t.Fatalf("prev_content %s, replaces_state %v", prev, ce.Unsigned["replaces_state"])
	}
}

func TestIdenticalStateIsIdempotent(t *testing.T) {
	s, _ := newService(t)
	room := create(t, s, "12", "public_chat")
	key := ""
	first, err := send(t, s, room, user("alice"), "a.test.state", &key, map[string]any{"a": 1, "b": "x"})
	if err != nil {
		t.Fatal(err)
	}
	before := s.db.Position()
	// The same content (keys in another order) from the same sender is
	// the same state: no new event.
	again, err := s.Send(context.Background(), SendRequest{RoomID: room, Sender: user("alice"), Type: "a.test.state", StateKey: &key,
		Content: []byte(`{"b":"x","a":1}`)})
	if err != nil || again.EventID != first.EventID || s.db.Position() != before {
		t.Fatalf("repeated state gave %v, %v (position %d -> %d)", again, err, before, s.db.Position())
	}
	// Other content, or another sender, is a new event.
	changed, err := send(t, s, room, user("alice"), "a.test.state", &key, map[string]any{"a": 2, "b": "x"})
	if err != nil || changed.EventID == first.EventID {
		t.Fatalf("changed state gave %v, %v", changed, err)
	}
	s.Join(context.Background(), JoinRequest{Room: room, User: user("bob")})
	pl := ""
	if _, err := send(t, s, room, user("alice"), "m.room.power_levels", &pl, map[string]any{"users": map[string]any{user("bob"): 50}, "state_default": 50}); err != nil {
		t.Fatal(err)
	}
	byBob, err := send(t, s, room, user("bob"), "a.test.state", &key, map[string]any{"a": 2, "b": "x"})
	if err != nil || byBob.EventID == changed.EventID {
		t.Fatalf("the same state from another sender gave %v, %v", byBob, err)
	}
}
