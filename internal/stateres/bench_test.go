package stateres

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/id"
)

// bigRoom is a v11 room with n joined members.
func bigRoom(b *testing.B, n int) (*testRoom, *fork) {
	r, f := newRoom(b, id.RoomV11, alice, nil)
	for i := range n {
		u := fmt.Sprintf("@user%04d:m.example", i)
		f.send("join", u, typeMember, u, join())
	}
	return r, f
}

func runBench(b *testing.B, r *testRoom, x, y *fork) {
	sets := []State{x.state, y.state}
	r.fetchCalls, r.fetched = 0, 0
	b.ResetTimer()
	for b.Loop() {
		if _, err := Resolve(context.Background(), r.version, sets, r.fetch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.fetchCalls)/float64(b.N), "fetches/op")
	b.ReportMetric(float64(r.fetched)/float64(b.N), "events/op")
}

// BenchmarkResolve resolves two forks of a 1,000-member room.
func BenchmarkResolve(b *testing.B) {
	b.Run("unconflicted", func(b *testing.B) {
		r, f := bigRoom(b, 1000)
		runBench(b, r, f, f.clone())
	})
	// 20 keys set differently on each fork, on the same auth history: the
	// members' auth chains need not be walked.
	b.Run("20 conflicted keys", func(b *testing.B) {
		r, f := bigRoom(b, 1000)
		x, y := f.clone(), f.clone()
		for i := range 20 {
			k := fmt.Sprintf("k%d", i)
			x.send("x", alice, "m.test", k, map[string]any{"v": "x"})
			y.send("y", alice, "m.test", k, map[string]any{"v": "y"})
		}
		runBench(b, r, x, y)
	})
	// 20 members who joined and renamed themselves on one fork only: their
	// joins are undecided auth differences, so the shared members' auth
	// chains are walked too.
	b.Run("20 conflicted members with auth difference", func(b *testing.B) {
		r, f := bigRoom(b, 1000)
		x, y := f.clone(), f.clone()
		for i := range 20 {
			u := fmt.Sprintf("@new%02d:n.example", i)
			x.send("join", u, typeMember, u, join())
			x.send("rename", u, typeMember, u, map[string]any{"membership": "join", "displayname": "n"})
		}
		runBench(b, r, x, y)
	})
}
