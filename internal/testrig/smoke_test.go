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

// TestJSON checks the request helper sends values as JSON and strings as
// they are, and decodes the answer.
func TestJSON(t *testing.T) {
	r := Start(t)
	alice := r.CreateUser("alice")
	status, body := r.JSON(t, "GET", "/_matrix/client/v3/account/whoami", alice.AccessToken, nil)
	if status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("whoami: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/login", "", "{not json")
	if status != 400 || body["errcode"] != "M_NOT_JSON" {
		t.Fatalf("raw body: %d %v", status, body)
	}
	status, body = r.JSON(t, "POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password-alice"})
	if status != 200 || body["user_id"] != alice.UserID.String() {
		t.Fatalf("login: %d %v", status, body)
	}
}
