package clientapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// typingUsers returns the user_ids of the m.typing event for a room, and
// whether there was one.
func typingUsers(s *mautrix.RespSync, roomID id.RoomID) ([]any, bool) {
	for _, ev := range ephemeralOf(s, roomID) {
		if ev.Type.Type == "m.typing" {
			users, _ := ev.Content.Raw["user_ids"].([]any)
			return users, true
		}
	}
	return nil, false
}

func TestTypingAppearsAndClears(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	since := initialSync(t, bob)

	if _, err := alice.UserTyping(ctx, roomID, true, 30*time.Second); err != nil {
		t.Fatalf("typing: %v", err)
	}
	resp := syncUntil(t, bob, since, func(s *mautrix.RespSync) bool {
		users, ok := typingUsers(s, roomID)
		return ok && len(users) == 1 && users[0] == alice.UserID.String()
	})
	if _, err := alice.UserTyping(ctx, roomID, false, 0); err != nil {
		t.Fatalf("stop typing: %v", err)
	}
	syncUntil(t, bob, resp.NextBatch, func(s *mautrix.RespSync) bool {
		users, ok := typingUsers(s, roomID)
		return ok && len(users) == 0
	})

	// A short timeout expires on its own.
	if _, err := alice.UserTyping(ctx, roomID, true, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp = syncUntil(t, bob, initialSync(t, bob), func(s *mautrix.RespSync) bool {
		users, ok := typingUsers(s, roomID)
		return ok && len(users) == 0
	})
	if time.Since(start) > 5*time.Second {
		t.Fatalf("typing took %v to expire", time.Since(start))
	}
}

func TestTypingErrors(t *testing.T) {
	r := testrig.Start(t)
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	roomID, _ := sharedRoom(t, alice, bob)
	path := func(user id.UserID) string { return "/rooms/" + esc(roomID.String()) + "/typing/" + esc(user.String()) }

	status, body := apiCall(t, r, alice, v3, http.MethodPut, path(bob.UserID), map[string]any{"typing": true})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, carol, v3, http.MethodPut, path(carol.UserID), map[string]any{"typing": true})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, path(alice.UserID), map[string]any{"timeout": 1000})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, path(alice.UserID), map[string]any{"typing": "yes"})
	wantAPIError(t, status, body, 400, "M_BAD_JSON")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc("!missing:axon.test")+"/typing/"+esc(alice.UserID.String()), map[string]any{"typing": true})
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
}

// A sync from a token taken before anyone typed (typing position 0) is
// still incremental: a typing stop since then reaches it as an empty
// m.typing, rather than being mistaken for an initial sync that leaves
// empty typing out (Complement TestTyping "Typing can be explicitly stopped").
func TestTypingStopReachesSyncFromBeforeFirstTyping(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	before := initialSync(t, bob)

	if _, err := alice.UserTyping(ctx, roomID, true, 30*time.Second); err != nil {
		t.Fatalf("typing: %v", err)
	}
	syncUntil(t, bob, before, func(s *mautrix.RespSync) bool {
		users, ok := typingUsers(s, roomID)
		return ok && len(users) == 1
	})
	if _, err := alice.UserTyping(ctx, roomID, false, 0); err != nil {
		t.Fatalf("stop typing: %v", err)
	}
	resp, err := bob.SyncRequest(ctx, 0, before, "", false, "offline")
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if users, ok := typingUsers(resp, roomID); !ok || len(users) != 0 {
		t.Fatalf("sync since %s: typing %v (present %v), want an empty m.typing", before, users, ok)
	}
}
