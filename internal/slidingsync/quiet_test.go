package slidingsync_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestEncryptionConnectionSleepsThroughRoomEvents: a connection without
// lists or room subscriptions (Element X's encryption sync) is not rebuilt
// for room messages, which cannot change its answer, yet wakes at once for
// what can: to-device messages, device-list changes, account data and
// membership changes.
func TestEncryptionConnectionSleepsThroughRoomEvents(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := createRoom(t, alice, "E")
	invite(t, alice, bob, room)
	testrig.Join(t, room, bob)
	ssvc := r.Server.API.SlidingSync
	on := map[string]any{"enabled": true}
	since := ""
	body := func() map[string]any {
		return map[string]any{"conn_id": "encryption", "extensions": map[string]any{
			"to_device": map[string]any{"enabled": true, "since": since}, "e2ee": on, "account_data": on}}
	}
	resp := ss(t, r, alice, "", 0, body())
	type result struct {
		resp *ssResp
		took time.Duration
	}
	// poll long-polls in the background and waits until it is waiting.
	poll := func() chan result {
		t.Helper()
		out := make(chan result, 1)
		before := ssvc.Builds()
		start := time.Now()
		go func() {
			var res ssResp
			status, raw := ssRaw(t, r, alice, resp.Pos, 10000, body())
			if status != 200 || json.Unmarshal(raw, &res) != nil {
				t.Errorf("long-poll: %d %s", status, raw)
			}
			out <- result{&res, time.Since(start)}
		}()
		for deadline := time.Now().Add(5 * time.Second); ssvc.Builds() == before; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("long-poll never built its first answer")
			}
		}
		return out
	}
	// wait returns the long-poll's answer, which must come promptly.
	wait := func(what string, ch chan result) *ssResp {
		t.Helper()
		select {
		case res := <-ch:
			if res.took > 3*time.Second {
				t.Fatalf("%s: long-poll answered after %v", what, res.took)
			}
			resp = res.resp
			var td struct {
				NextBatch string `json:"next_batch"`
			}
			_ = json.Unmarshal(resp.Extensions["to_device"], &td)
			since = td.NextBatch
			return resp
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: long-poll did not wake", what)
			return nil
		}
	}

	// Room messages: the long-poll sleeps on without building.
	ch := poll()
	builds := ssvc.Builds()
	for i := 0; i < 20; i++ {
		testrig.SendText(t, bob, room, "chatter")
	}
	time.Sleep(100 * time.Millisecond)
	if got := ssvc.Builds() - builds; got != 0 {
		t.Fatalf("20 room messages rebuilt the encryption connection %d times", got)
	}
	select {
	case res := <-ch:
		t.Fatalf("long-poll answered room messages: %+v", res.resp)
	default:
	}
	// A to-device message wakes it.
	if _, err := bob.SendToDevice(ctx, event.Type{Type: "org.example.ping", Class: event.ToDeviceEventType}, &mautrix.ReqSendToDevice{
		Messages: map[id.UserID]map[id.DeviceID]*event.Content{alice.UserID: {alice.DeviceID: {Raw: map[string]any{"n": 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if got := wait("to-device", ch); !strings.Contains(string(got.Extensions["to_device"]), "org.example.ping") {
		t.Fatalf("to_device: %s", got.Extensions["to_device"])
	}

	// A room-mate's new device keys.
	ch = poll()
	testrig.SendText(t, bob, room, "more chatter")
	r.UploadDeviceKeys(t, bob)
	if got := wait("device keys", ch); !strings.Contains(string(got.Extensions["e2ee"]), bob.UserID.String()) {
		t.Fatalf("e2ee after bob's keys: %s", got.Extensions["e2ee"])
	}

	// Global account data.
	ch = poll()
	if err := alice.SetAccountData(ctx, "org.example.setting", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if got := wait("account data", ch); !strings.Contains(string(got.Extensions["account_data"]), "org.example.setting") {
		t.Fatalf("account_data: %s", got.Extensions["account_data"])
	}

	// A new member of a shared room, invited only: alice must start
	// tracking carol (clients encrypt for invitees).
	ch = poll()
	invite(t, alice, carol, room)
	if got := wait("invite", ch); !strings.Contains(string(got.Extensions["e2ee"]), carol.UserID.String()) {
		t.Fatalf("e2ee after carol's invite: %s", got.Extensions["e2ee"])
	}
	// carol rejects it: alice may stop tracking her.
	ch = poll()
	if _, err := carol.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	var e2ee struct {
		DeviceLists struct {
			Left []string `json:"left"`
		} `json:"device_lists"`
	}
	got := wait("rejection", ch)
	if _ = json.Unmarshal(got.Extensions["e2ee"], &e2ee); len(e2ee.DeviceLists.Left) != 1 || e2ee.DeviceLists.Left[0] != carol.UserID.String() {
		t.Fatalf("e2ee after carol's rejection: %s", got.Extensions["e2ee"])
	}
}
