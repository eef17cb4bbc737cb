package clientapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/testrig"
)

// TestAppServiceMSC2409UnstableNames checks a registration with MSC2409's
// unstable switch gets typing notifications and to-device messages under
// the unstable names as well (bridges on matrix-bot-sdk read only those),
// and one with the spec's receive_ephemeral only under the stable ones.
func TestAppServiceMSC2409UnstableNames(t *testing.T) {
	for _, unstable := range []bool{true, false} {
		f := newFakeAS(t)
		reg := bridgeRegistration(f.srv.URL)
		if unstable {
			reg = strings.Replace(reg, "receive_ephemeral: true", "de.sorunome.msc2409.push_ephemeral: true", 1)
		}
		r, _ := startWithRegistrations(t, reg)
		ctx := context.Background()
		const v3 = "/_matrix/client/v3"
		const ann = "@_bridge_ann:axon.test"
		alice := r.CreateUser("alice")
		if status, body := asCall(t, r, "POST", v3+"/register", "", map[string]any{"type": "m.login.application_service", "username": "_bridge_ann", "inhibit_login": true}); status != 200 {
			t.Fatalf("register: %d %v", status, body)
		}
		if status, body := asCall(t, r, "PUT", v3+"/devices/ANNDEV", ann, map[string]any{}); status != 200 {
			t.Fatalf("create device: %d %v", status, body)
		}
		room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
		if status, body := asCall(t, r, "POST", v3+"/join/"+esc(room.String()), ann, map[string]any{}); status != 200 {
			t.Fatalf("join: %d %v", status, body)
		}
		if _, err := alice.UserTyping(ctx, room, true, 10000); err != nil {
			t.Fatal(err)
		}
		if status, body := apiCall(t, r, alice, v3, "PUT", "/sendToDevice/m.test/txn1", map[string]any{
			"messages": map[string]any{ann: map[string]any{"ANNDEV": map[string]any{"hello": "ann"}}}}); status != 200 {
			t.Fatalf("sendToDevice: %d %v", status, body)
		}
		type lists struct {
			Ephemeral, ToDevice, UnstableEphemeral, UnstableToDevice []struct {
				Type string `json:"type"`
			}
		}
		read := func(raw []byte) lists {
			var b map[string]json.RawMessage
			json.Unmarshal(raw, &b)
			var l lists
			json.Unmarshal(b["ephemeral"], &l.Ephemeral)
			json.Unmarshal(b["to_device"], &l.ToDevice)
			json.Unmarshal(b["de.sorunome.msc2409.ephemeral"], &l.UnstableEphemeral)
			json.Unmarshal(b["de.sorunome.msc2409.to_device"], &l.UnstableToDevice)
			return l
		}
		var typing, toDevice, unstableTyping, unstableToDevice bool
		f.waitFor("typing and the to-device message", func() bool {
			for _, txn := range f.delivered {
				l := read(txn.Body)
				for _, e := range l.Ephemeral {
					typing = typing || e.Type == "m.typing"
				}
				for _, e := range l.UnstableEphemeral {
					unstableTyping = unstableTyping || e.Type == "m.typing"
				}
				toDevice = toDevice || len(l.ToDevice) > 0
				unstableToDevice = unstableToDevice || len(l.UnstableToDevice) > 0
			}
			return typing && toDevice
		})
		if unstableTyping != unstable || unstableToDevice != unstable {
			t.Errorf("unstable switch %v: typing under the unstable name %v, to-device %v", unstable, unstableTyping, unstableToDevice)
		}
	}
}
