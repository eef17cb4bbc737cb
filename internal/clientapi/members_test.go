package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// memberStates maps each user in a /members chunk to their membership.
func memberStates(t *testing.T, body map[string]any) map[string]string {
	t.Helper()
	chunk, ok := body["chunk"].([]any)
	if !ok {
		t.Fatalf("no chunk in %v", body)
	}
	out := map[string]string{}
	for _, c := range chunk {
		ev := c.(map[string]any)
		out[ev["state_key"].(string)] = ev["content"].(map[string]any)["membership"].(string)
	}
	return out
}

func TestRoomMembers(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, carol, eve := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol"), r.CreateUser("eve")
	room, _ := sharedRoom(t, alice, bob) // both joined
	members := func(c *mautrix.Client, q url.Values) (int, map[string]any) {
		t.Helper()
		return apiCall(t, r, c, v3, http.MethodGet, fmt.Sprintf("/rooms/%s/members?%s", url.PathEscape(room.String()), q.Encode()), nil)
	}
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	status, body := members(alice, url.Values{})
	got := memberStates(t, body)
	if status != 200 || len(got) != 3 || got[alice.UserID.String()] != "join" || got[carol.UserID.String()] != "invite" {
		t.Fatalf("members %d %v", status, got)
	}
	if _, body = members(alice, url.Values{"membership": {"invite"}}); len(memberStates(t, body)) != 1 {
		t.Fatalf("membership=invite: %v", memberStates(t, body))
	}
	if _, body = members(alice, url.Values{"not_membership": {"invite"}}); len(memberStates(t, body)) != 2 {
		t.Fatalf("not_membership=invite: %v", memberStates(t, body))
	}
	// at: a token from before eve's invite shows the room without her.
	before := initialSync(t, alice)
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: eve.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, body = members(alice, url.Values{"at": {before}}); memberStates(t, body)[eve.UserID.String()] != "" {
		t.Fatalf("members at a token before eve's invite list her: %v", memberStates(t, body))
	}
	if _, body = members(alice, url.Values{}); memberStates(t, body)[eve.UserID.String()] != "invite" {
		t.Fatalf("eve's invite missing now: %v", memberStates(t, body))
	}

	// Bob leaves; what happens after is not his to see, even with a later
	// at token.
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	testrig.Join(t, room, carol)
	later := initialSync(t, alice)
	for _, q := range []url.Values{{}, {"at": {later}}} {
		status, body = members(bob, q)
		got = memberStates(t, body)
		if status != 200 || got[carol.UserID.String()] != "invite" {
			t.Fatalf("bob after leaving (%v) sees %d %v; want carol still invited", q, status, got)
		}
	}
	// Outsiders and bad tokens.
	status, body = members(r.CreateUser("mallory"), url.Values{})
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN")
	if status, _ = members(alice, url.Values{"at": {"nonsense"}}); status != http.StatusBadRequest {
		t.Fatalf("bad at token: %d", status)
	}
}

// A third-party invite needs an identity server, which Axon trusts none
// of: the spec's parameter errors first, then M_SERVER_NOT_TRUSTED, and
// the room is unchanged.
func TestThirdPartyInviteRefused(t *testing.T) {
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, _ := sharedRoom(t, alice, bob)
	invite := func(body any) (int, map[string]any) {
		t.Helper()
		return apiCall(t, r, alice, v3, http.MethodPost, "/rooms/"+esc(room.String())+"/invite", body)
	}
	full := map[string]any{"id_server": "id.example.org", "id_access_token": "abc", "medium": "email", "address": "carol@example.org"}
	status, body := invite(full)
	wantAPIError(t, status, body, http.StatusBadRequest, "M_SERVER_NOT_TRUSTED")
	for _, missing := range []string{"id_server", "id_access_token", "medium", "address"} {
		partial := map[string]any{}
		for k, v := range full {
			if k != missing {
				partial[k] = v
			}
		}
		status, body = invite(partial)
		wantAPIError(t, status, body, http.StatusBadRequest, "M_MISSING_PARAM", "without "+missing)
	}
	status, body = invite(map[string]any{})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_MISSING_PARAM", "empty body")
	// Nothing changed: still the two members, and inviting by ID works.
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/members", nil)
	if got := memberStates(t, body); status != 200 || len(got) != 2 {
		t.Fatalf("members after refused invites: %d %v", status, got)
	}
	carol := r.CreateUser("carol")
	if status, body = invite(map[string]any{"user_id": carol.UserID.String()}); status != 200 {
		t.Fatalf("invite by user ID: %d %v", status, body)
	}
}

// TestReinviteCreatorBeforeV12: sytest's "we can be reinvited to a room we
// created", in a room of version 11, where the creator may be named in the
// power levels (v12 refuses that, so the same steps cannot start there).
func TestReinviteCreatorBeforeV12(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: "11", Invite: []id.UserID{bob.UserID}})
	testrig.Join(t, room, bob)
	if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/state/m.room.power_levels/", map[string]any{
		"invite": 100, "users": map[string]any{alice.UserID.String(): 100, bob.UserID.String(): 100}}); status != 200 {
		t.Fatalf("power levels: %d %v", status, body)
	}
	if _, err := alice.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: alice.UserID}); err != nil {
		t.Fatalf("reinvite the creator: %v", err)
	}
	if _, err := alice.JoinRoomByID(ctx, room); err != nil {
		t.Fatalf("creator rejoins: %v", err)
	}
}
