package testrig

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

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

// BenchmarkSyncFanout has 200 users long-polling one room while messages
// arrive; one op is one message delivered to all 200.
func BenchmarkSyncFanout(b *testing.B) {
	r := Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	got := make(chan struct{}, n*64)
	stop := make(chan struct{})
	for i := 0; i < n; i++ {
		c := r.CreateUser(fmt.Sprint("u", i))
		if _, err := c.JoinRoomByID(ctx, room.RoomID); err != nil {
			b.Fatal(err)
		}
		go func() {
			since := ""
			for {
				resp, err := c.SyncRequest(ctx, 30000, since, "", false, "")
				if err != nil {
					return
				}
				since = resp.NextBatch
				if jr := resp.Rooms.Join[room.RoomID]; jr != nil {
					for _, ev := range jr.Timeline.Events {
						if ev.Sender == alice.UserID {
							got <- struct{}{}
						}
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	time.Sleep(2 * time.Second) // let every client reach its long-poll
	for len(got) > 0 {
		<-got
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := alice.SendText(ctx, room.RoomID, "ping"); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < n; j++ {
			<-got
		}
	}
	b.StopTimer()
	close(stop)
}
