package slidingsync_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestConnectionsPerUserAreBounded: one user opening connections from many
// devices loses their own least recently used ones once past the per-user
// bound, instead of pushing other users' connections out of the shared one.
func TestConnectionsPerUserAreBounded(t *testing.T) {
	r := testrig.Start(t)
	r.Server.API.SlidingSync.SetConnLimits(30, 15)
	bob := r.CreateUser("bob")
	createRoom(t, bob, "B")
	conn := func(i int) map[string]any {
		return map[string]any{"conn_id": "c" + itoa(i), "lists": map[string]any{"all": list([][]int{{0, 0}}, 1, nil)}}
	}
	bobPos := ss(t, r, bob, "", 0, conn(0)).Pos
	time.Sleep(2 * time.Millisecond)

	r.CreateUser("alice")
	var first, last string
	for d := range 4 {
		dev := r.CreateUserDevice("alice", "DEV"+itoa(d), false)
		for i := range 10 {
			pos := ss(t, r, dev, "", 0, conn(i)).Pos
			if d == 0 && i == 0 {
				first = pos
			}
			last = pos
			time.Sleep(2 * time.Millisecond) // distinct last-use times
		}
	}
	if status, raw := ssRaw(t, r, bob, bobPos, 0, conn(0)); status != http.StatusOK {
		t.Fatalf("bob's connection was pushed out by alice's 40: %d %s", status, raw)
	}
	if status, raw := ssRaw(t, r, r.CreateUserDevice("alice", "DEV0", false), first, 0, conn(0)); status != http.StatusBadRequest || !strings.Contains(string(raw), "M_UNKNOWN_POS") {
		t.Fatalf("alice's oldest connection should be gone: %d %s", status, raw)
	}
	if status, raw := ssRaw(t, r, r.CreateUserDevice("alice", "DEV3", false), last, 0, conn(9)); status != http.StatusOK {
		t.Fatalf("alice's newest connection: %d %s", status, raw)
	}
}
