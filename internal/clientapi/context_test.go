package clientapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestEventContext(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	var ids []id.EventID
	for i := 0; i < 5; i++ {
		resp, err := alice.SendText(ctx, room, fmt.Sprint("m", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.EventID)
	}
	c, err := alice.Context(ctx, room, ids[2], nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.Event.ID != ids[2] || len(c.EventsBefore) != 2 || len(c.EventsAfter) != 2 {
		t.Fatalf("context: event %s, %d before, %d after", c.Event.ID, len(c.EventsBefore), len(c.EventsAfter))
	}
	if c.EventsBefore[0].ID != ids[1] || c.EventsBefore[1].ID != ids[0] || c.EventsAfter[0].ID != ids[3] || c.EventsAfter[1].ID != ids[4] {
		t.Fatal("context events out of order")
	}
	hasCreate := false
	for _, ev := range c.State {
		if ev.Type.Type == "m.room.create" {
			hasCreate = true
		}
	}
	if !hasCreate || c.Start == "" || c.End == "" {
		t.Fatalf("context state/tokens: create=%v start=%q end=%q", hasCreate, c.Start, c.End)
	}
	// Paging backwards from start continues before the window.
	msgs, err := alice.Messages(ctx, room, c.Start, "", mautrix.DirectionBackward, nil, 1)
	if err != nil || len(msgs.Chunk) != 1 || msgs.Chunk[0].Type.Type == "m.room.message" {
		t.Fatalf("paging from context start: %v %+v", err, msgs)
	}
	// A non-member cannot see events of a private room.
	_, err = bob.Context(ctx, room, ids[2], nil, 4)
	wantClientError(t, err, 404, "M_NOT_FOUND")
}

// TestEventContextFilter checks /context applies its filter to the events
// around the event (not to the event) and refuses a malformed one.
func TestEventContextFilter(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	var ids []id.EventID
	for i := 0; i < 5; i++ {
		typ := event.EventMessage
		if i%2 == 1 {
			typ = event.NewEventType("m.sweep.other")
		}
		resp, err := alice.SendMessageEvent(ctx, room, typ, map[string]any{"msgtype": "m.text", "body": fmt.Sprint("m", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.EventID)
	}
	// ids[1] and ids[3] are m.sweep.other: the filter keeps messages only,
	// yet the event asked for is returned.
	c, err := alice.Context(ctx, room, ids[3], &mautrix.FilterPart{Types: []event.Type{event.EventMessage}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if c.Event.ID != ids[3] || len(c.EventsBefore) != 2 || c.EventsBefore[0].ID != ids[2] || c.EventsBefore[1].ID != ids[0] ||
		len(c.EventsAfter) != 1 || c.EventsAfter[0].ID != ids[4] {
		t.Fatalf("filtered context: event %s, before %v, after %v", c.Event.ID, c.EventsBefore, c.EventsAfter)
	}
	status, body := r.Do("GET", "/_matrix/client/v3/rooms/"+esc(room.String())+"/context/"+esc(ids[3].String())+"?filter=%7Bnope", alice.AccessToken, nil)
	if status != 400 || !strings.Contains(string(body), "M_BAD_JSON") {
		t.Fatalf("malformed filter: %d %s", status, body)
	}
}
