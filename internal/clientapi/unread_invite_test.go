package clientapi_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestCountsAfterInvitedJoin: counting starts at the join, so the invite
// (which notifies under .m.rule.invite_for_me) and the room's history are
// not unread; a sync right after the join must not leave a cache entry that
// makes the next one recount the room from its start.
func TestCountsAfterInvitedJoin(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	bob := r.CreateUser("bob")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	resp0, _ := bob.SyncRequest(ctx, 0, "", "", false, "")
	if _, err := alice.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	resp1, _ := bob.SyncRequest(ctx, 0, resp0.NextBatch, "", false, "")
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	resp2, _ := bob.SyncRequest(ctx, 0, resp1.NextBatch, "", false, "")
	if c := resp2.Rooms.Join[room.RoomID].UnreadNotifications; c == nil || c.NotificationCount != 0 {
		t.Fatalf("after join: %+v", c)
	}
	for i := 0; i < 3; i++ {
		if _, err := alice.SendText(ctx, room.RoomID, "m"); err != nil {
			t.Fatal(err)
		}
	}
	resp3, _ := bob.SyncRequest(ctx, 0, resp2.NextBatch, "", false, "")
	if c := resp3.Rooms.Join[room.RoomID].UnreadNotifications; c == nil || c.NotificationCount != 3 {
		t.Fatalf("after 3 messages: %+v", c)
	}
	resp4, _ := bob.SyncRequest(ctx, 0, "", "", false, "")
	if c := resp4.Rooms.Join[room.RoomID].UnreadNotifications; c == nil || c.NotificationCount != 3 {
		t.Fatalf("initial sync: %+v", c)
	}
}
