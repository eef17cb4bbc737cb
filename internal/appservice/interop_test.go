package appservice_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	mxas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestMautrixAppService runs mautrix-go's application service framework,
// which most bridges are built on, against Axon: its own registration file,
// its ping, user registration, identity assertion, timestamp massaging, and
// its transaction endpoint with its hs_token check.
func TestMautrixAppService(t *testing.T) {
	ctx := context.Background()
	// The service's listener exists first: its URL goes in the file.
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)

	reg := mxas.CreateRegistration()
	reg.ID = "mautrix"
	reg.URL = srv.URL
	reg.SenderLocalpart = "mxbot"
	reg.EphemeralEvents = true
	reg.MSC4190 = true
	reg.MSC3202 = true
	reg.Namespaces.UserIDs = mxas.NamespaceList{{Regex: `@mx_.*:axon\.test`, Exclusive: true}}
	file := filepath.Join(t.TempDir(), "registration.yaml")
	if err := reg.Save(file); err != nil {
		t.Fatal(err)
	}
	r := testrig.Start(t, func(c *config.Config) { c.AppServiceConfigFiles = []string{file} })
	r.Server.AppServices.SetBackoff(20*time.Millisecond, 200*time.Millisecond)

	as, err := mxas.CreateFull(mxas.CreateOpts{Registration: reg, HomeserverDomain: "axon.test", HomeserverURL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Router

	if !as.BotIntent().EnsureAppserviceConnection(ctx) {
		t.Fatal("mautrix's ping failed")
	}
	ghost := as.Intent("@mx_carol:axon.test")
	if err := ghost.EnsureRegistered(ctx); err != nil {
		t.Fatalf("register ghost: %v", err)
	}

	alice := r.CreateUser("alice")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{ghost.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ghost.EnsureJoined(ctx, room.RoomID); err != nil {
		t.Fatalf("ghost joins: %v", err)
	}
	sent, err := ghost.SendMassagedMessageEvent(ctx, room.RoomID, event.EventMessage,
		&event.MessageEventContent{MsgType: event.MsgText, Body: "from the other network"}, 1700000000000)
	if err != nil {
		t.Fatalf("ghost sends: %v", err)
	}
	ev, err := alice.GetEvent(ctx, room.RoomID, sent.EventID)
	if err != nil || ev.Sender != ghost.UserID || ev.Timestamp != 1700000000000 {
		t.Fatalf("ghost's message as alice sees it: %+v %v", ev, err)
	}

	if _, err := alice.SendText(ctx, room.RoomID, "to the other network"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case evt := <-as.Events:
			if evt.Type == event.EventMessage && evt.Sender == alice.UserID && evt.RoomID == room.RoomID {
				done = evt.Content.AsMessage().Body == "to the other network"
			}
		case <-deadline:
			t.Fatal("mautrix did not receive alice's message")
		}
	}

	// End-to-bridge encryption plumbing: a device made with MSC4190, its
	// one-time key count (MSC3202) and a to-device message for it
	// (MSC2409), as mautrix parses them.
	bot := as.BotClient()
	if err := bot.CreateDeviceMSC4190(ctx, "BRIDGEDEV", "bridge"); err != nil {
		t.Fatalf("MSC4190 device: %v", err)
	}
	if _, err := bot.UploadKeys(ctx, &mautrix.ReqUploadKeys{OneTimeKeys: map[id.KeyID]mautrix.OneTimeKey{
		"curve25519:AAAA": {Key: "a2V5MQ", IsSigned: false}, "curve25519:AAAB": {Key: "a2V5Mg", IsSigned: false},
	}}); err != nil {
		t.Fatalf("upload keys through the as_token: %v", err)
	}
	if _, err := alice.SendToDevice(ctx, event.ToDeviceRoomKeyRequest, &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		bot.UserID: {"BRIDGEDEV": {Raw: map[string]any{"action": "request_cancellation", "request_id": "r1", "requesting_device_id": "X"}}},
	}}); err != nil {
		t.Fatalf("to-device: %v", err)
	}
	gotCount, gotToDevice := false, false
	for !gotCount || !gotToDevice {
		select {
		case c := <-as.OTKCounts:
			if c.UserID == bot.UserID && c.DeviceID == "BRIDGEDEV" && c.Curve25519 == 2 {
				gotCount = true
			}
		case evt := <-as.ToDeviceEvents:
			if evt.Sender == alice.UserID && evt.ToUserID == bot.UserID && evt.ToDeviceID == "BRIDGEDEV" && evt.Type == event.ToDeviceRoomKeyRequest {
				gotToDevice = true
			}
		case <-as.Events:
		case <-deadline:
			t.Fatalf("mautrix got one-time key count %v, to-device message %v", gotCount, gotToDevice)
		}
	}
}
