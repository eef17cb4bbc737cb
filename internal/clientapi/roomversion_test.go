package clientapi_test

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestDefaultRoomVersionSetting: default_room_version decides the version
// of rooms created without one and is what the capabilities advertise; a
// client may still ask for another.
func TestDefaultRoomVersionSetting(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		setting, want string
	}{{"", "12"}, {"11", "11"}} {
		r := testrig.Start(t, func(c *config.Config) {
			if tc.setting != "" {
				c.DefaultRoomVersion = tc.setting
			}
		})
		alice := r.CreateUser("alice")
		caps, err := alice.Capabilities(ctx)
		if err != nil || caps.RoomVersions == nil || caps.RoomVersions.Default != tc.want {
			t.Fatalf("setting %q: capabilities %+v %v", tc.setting, caps.RoomVersions, err)
		}
		room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat"})
		var create event.CreateEventContent
		if err := alice.StateEvent(ctx, room, event.StateCreate, "", &create); err != nil {
			t.Fatal(err)
		}
		if string(create.RoomVersion) != tc.want {
			t.Errorf("setting %q: room version %q, want %s", tc.setting, create.RoomVersion, tc.want)
		}
		// Room IDs of v11 rooms name the server, which older clients need.
		if hasServer := strings.Contains(room.String(), ":"); hasServer != (tc.want == "11") {
			t.Errorf("setting %q: room ID %s", tc.setting, room)
		}
		asked := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: "10"})
		if err := alice.StateEvent(ctx, asked, event.StateCreate, "", &create); err != nil || create.RoomVersion != "10" {
			t.Errorf("setting %q: asked for 10, got %q %v", tc.setting, create.RoomVersion, err)
		}
	}
}
