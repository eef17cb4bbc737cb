package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkSearchIndex100k measures the full-text queries alone (no HTTP,
// no event formatting) over 100,000 messages in 10 rooms, with the same
// word mix as the search package's HTTP benchmark.
func BenchmarkSearchIndex100k(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "axon.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rooms := make([]string, 10)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("!room%d:bench", i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if err := db.Write(ctx, func(tx *Tx) error {
		for i := 0; i < 100_000; i++ {
			words := make([]string, 0, 11)
			for range 8 {
				words = append(words, fmt.Sprintf("word%04d", rng.IntN(2000)))
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
			ev := Event{EventID: fmt.Sprint("$", i), RoomID: rooms[i%10], Type: "m.room.message", Sender: "@a:bench",
				PDU: []byte(`{"content":{"msgtype":"m.text","body":"` + strings.Join(words, " ") + `"}}`)}
			pos := tx.NextPos(StreamEvents)
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (stream_pos, event_id, room_id, type, sender, depth, origin_ts, state_before, state_after, pdu)
				VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, $6)`, pos, ev.EventID, ev.RoomID, ev.Type, ev.Sender, string(ev.PDU)); err != nil {
				return err
			}
			if err := indexSearch(ctx, tx, &ev, pos); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, term := range []string{"rare", "word0042", "common"} {
		for _, byRank := range []bool{true, false} {
			name := term + "/recent"
			if byRank {
				name = term + "/rank"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					q := SearchQuery{Match: `{body name topic} : ("` + term + `"*)`, Rooms: rooms, ByRank: byRank, Limit: 20}
					if _, err := db.SearchCount(ctx, &q); err != nil {
						b.Fatal(err)
					}
					hits, err := db.SearchEvents(ctx, q)
					if err != nil || len(hits) == 0 {
						b.Fatalf("%v %v", hits, err)
					}
				}
			})
		}
	}
	q := SearchQuery{Match: `{body name topic} : ("common"*)`, Rooms: rooms, Limit: 20}
	b.Run("common/count-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.SearchCount(ctx, &q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
