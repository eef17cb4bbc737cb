package testrig

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
)

// BenchmarkInitialSync100Rooms measures a full initial /sync over HTTP for a
// user in 100 rooms with 20 messages each (target: <= 100 ms).
func BenchmarkInitialSync100Rooms(b *testing.B) {
	r := Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	for i := 0; i < 100; i++ {
		room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: fmt.Sprint("room ", i)})
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 20; j++ {
			if _, err := alice.SendText(ctx, room.RoomID, fmt.Sprint("message ", j)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		status, body := r.Do(http.MethodGet, "/_matrix/client/v3/sync", alice.AccessToken, nil)
		if status != 200 || len(body) < 1000 {
			b.Fatalf("sync: %d", status)
		}
	}
}

// BenchmarkSend measures sequential message sends over HTTP.
func BenchmarkSend(b *testing.B) {
	r := Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := alice.SendText(ctx, room.RoomID, "hello"); err != nil {
			b.Fatal(err)
		}
	}
}
