package clientapi_test

// Helpers shared by the tests of this package: requests, error
// assertions, rooms, sync, and pulling IDs and bodies out of answers.
// Helpers that other packages' tests need too live in internal/testrig.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// API prefixes for apiCall.
const (
	v1 = "/_matrix/client/v1"
	v3 = "/_matrix/client/v3"
)

// apiCall sends a JSON request as c (no token for a nil c) to prefix+path
// and returns the status and the decoded object; body is as for
// testrig.Rig.JSON (nil, a raw string, or a value to marshal).
func apiCall(t testing.TB, r *testrig.Rig, c *mautrix.Client, prefix, method, path string, body any) (int, map[string]any) {
	t.Helper()
	token := ""
	if c != nil {
		token = c.AccessToken
	}
	return r.JSON(t, method, prefix+path, token, body)
}

// wantAPIError fails t unless a raw answer is the Matrix error wantCode
// with status wantStatus. what, if given, says which request it was.
func wantAPIError(t testing.TB, status int, body map[string]any, wantStatus int, wantCode string, what ...any) {
	t.Helper()
	if status != wantStatus || body["errcode"] != wantCode {
		t.Fatalf("%sgot %d %v, want %d %s", label(what), status, body, wantStatus, wantCode)
	}
}

// wantClientError is wantAPIError for the error of a mautrix client call.
func wantClientError(t testing.TB, err error, wantStatus int, wantCode string) {
	t.Helper()
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil || he.RespError == nil {
		t.Fatalf("got %v, want %d %s", err, wantStatus, wantCode)
	}
	if he.Response.StatusCode != wantStatus || he.RespError.ErrCode != wantCode {
		t.Fatalf("got %d %s (%s), want %d %s", he.Response.StatusCode, he.RespError.ErrCode, he.RespError.Err, wantStatus, wantCode)
	}
}

// label turns an optional description into a message prefix.
func label(what []any) string {
	if len(what) == 0 {
		return ""
	}
	return fmt.Sprint(what...) + ": "
}

// esc escapes an ID for a path segment.
func esc(s string) string { return url.PathEscape(s) }

// sharedRoom creates a private room of alice's that bob has joined and
// returns it with one message of alice's ("hello") in it.
func sharedRoom(t testing.TB, alice, bob *mautrix.Client) (id.RoomID, id.EventID) {
	t.Helper()
	roomID := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID}})
	testrig.Join(t, roomID, bob)
	return roomID, testrig.SendText(t, alice, roomID, "hello")
}

// worldReadableRoom creates a public room ("Open house") that anyone may
// read without joining.
func worldReadableRoom(t testing.TB, c *mautrix.Client) id.RoomID {
	t.Helper()
	return testrig.CreateRoom(t, c, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Open house",
		InitialState: []*event.Event{{Type: event.StateHistoryVisibility, Content: event.Content{Raw: map[string]any{"history_visibility": "world_readable"}}}}})
}

// membership is user's membership in roomID as the room's state shows it
// to c ("" when there is none).
func membership(t testing.TB, r *testrig.Rig, c *mautrix.Client, roomID id.RoomID, user id.UserID) string {
	t.Helper()
	status, body := apiCall(t, r, c, v3, http.MethodGet, "/rooms/"+esc(roomID.String())+"/state/m.room.member/"+esc(user.String()), nil)
	if status == http.StatusNotFound {
		return ""
	}
	if status != http.StatusOK {
		t.Fatalf("member state of %s: %d %v", user, status, body)
	}
	m, _ := body["membership"].(string)
	return m
}

// initialSync returns a fresh sync token for c.
func initialSync(t testing.TB, c *mautrix.Client) string {
	t.Helper()
	resp, err := c.SyncRequest(context.Background(), 0, "", "", false, event.PresenceOffline)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return resp.NextBatch
}

// syncUntil long-polls from since until cond holds for one response (or
// fails after a deadline) and returns that response.
func syncUntil(t testing.TB, c *mautrix.Client, since string, cond func(*mautrix.RespSync) bool) *mautrix.RespSync {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.SyncRequest(context.Background(), 2000, since, "", false, event.PresenceOffline)
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		if cond(resp) {
			return resp
		}
		since = resp.NextBatch
	}
	t.Fatalf("condition not met by any sync of %s", c.UserID)
	return nil
}

// syncRaw runs GET /sync with the given query as token's owner and
// returns the body, failing on any status but 200.
func syncRaw(t testing.TB, r *testrig.Rig, token string, q url.Values) map[string]any {
	t.Helper()
	status, body := r.JSON(t, http.MethodGet, v3+"/sync?"+q.Encode(), token, nil)
	if status != http.StatusOK {
		t.Fatalf("sync %v: %d %v", q, status, body)
	}
	return body
}

// ephemeralOf returns the ephemeral events of a joined room in a response.
func ephemeralOf(resp *mautrix.RespSync, roomID id.RoomID) []*event.Event {
	if jr := resp.Rooms.Join[roomID]; jr != nil {
		return jr.Ephemeral.Events
	}
	return nil
}

// fieldOf lists the string field key of each object in a JSON list ("" for
// an object without it).
func fieldOf(list any, key string) []string {
	var out []string
	objs, _ := list.([]any)
	for _, o := range objs {
		obj, _ := o.(map[string]any)
		s, _ := obj[key].(string)
		out = append(out, s)
	}
	return out
}

// chunkIDs lists the event IDs of an answer's chunk (/messages, /relations, ...).
func chunkIDs(body map[string]any) []string { return fieldOf(body["chunk"], "event_id") }

// roomIDs lists the room IDs of an answer's rooms (/hierarchy).
func roomIDs(body map[string]any) []string { return fieldOf(body["rooms"], "room_id") }

// bodiesOf lists "sender:body" of the events that have a text body.
func bodiesOf(evs []*event.Event) []string {
	var out []string
	for _, ev := range evs {
		if b, ok := ev.Content.Raw["body"].(string); ok {
			out = append(out, ev.Sender.String()+":"+b)
		}
	}
	return out
}

// sendersOf is bodiesOf for a JSON event list.
func sendersOf(list any) []string {
	var out []string
	evs, _ := list.([]any)
	for _, e := range evs {
		ev := e.(map[string]any)
		content, _ := ev["content"].(map[string]any)
		if b, ok := content["body"].(string); ok {
			out = append(out, ev["sender"].(string)+":"+b)
		}
	}
	return out
}

// hasSender reports whether user sent one of the "sender:body" entries.
func hasSender(got []string, user id.UserID) bool {
	for _, g := range got {
		if strings.HasPrefix(g, user.String()+":") {
			return true
		}
	}
	return false
}

// bobsRoom creates alice, bob and carol, and a public room of bob's that
// alice and carol have joined (the push and count tests' cast).
func bobsRoom(t testing.TB, r *testrig.Rig) (alice, bob, carol *mautrix.Client, room id.RoomID) {
	t.Helper()
	alice, bob, carol = r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	return alice, bob, carol, testrig.PublicRoom(t, bob, alice, carol)
}
