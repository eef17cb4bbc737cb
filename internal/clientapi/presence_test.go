package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestPresence(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	sharedRoom(t, alice, bob)
	since := initialSync(t, bob)

	// Never set: offline.
	p, err := bob.GetPresence(ctx, alice.UserID)
	if err != nil || p.Presence != event.PresenceOffline {
		t.Fatalf("initial presence: %+v %v", p, err)
	}
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline, StatusMsg: "at lunch"}); err != nil {
		t.Fatalf("set: %v", err)
	}
	p, err = bob.GetPresence(ctx, alice.UserID)
	if err != nil || p.Presence != event.PresenceOnline || p.StatusMsg != "at lunch" || !p.CurrentlyActive {
		t.Fatalf("presence: %+v %v", p, err)
	}
	syncUntil(t, bob, since, func(s *mautrix.RespSync) bool {
		for _, ev := range s.Presence.Events {
			if ev.Sender == alice.UserID && ev.Content.Raw["presence"] == "online" && ev.Content.Raw["status_msg"] == "at lunch" {
				return true
			}
		}
		return false
	})

	// Omitting status_msg clears it.
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceUnavailable}); err != nil {
		t.Fatal(err)
	}
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/presence/"+esc(alice.UserID.String())+"/status", nil)
	if status != 200 || body["presence"] != "unavailable" || body["status_msg"] != nil {
		t.Fatalf("own presence: %d %v", status, body)
	}

	// Strangers, unknown users, other users' presence, bad states.
	_, err = carol.GetPresence(ctx, alice.UserID)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	_, err = alice.GetPresence(ctx, "@nobody:axon.test")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	_, err = alice.GetPresence(ctx, "@someone:elsewhere.example")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	path := "/presence/" + esc(alice.UserID.String()) + "/status"
	status, body = apiCall(t, r, bob, v3, http.MethodPut, path, map[string]any{"presence": "online"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, path, map[string]any{"presence": "busy"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, path, map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, path, map[string]any{"presence": "online", "status_msg": 3})
	wantAPIError(t, status, body, 400, "M_BAD_JSON")
}

// presenceSenders lists the senders of a sync response's presence events.
func presenceSenders(s *mautrix.RespSync) map[string]bool {
	out := map[string]bool{}
	for _, ev := range s.Presence.Events {
		out[ev.Sender.String()] = true
	}
	return out
}

// Users who come to share a room with the syncing user bring their current
// presence into the incremental sync that shows the join, though they set
// it before the sync token: both the existing member seeing a newcomer and
// the newcomer seeing the room's members (Complement TestMembersLocal and
// TestSync "... presence in incremental sync"). The next sync repeats none.
func TestPresenceOfNewlySharedUsersInIncrementalSync(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	for _, c := range []*mautrix.Client{alice, bob} {
		if err := c.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline}); err != nil {
			t.Fatalf("set presence: %v", err)
		}
	}
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	aliceSince, bobSince := initialSync(t, alice), initialSync(t, bob)
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		who   *mautrix.Client
		since string
		want  string
	}{{alice, aliceSince, bob.UserID.String()}, {bob, bobSince, alice.UserID.String()}} {
		resp, err := c.who.SyncRequest(ctx, 0, c.since, "", false, event.PresenceOffline)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := resp.Rooms.Join[room.RoomID]; !ok {
			t.Fatalf("%s: sync since %s lacks the room", c.who.UserID, c.since)
		}
		if got := presenceSenders(resp); !got[c.want] {
			t.Fatalf("%s: presence in incremental sync from %v, want %s", c.who.UserID, got, c.want)
		}
		resp, err = c.who.SyncRequest(ctx, 0, resp.NextBatch, "", false, event.PresenceOffline)
		if err != nil {
			t.Fatal(err)
		}
		if got := presenceSenders(resp); len(got) != 0 {
			t.Fatalf("%s: next sync repeats presence from %v", c.who.UserID, got)
		}
	}
}
