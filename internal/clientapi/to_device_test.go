package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// toDeviceOf returns the to-device events of a type in a response.
func toDeviceOf(s *mautrix.RespSync, typ string) []*event.Event {
	var out []*event.Event
	for _, ev := range s.ToDevice.Events {
		if ev.Type.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func TestToDeviceDeliveredOnce(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	bob2 := r.CreateUserDevice("bob", "DEV_bob2", false)
	since, since2 := initialSync(t, bob), initialSync(t, bob2)

	typ := event.Type{Type: "org.example.ping", Class: event.ToDeviceEventType}
	req := &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		bob.UserID: {bob.DeviceID: {Raw: map[string]any{"n": 1}}},
	}}
	if _, err := alice.SendToDevice(ctx, typ, req); err != nil {
		t.Fatalf("send: %v", err)
	}
	// A retried transaction (same txn ID) must not queue again.
	path := "/sendToDevice/org.example.ping/txn1"
	body := map[string]any{"messages": map[string]any{bob.UserID.String(): map[string]any{"*": map[string]any{"n": 2}}}}
	for range 2 {
		if status, resp := apiCall(t, r, alice, v3, http.MethodPut, path, body); status != 200 {
			t.Fatalf("send: %d %v", status, resp)
		}
	}

	resp := syncUntil(t, bob, since, func(s *mautrix.RespSync) bool { return len(toDeviceOf(s, typ.Type)) > 0 })
	got := toDeviceOf(resp, typ.Type)
	if len(got) != 2 || got[0].Sender != alice.UserID || got[0].Content.Raw["n"] != 1.0 || got[1].Content.Raw["n"] != 2.0 {
		t.Fatalf("bob got %d messages: %+v", len(got), got)
	}
	// The next sync acknowledges them: they are not delivered again.
	next, err := bob.SyncRequest(ctx, 300, resp.NextBatch, "", false, event.PresenceOffline)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(toDeviceOf(next, typ.Type)); n != 0 {
		t.Fatalf("redelivered %d messages", n)
	}
	// The second device got only the "*" message, once.
	resp2 := syncUntil(t, bob2, since2, func(s *mautrix.RespSync) bool { return len(toDeviceOf(s, typ.Type)) > 0 })
	if got := toDeviceOf(resp2, typ.Type); len(got) != 1 || got[0].Content.Raw["n"] != 2.0 {
		t.Fatalf("bob2 got %+v", got)
	}

	// Validation.
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{}, "M_MISSING_PARAM"},
		{map[string]any{"messages": map[string]any{"bob": map[string]any{"D": map[string]any{}}}}, "M_INVALID_PARAM"},
		{map[string]any{"messages": map[string]any{bob.UserID.String(): map[string]any{"D": "text"}}}, "M_BAD_JSON"},
		{map[string]any{"messages": []any{}}, "M_BAD_JSON"},
	} {
		status, resp := apiCall(t, r, alice, v3, http.MethodPut, "/sendToDevice/org.example.ping/bad", c.body)
		wantAPIError(t, status, resp, 400, c.code)
	}
}
