package presence

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/storage"
)

type fakeNotifier struct{ woken []string }

func (f *fakeNotifier) Wake(users ...string) { f.woken = append(f.woken, users...) }
func (f *fakeNotifier) RoomMembers(context.Context, string) []string {
	return nil
}

func newService(t *testing.T) (*Service, *storage.DB, *fakeNotifier, *time.Time) {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "axon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n := &fakeNotifier{}
	s := New(db, n, "axon.test")
	now := time.UnixMilli(1_700_000_000_000)
	s.now = func() time.Time { return now }
	return s, db, n, &now
}

func TestFromSync(t *testing.T) {
	ctx := context.Background()
	s, db, n, now := newService(t)
	const u = "@alice:axon.test"

	// offline leaves presence alone.
	if err := s.FromSync(ctx, u, "offline"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetPresence(ctx, u); err != storage.ErrNotFound {
		t.Fatalf("offline sync stored presence: %v", err)
	}
	// The default marks the user online and wakes them.
	if err := s.FromSync(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	p, err := db.GetPresence(ctx, u)
	if err != nil || p.State != Online || p.LastActiveTS != now.UnixMilli() || len(n.woken) == 0 {
		t.Fatalf("after online sync: %+v %v woken %v", p, err, n.woken)
	}
	// Syncing again soon changes nothing: no stream update.
	pos := db.StreamPosition(storage.StreamPresence)
	*now = now.Add(time.Minute)
	if err := s.FromSync(ctx, u, "online"); err != nil {
		t.Fatal(err)
	}
	if db.StreamPosition(storage.StreamPresence) != pos {
		t.Fatal("a heartbeat sync wrote presence")
	}
	// After the bump interval last_active moves.
	*now = now.Add(syncBump)
	if err := s.FromSync(ctx, u, "online"); err != nil {
		t.Fatal(err)
	}
	if p, _ := db.GetPresence(ctx, u); p.LastActiveTS != now.UnixMilli() {
		t.Fatalf("last active not bumped: %+v", p)
	}
	// unavailable keeps the status message and last active time.
	msg := "brb"
	if err := s.Set(ctx, u, Online, &msg); err != nil {
		t.Fatal(err)
	}
	active := now.UnixMilli()
	*now = now.Add(time.Minute)
	if err := s.FromSync(ctx, u, "unavailable"); err != nil {
		t.Fatal(err)
	}
	p, _ = db.GetPresence(ctx, u)
	if p.State != Unavailable || p.StatusMsg == nil || *p.StatusMsg != "brb" || p.LastActiveTS != active {
		t.Fatalf("after unavailable sync: %+v", p)
	}
	if err := s.FromSync(ctx, u, "away"); err == nil {
		t.Fatal("invalid set_presence accepted")
	}
}

// TestOnlyVisibleChangesWake: a last_active refresh is stored (later syncs
// carry it) but wakes nobody; changes others see (state, status message,
// currently_active) wake the user's audience.
func TestOnlyVisibleChangesWake(t *testing.T) {
	ctx := context.Background()
	s, db, n, now := newService(t)
	const u = "@alice:axon.test"
	step := func(what string, f func() error, wantWake bool) {
		t.Helper()
		n.woken = nil
		pos := db.StreamPosition(storage.StreamPresence)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if db.StreamPosition(storage.StreamPresence) == pos {
			t.Fatalf("%s: presence not written", what)
		}
		if woke := len(n.woken) > 0; woke != wantWake {
			t.Fatalf("%s: woke %v, want %v", what, n.woken, wantWake)
		}
	}
	sync := func(state string) func() error { return func() error { return s.FromSync(ctx, u, state) } }

	step("first online sync", sync(""), true)
	// Still currently_active: only last_active_ago differs.
	*now = now.Add(syncBump)
	step("last_active refresh", sync(""), false)
	if p, _ := db.GetPresence(ctx, u); p.LastActiveTS != now.UnixMilli() {
		t.Fatalf("last_active not refreshed: %+v", p)
	}
	// Away longer than the active window: currently_active flips back on.
	*now = now.Add(6 * time.Minute)
	step("active again", sync(""), true)
	msg := "lunch"
	step("status message", func() error { return s.Set(ctx, u, Online, &msg) }, true)
	*now = now.Add(time.Second)
	step("same presence set again", func() error { return s.Set(ctx, u, Online, &msg) }, false)
	step("state change", sync("unavailable"), true)
	step("status cleared", func() error { return s.Set(ctx, u, Unavailable, nil) }, true)
}

// TestSyncSeesExplicitChanges: FromSync answers most syncs from its cache;
// an explicit change in between must not be hidden by it.
func TestSyncSeesExplicitChanges(t *testing.T) {
	ctx := context.Background()
	s, db, _, now := newService(t)
	const u = "@alice:axon.test"
	for i := 0; i < 3; i++ { // the later syncs are answered from the cache
		if err := s.FromSync(ctx, u, ""); err != nil {
			t.Fatal(err)
		}
		*now = now.Add(time.Second)
	}
	if err := s.Set(ctx, u, Unavailable, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.FromSync(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	if p, err := db.GetPresence(ctx, u); err != nil || p.State != Online {
		t.Fatalf("a sync after going unavailable left presence %+v %v", p, err)
	}
}
