package search_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/testrig"
)

// BenchmarkSearch100k measures POST /search over HTTP against 100,000
// messages in 10 rooms (target: < 50 ms). Every message has eight words
// drawn from a 2,000-word vocabulary (so a word is in ~400 messages); one in
// 10 also has "common", one in 100 "medium", one in 10,000 "rare".
//
//	go test -tags goolm -run '^$' -bench Search100k ./internal/search
func BenchmarkSearch100k(b *testing.B) {
	const total, nRooms = 100_000, 10
	r := testrig.Start(b)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	roomIDs := make([]string, nRooms)
	for i := range roomIDs {
		res, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: fmt.Sprint("room ", i)})
		if err != nil {
			b.Fatal(err)
		}
		roomIDs[i] = res.RoomID.String()
	}
	vocab := make([]string, 2000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("word%04d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, nRooms)
	for ri, roomID := range roomIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ri), 1))
			for i := ri; i < total; i += nRooms {
				words := make([]string, 0, 11)
				for range 8 {
					words = append(words, vocab[rng.IntN(len(vocab))])
				}
				if i%10 == 0 {
					words = append(words, "common")
				}
				if i%100 == 0 {
					words = append(words, "medium")
				}
				if i%10_000 == 0 {
					words = append(words, "rare")
				}
				content, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": strings.Join(words, " ")})
				if _, err := r.Server.Rooms.Send(ctx, rooms.SendRequest{
					RoomID: roomID, Sender: alice.UserID.String(), Type: "m.room.message", Content: content,
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	for _, c := range []struct {
		name, term, order string
		context           bool
	}{
		{"rare", "rare", "rank", false},
		{"word/rank", "word0042", "rank", false},
		{"word/recent", "word0042", "recent", false},
		{"medium/rank", "medium", "rank", false},
		{"common/rank", "common", "rank", false},
		{"common/recent", "common", "recent", false},
		{"prefix/rank", "word004", "rank", false},
		{"two-words/rank", "common word0042", "rank", false},
		{"word/rank+context", "word0042", "rank", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			criteria := map[string]any{"search_term": c.term, "order_by": c.order}
			if c.context {
				criteria["event_context"] = map[string]any{"before_limit": 3, "after_limit": 3, "include_profile": true}
			}
			body, _ := json.Marshal(map[string]any{"search_categories": map[string]any{"room_events": criteria}})
			for b.Loop() {
				status, raw := r.Do(http.MethodPost, "/_matrix/client/v3/search", alice.AccessToken, bytes.NewReader(body))
				if status != 200 || !bytes.Contains(raw, []byte(`"results":[{`)) {
					b.Fatalf("search: %d %.300s", status, raw)
				}
			}
		})
	}
}
