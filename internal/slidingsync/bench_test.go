package slidingsync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/testrig"
)

// BenchmarkSlidingSync5000Rooms measures sliding sync for a user in 5,000
// rooms with a list of range [0,19] and timeline_limit 1 (targets: first
// response <= 50 ms, incremental after one message <= 10 ms). Rooms are
// created in-process for setup speed; requests go over HTTP.
func BenchmarkSlidingSync5000Rooms(b *testing.B) {
	const n = 5000
	r := testrig.Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	ids := make([]string, n)
	var wg stdsync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprint("room ", i)
				id, err := r.Server.Rooms.CreateRoom(ctx, rooms.CreateRequest{Creator: alice.UserID.String(), Preset: "private_chat", Name: &name})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	body := func(conn string) map[string]any {
		return map[string]any{"conn_id": conn, "lists": map[string]any{"all": map[string]any{
			"ranges": [][]int{{0, 19}}, "timeline_limit": 1,
			"required_state": [][]string{{"m.room.name", ""}, {"m.room.avatar", ""}, {"m.room.member", "$LAZY"}, {"m.room.encryption", ""}},
		}}}
	}
	// The server's very first request loads the user's room activity.
	start, c0 := time.Now(), cpuTime()
	first := ssB(b, r, alice.AccessToken, "", body("cold"))
	b.Logf("cold first response (loads the room activity): %v (cpu %v)", time.Since(start), cpuTime()-c0)
	if first.Lists["all"].Count != n || len(first.Rooms) != 20 {
		b.Fatalf("first: count %d rooms %d", first.Lists["all"].Count, len(first.Rooms))
	}

	b.Run("first", func(b *testing.B) {
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			c0 := cpuTime()
			resp := ssB(b, r, alice.AccessToken, "", body(fmt.Sprint("first-", i)))
			cpu += cpuTime() - c0
			if len(resp.Rooms) != 20 {
				b.Fatalf("rooms: %d", len(resp.Rooms))
			}
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
	b.Run("incremental", func(b *testing.B) {
		pos := ssB(b, r, alice.AccessToken, "", body("inc")).Pos
		var cpu time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			room := ids[(i*7919)%n]
			if _, err := alice.SendText(ctx, id.RoomID(room), "hello"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			c0 := cpuTime()
			resp := ssB(b, r, alice.AccessToken, pos, body("inc"))
			cpu += cpuTime() - c0
			if rr := resp.Rooms[room]; rr == nil || len(rr.Timeline) != 1 {
				b.Fatalf("room %s not sent: %v", room, keys(resp.Rooms))
			}
			pos = resp.Pos
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
	// Element X grows its room list until the range covers every room: an
	// incremental request then has all 5,000 rooms in its window.
	b.Run("incremental-all-rooms", func(b *testing.B) {
		all := body("all")
		all["lists"].(map[string]any)["all"].(map[string]any)["ranges"] = [][]int{{0, n - 1}}
		pos := ssB(b, r, alice.AccessToken, "", all).Pos
		var cpu time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			room := ids[(i*7919+13)%n]
			if _, err := alice.SendText(ctx, id.RoomID(room), "hello"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			c0 := cpuTime()
			resp := ssB(b, r, alice.AccessToken, pos, all)
			cpu += cpuTime() - c0
			if rr := resp.Rooms[room]; rr == nil || len(rr.Timeline) != 1 || len(resp.Rooms) != 1 {
				b.Fatalf("room %s not sent alone: %v", room, keys(resp.Rooms))
			}
			pos = resp.Pos
		}
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	})
}

// cpuTime is the process's CPU time (user + system): the cost of a request
// when the machine is shared and wall time is noisy.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ssB(b *testing.B, r *testrig.Rig, token, pos string, body any) *ssResp {
	b.Helper()
	path := ssPath + "?timeout=0"
	if pos != "" {
		path += "&pos=" + pos
	}
	status, raw := r.DoT(b, http.MethodPost, path, token, jsonReader(body))
	if status != http.StatusOK {
		b.Fatalf("sliding sync: %d %s", status, raw)
	}
	var out ssResp
	if err := json.Unmarshal(raw, &out); err != nil {
		b.Fatal(err)
	}
	return &out
}

// BenchmarkEncryptionConnections has 50 room members each long-polling an
// encryption-only connection (no lists or subscriptions; to_device, e2ee
// and account_data extensions, as Element X's encryption sync) while
// messages arrive in the room: one op is one message. Those connections'
// answers cannot change for a message, so builds/op should be 0.
func BenchmarkEncryptionConnections(b *testing.B) {
	const n = 50
	r := testrig.Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	on := map[string]any{"enabled": true}
	body := map[string]any{"conn_id": "encryption", "extensions": map[string]any{"to_device": on, "e2ee": on, "account_data": on}}
	ssvc := r.Server.API.SlidingSync
	// The long-polls end before the server does (cleanups run last first).
	pollCtx, stopPolls := context.WithCancel(ctx)
	b.Cleanup(stopPolls)
	for i := 0; i < n; i++ {
		c := r.CreateUser(fmt.Sprint("u", i))
		if _, err := c.JoinRoomByID(ctx, room.RoomID); err != nil {
			b.Fatal(err)
		}
		pos := ssB(b, r, c.AccessToken, "", body).Pos
		before := ssvc.Builds()
		go func() {
			for pollCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(pollCtx, http.MethodPost, r.URL+ssPath+"?timeout=30000&pos="+pos, jsonReader(body))
				req.Header.Set("Authorization", "Bearer "+c.AccessToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				var out ssResp
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || out.Pos == "" {
					return
				}
				pos = out.Pos
			}
		}()
		for ssvc.Builds() == before {
			time.Sleep(time.Millisecond) // until it waits
		}
	}
	builds, c0 := ssvc.Builds(), cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := alice.SendText(ctx, room.RoomID, "hello"); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the wakes run
	b.StopTimer()
	b.ReportMetric(float64(ssvc.Builds()-builds)/float64(b.N), "builds/op")
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
