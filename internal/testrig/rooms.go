package testrig

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Room helpers for tests: each does one client call and fails the test
// when the server refuses, so that a test reads as the story it tells.

// CreateRoom creates a room as c and returns its ID.
func CreateRoom(t testing.TB, c *mautrix.Client, req *mautrix.ReqCreateRoom) id.RoomID {
	t.Helper()
	resp, err := c.CreateRoom(context.Background(), req)
	if err != nil {
		t.Fatalf("create room as %s: %v", c.UserID, err)
	}
	return resp.RoomID
}

// Join makes each of cs join roomID.
func Join(t testing.TB, roomID id.RoomID, cs ...*mautrix.Client) {
	t.Helper()
	for _, c := range cs {
		if _, err := c.JoinRoomByID(context.Background(), roomID); err != nil {
			t.Fatalf("%s joins %s: %v", c.UserID, roomID, err)
		}
	}
}

// SendText sends a plain-text message as c and returns its event ID.
func SendText(t testing.TB, c *mautrix.Client, roomID id.RoomID, text string) id.EventID {
	t.Helper()
	resp, err := c.SendText(context.Background(), roomID, text)
	if err != nil {
		t.Fatalf("send as %s to %s: %v", c.UserID, roomID, err)
	}
	return resp.EventID
}

// Encrypted is the initial state event (ReqCreateRoom.InitialState) that
// creates a room with Megolm encryption on.
func Encrypted() *event.Event {
	return &event.Event{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}
}

// PublicRoom creates a public room of owner's (preset public_chat) that
// each of members has joined.
func PublicRoom(t testing.TB, owner *mautrix.Client, members ...*mautrix.Client) id.RoomID {
	t.Helper()
	roomID := CreateRoom(t, owner, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	Join(t, roomID, members...)
	return roomID
}
