package clientapi_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
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
		registerAS(t, r, "_bridge_ann")
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

// TestAppServiceRoomNamespace checks a service gets the events of rooms
// its rooms namespace matches, and of rooms with an alias its aliases
// namespace matches, though none of its users is in them; and not those
// of other rooms.
func TestAppServiceRoomNamespace(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	roomA := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	roomB := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	roomC := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "public_c"})
	r.Stop()

	f := newFakeAS(t)
	reg := strings.Replace(bridgeRegistration(f.srv.URL), "  rooms: []\n",
		"  rooms:\n    - exclusive: false\n      regex: \""+regexp.QuoteMeta(roomA.String())+"\"\n", 1)
	reg = strings.Replace(reg, "  aliases:\n", "  aliases:\n    - exclusive: false\n      regex: \"#public_.*\"\n", 1)
	file := writeRegistration(t, t.TempDir(), "bridge.yaml", reg)
	r = testrig.StartIn(t, r.DataDir, func(c *config.Config) { c.AppServiceConfigFiles = []string{file} })
	for _, m := range []struct {
		room id.RoomID
		body string
	}{{roomB, "in B"}, {roomA, "in A"}, {roomC, "in C"}} {
		if status, body := apiCall(t, r, alice, v3, "PUT", "/rooms/"+esc(m.room.String())+"/send/m.room.message/"+esc(m.body), map[string]any{"msgtype": "m.text", "body": m.body}); status != 200 {
			t.Fatalf("send %s: %d %v", m.body, status, body)
		}
	}
	f.waitFor("the message in C", func() bool { return slices.Contains(f.deliveredBodies(), "in C") })
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.deliveredBodies(), ","); got != "in A,in C" {
		t.Errorf("delivered: %s (want the rooms of the namespaces only)", got)
	}
}
