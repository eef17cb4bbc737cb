package clientapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// deviceListsIn returns the device_lists.left and .changed users of every
// delivered transaction (call with f.mu held).
func deviceListsIn(f *fakeAS) (left, changed []string) {
	for _, b := range f.txns() {
		if b.DeviceLists != nil {
			left = append(left, b.DeviceLists.Left...)
			changed = append(changed, b.DeviceLists.Changed...)
		}
	}
	return left, changed
}

// TestAppServiceMSC3202Left checks device_lists.left names the users who
// no longer share a room with any of the service's users, and only them.
func TestAppServiceMSC3202Left(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithRegistrations(t, bridgeRegistration(f.srv.URL)+"org.matrix.msc3202: true\n")
	ctx := context.Background()
	const v3 = "/_matrix/client/v3"
	const ann = "@_bridge_ann:axon.test"
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	registerAS(t, r, "_bridge_ann")
	room1 := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	room2 := testrig.CreateRoom(t, bob, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	for _, room := range []string{room1.String(), room2.String()} {
		if status, body := asCall(t, r, "POST", v3+"/join/"+esc(room), ann, map[string]any{}); status != 200 {
			t.Fatalf("ann joins: %d %v", status, body)
		}
	}
	testrig.Join(t, room1, bob)
	// ann joining made alice and bob share a room with her: changed.
	// (Transactions follow the event stream: once a later message is
	// delivered, so is everything before it.)
	mark := func(name string) {
		t.Helper()
		if status, body := asCall(t, r, "PUT", v3+"/rooms/"+esc(room1.String())+"/send/m.room.message/"+name, ann, map[string]any{"msgtype": "m.text", "body": name}); status != 200 {
			t.Fatalf("send: %d %v", status, body)
		}
		f.waitFor(name, func() bool { return slices.Contains(f.deliveredBodies(), name) })
	}
	mark("marker1")
	f.mu.Lock()
	_, changed := deviceListsIn(f)
	f.mu.Unlock()
	if !slices.Contains(changed, alice.UserID.String()) || !slices.Contains(changed, bob.UserID.String()) || slices.Contains(changed, ann) {
		t.Errorf("changed after the joins: %v (want alice and bob, not the service's own user)", changed)
	}
	// A profile change (a join replacing a join) makes nobody new share
	// a room with ann.
	if status, body := asCall(t, r, "PUT", v3+"/profile/"+esc(ann)+"/displayname", ann, map[string]any{"displayname": "Ann"}); status != 200 {
		t.Fatalf("displayname: %d %v", status, body)
	}
	mark("marker2")
	f.mu.Lock()
	_, after := deviceListsIn(f)
	f.mu.Unlock()
	if len(after) != len(changed) {
		t.Errorf("changed after a profile change: %v, before %v", after, changed)
	}
	// bob leaves room1 but still shares room2 with ann; alice shares
	// nothing with ann once she leaves room1.
	if _, err := bob.LeaveRoom(ctx, room1); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.LeaveRoom(ctx, room1); err != nil {
		t.Fatal(err)
	}
	f.waitFor("alice in device_lists.left", func() bool {
		left, _ := deviceListsIn(f)
		return slices.Contains(left, alice.UserID.String())
	})
	f.mu.Lock()
	left, _ := deviceListsIn(f)
	f.mu.Unlock()
	if slices.Contains(left, bob.UserID.String()) || len(left) != 1 {
		t.Fatalf("left after alice's leave: %v (bob still shares room2 with ann)", left)
	}
	// ann leaves room2: bob, the last user she shared a room with, goes.
	if status, body := asCall(t, r, "POST", v3+"/rooms/"+esc(room2.String())+"/leave", ann, map[string]any{}); status != 200 {
		t.Fatalf("ann leaves: %d %v", status, body)
	}
	f.waitFor("bob in device_lists.left", func() bool {
		left, _ := deviceListsIn(f)
		return slices.Contains(left, bob.UserID.String())
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	left, _ = deviceListsIn(f)
	if strings.Join(left, ",") != alice.UserID.String()+","+bob.UserID.String() {
		t.Errorf("device_lists.left over all transactions: %v", left)
	}
}

// TestAppServiceMSC3202Invitees checks MSC3202's device lists count a
// room's invited members as sharing it with the service's users, as /sync
// does (clients encrypt for invitees): the invite puts the invitee in
// device_lists.changed, their key upload is reported, and rejecting the
// invite puts them in left.
func TestAppServiceMSC3202Invitees(t *testing.T) {
	f := newFakeAS(t)
	r, _ := startWithRegistrations(t, bridgeRegistration(f.srv.URL)+"org.matrix.msc3202: true\n")
	ctx := context.Background()
	const ann = "@_bridge_ann:axon.test"
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	registerAS(t, r, "_bridge_ann")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if status, body := asCall(t, r, "POST", v3+"/join/"+esc(room.String()), ann, map[string]any{}); status != 200 {
		t.Fatalf("ann joins: %d %v", status, body)
	}
	// changedBob counts the transactions naming bob in changed, leftBob
	// those naming him in left (call with f.mu held).
	changedBob := func() (changed, left int) {
		for _, b := range f.txns() {
			if b.DeviceLists != nil {
				if slices.Contains(b.DeviceLists.Changed, bob.UserID.String()) {
					changed++
				}
				if slices.Contains(b.DeviceLists.Left, bob.UserID.String()) {
					left++
				}
			}
		}
		return changed, left
	}
	mark := func(name string) {
		t.Helper()
		testrig.SendText(t, alice, room, name)
		f.waitFor(name, func() bool { return slices.Contains(f.deliveredBodies(), name) })
	}
	mark("before the invite")
	f.mu.Lock()
	ch, left := changedBob()
	f.mu.Unlock()
	if ch != 0 || left != 0 {
		t.Fatalf("bob, in no room, in %d changed and %d left lists", ch, left)
	}
	// bob is invited (not joined): he shares the room with ann now.
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	mark("after the invite")
	f.mu.Lock()
	ch, left = changedBob()
	f.mu.Unlock()
	if ch != 1 || left != 0 {
		t.Fatalf("after bob's invite: in %d changed and %d left lists, want 1 and 0", ch, left)
	}
	// bob, still only invited, uploads device keys: the service is told.
	r.UploadDeviceKeys(t, bob)
	f.waitFor("bob's key upload in changed", func() bool {
		ch, _ := changedBob()
		return ch == 2
	})
	// bob rejects the invite: he shares no room with ann any more.
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	f.waitFor("bob in device_lists.left", func() bool {
		_, left := changedBob()
		return left > 0
	})
	mark("after the rejection")
	f.mu.Lock()
	defer f.mu.Unlock()
	all, _ := deviceListsIn(f)
	if strings.Join(all, ",") != bob.UserID.String() {
		t.Errorf("device_lists.left over all transactions: %v (only bob, alice still shares the room)", all)
	}
	if ch, _ := changedBob(); ch != 2 {
		t.Errorf("bob in %d changed lists after his rejection, want still 2", ch)
	}
}

// TestAppServiceMSC3202CountsAtStart checks a service gets the current key
// counts of its users' devices once when the server starts, also for
// changes it was never told about (here: made before it opted in).
func TestAppServiceMSC3202CountsAtStart(t *testing.T) {
	f := newFakeAS(t)
	r, opt := startWithRegistrations(t, bridgeRegistration(f.srv.URL))
	const v3 = "/_matrix/client/v3"
	const ann = "@_bridge_ann:axon.test"
	registerAS(t, r, "_bridge_ann")
	for _, dev := range []string{"ANNDEV", "NOKEYS"} {
		if status, body := asCall(t, r, "PUT", v3+"/devices/"+dev, ann, map[string]any{}); status != 200 {
			t.Fatalf("create device: %d %v", status, body)
		}
	}
	if status, body := asCall(t, r, "POST", v3+"/keys/upload?device_id=ANNDEV", ann, map[string]any{
		"one_time_keys": map[string]any{"curve25519:AAAA": "a2V5MQ", "curve25519:AAAB": "a2V5Mg", "curve25519:AAAC": "a2V5Mw"}}); status != 200 {
		t.Fatalf("keys upload: %d %v", status, body)
	}
	r.Stop()
	// The service opts into MSC3202: its registration changes.
	f.mu.Lock()
	f.delivered, f.attempts = nil, nil
	f.mu.Unlock()
	regFile := writeRegistration(t, t.TempDir(), "bridge.yaml", bridgeRegistration(f.srv.URL)+"org.matrix.msc3202: true\n")
	r = testrig.StartIn(t, r.DataDir, opt, func(c *config.Config) { c.AppServiceConfigFiles = []string{regFile} })
	f.waitFor("the counts at start", func() bool { return len(f.delivered) > 0 })
	f.mu.Lock()
	b := decodeTxn(t, f.delivered[0].Body)
	f.mu.Unlock()
	if b.Counts[ann]["ANNDEV"]["curve25519"] != 3 || len(b.Counts) != 1 || len(b.Counts[ann]) != 1 {
		t.Fatalf("counts at start: %v (want ANNDEV's 3 keys, and no device without keys)", b.Counts)
	}
	// Once: the next transaction carries events, not the counts again.
	if status, body := asCall(t, r, "POST", v3+"/createRoom", ann, map[string]any{}); status != 200 {
		t.Fatalf("createRoom: %d %v", status, body)
	}
	f.waitFor("a second transaction", func() bool { return len(f.delivered) > 1 })
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, txn := range f.delivered[1:] {
		b := decodeTxn(t, txn.Body)
		if len(b.Counts) != 0 {
			t.Errorf("counts sent again: %s", txn.Body)
		}
	}
}
