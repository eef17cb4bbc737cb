package testrig

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestSmoke exercises the basic room flow end to end over HTTP.
func TestSmoke(t *testing.T) {
	r := Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	bob := r.CreateUser("bob")
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Test", Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := bob.JoinRoomByID(ctx, resp.RoomID); err != nil {
		t.Fatalf("join: %v", err)
	}
	sr, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if _, ok := sr.Rooms.Join[resp.RoomID]; !ok {
		t.Fatalf("room not in bob's sync: %+v", sr.Rooms)
	}
	done := make(chan *mautrix.RespSync)
	go func() {
		s2, err := bob.SyncRequest(ctx, 10000, sr.NextBatch, "", false, event.PresenceOnline)
		if err != nil {
			t.Error(err)
		}
		done <- s2
	}()
	time.Sleep(50 * time.Millisecond)
	sent, err := alice.SendText(ctx, resp.RoomID, "hello bob")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	s2 := <-done
	room := s2.Rooms.Join[resp.RoomID]
	if room == nil || len(room.Timeline.Events) != 1 || room.Timeline.Events[0].ID != sent.EventID {
		t.Fatalf("incremental sync missing message: %+v", s2.Rooms.Join)
	}
	if room.UnreadNotifications == nil || room.UnreadNotifications.NotificationCount != 1 {
		t.Fatalf("unread count: %+v", room.UnreadNotifications)
	}
	msgs, err := bob.Messages(ctx, resp.RoomID, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatalf("messages: %v", err)
	}
	if len(msgs.Chunk) < 5 || msgs.Chunk[0].ID != sent.EventID {
		t.Fatalf("messages chunk: %d", len(msgs.Chunk))
	}
}
