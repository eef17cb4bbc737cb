package clientapi_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func bodiesOf(evs []*event.Event) []string {
	var out []string
	for _, ev := range evs {
		if b, ok := ev.Content.Raw["body"].(string); ok {
			out = append(out, ev.Sender.String()+":"+b)
		}
	}
	return out
}

func TestIgnoredUsers(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, _ := sharedRoom(t, alice, bob) // alice said "hello"
	if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{alice.UserID.String(): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	since := initialSync(t, bob)
	if _, err := alice.SendText(ctx, roomID, "from alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendStateEvent(ctx, roomID, event.StateRoomName, "", map[string]any{"name": "Renamed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, roomID, "from bob"); err != nil {
		t.Fatal(err)
	}
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
	fromAlice, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	fromCarol, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	syncUntil(t, bob, since, func(s *mautrix.RespSync) bool {
		if _, ok := s.Rooms.Invite[fromAlice.RoomID]; ok {
			t.Fatal("invite from an ignored user was sent")
		}
		_, ok := s.Rooms.Invite[fromCarol.RoomID]
		return ok
	})
	full, err = bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.Rooms.Invite[fromAlice.RoomID]; ok {
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
	if _, ok := full.Rooms.Invite[fromAlice.RoomID]; !ok {
		t.Fatal("invite missing after un-ignoring")
	}
	if got := bodiesOf(full.Rooms.Join[roomID].Timeline.Events); len(got) != 3 {
		t.Fatalf("bodies after un-ignoring %v", got)
	}
}
