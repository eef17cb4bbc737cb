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

func TestAliases(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Lobby"})
	alias := id.RoomAlias("#lobby:axon.test")
	if _, err := alice.CreateAlias(ctx, alias, room); err != nil {
		t.Fatalf("create alias: %v", err)
	}
	res, err := bob.ResolveAlias(ctx, alias)
	if err != nil || res.RoomID != room || len(res.Servers) == 0 || res.Servers[0] != "axon.test" {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	// Resolving needs no access token.
	status, body := apiCall(t, r, nil, v3, http.MethodGet, "/directory/room/"+esc(alias.String()), nil)
	if status != 200 || body["room_id"] != room.String() {
		t.Fatalf("anonymous resolve: %d %v", status, body)
	}
	// Join by alias.
	joined, err := bob.JoinRoom(ctx, alias.String(), nil)
	if err != nil || joined.RoomID != room {
		t.Fatalf("join by alias: %+v %v", joined, err)
	}

	_, err = bob.CreateAlias(ctx, alias, room)
	wantClientError(t, err, http.StatusConflict, "M_UNKNOWN")
	_, err = alice.CreateAlias(ctx, "#lobby:elsewhere.example", room)
	wantClientError(t, err, 400, "M_INVALID_PARAM")
	_, err = alice.CreateAlias(ctx, "#nocolon", room)
	wantClientError(t, err, 400, "M_INVALID_PARAM")
	_, err = alice.CreateAlias(ctx, "#other:axon.test", "!missing:axon.test")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	_, err = carol.CreateAlias(ctx, "#carols:axon.test", room)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	_, err = bob.ResolveAlias(ctx, "#missing:axon.test")
	wantClientError(t, err, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/directory/room/"+esc("#x:axon.test"), map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")

	// Local aliases: members only (the room is not world-readable).
	list, err := bob.GetAliases(ctx, room)
	if err != nil || len(list.Aliases) != 1 || list.Aliases[0] != alias {
		t.Fatalf("aliases: %+v %v", list, err)
	}
	_, err = carol.GetAliases(ctx, room)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	_, err = carol.GetAliases(ctx, "!missing:axon.test")
	wantClientError(t, err, 404, "M_NOT_FOUND")

	// bob (joined, power 0) may not delete alice's alias; alice may.
	_, err = bob.DeleteAlias(ctx, alias)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	if _, err := alice.DeleteAlias(ctx, alias); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = bob.ResolveAlias(ctx, alias)
	wantClientError(t, err, 404, "M_NOT_FOUND")
	_, err = alice.DeleteAlias(ctx, alias)
	wantClientError(t, err, 404, "M_NOT_FOUND")
}

func TestDeleteAliasUpdatesCanonicalAlias(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "main"})
	var content event.CanonicalAliasEventContent
	if err := alice.StateEvent(ctx, room, event.StateCanonicalAlias, "", &content); err != nil || content.Alias != "#main:axon.test" {
		t.Fatalf("canonical alias: %+v %v", content, err)
	}
	if _, err := alice.DeleteAlias(ctx, "#main:axon.test"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	content = event.CanonicalAliasEventContent{}
	if err := alice.StateEvent(ctx, room, event.StateCanonicalAlias, "", &content); err != nil || content.Alias != "" {
		t.Fatalf("canonical alias after delete: %+v %v", content, err)
	}
}

func TestPublicRooms(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	big := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Visibility: "public", Preset: "public_chat", Name: "Gardening", Topic: "Roses and tulips", RoomAliasName: "garden"})
	testrig.Join(t, big, bob)
	small := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Cooking"})
	hidden := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Secret"})

	// small is not published until its visibility is set.
	vis := func(roomID id.RoomID) string {
		status, body := apiCall(t, r, nil, v3, http.MethodGet, "/directory/list/room/"+esc(roomID.String()), nil)
		if status != 200 {
			t.Fatalf("visibility: %d %v", status, body)
		}
		return body["visibility"].(string)
	}
	if vis(big) != "public" || vis(small) != "private" {
		t.Fatal("initial visibilities wrong")
	}
	status, body := apiCall(t, r, bob, v3, http.MethodPut, "/directory/list/room/"+esc(small.String()), map[string]any{"visibility": "public"})
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = apiCall(t, r, alice, v3, http.MethodPut, "/directory/list/room/"+esc(small.String()), map[string]any{"visibility": "shown"})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	for _, roomID := range []id.RoomID{small, hidden} {
		if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/directory/list/room/"+esc(roomID.String()), map[string]any{}); status != 200 {
			t.Fatalf("publish: %d %v", status, body)
		}
	}
	if vis(small) != "public" {
		t.Fatal("small not published")
	}
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/directory/list/room/"+esc("!missing:axon.test"), nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// The invite-only room stays out even though published; larger rooms first.
	list, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{})
	if err != nil {
		t.Fatalf("public rooms: %v", err)
	}
	if len(list.Chunk) != 2 || list.TotalRoomCountEstimate != 2 {
		t.Fatalf("public rooms: %+v", list)
	}
	got := list.Chunk[0]
	if got.RoomID != big || got.Name != "Gardening" || got.Topic != "Roses and tulips" || got.CanonicalAlias != "#garden:axon.test" ||
		got.NumJoinedMembers != 2 || got.JoinRule != "public" || got.WorldReadable || got.GuestCanJoin {
		t.Fatalf("entry: %+v", got)
	}
	if list.Chunk[1].RoomID != small {
		t.Fatalf("order: %+v", list.Chunk)
	}

	// Pages of one, forwards and back.
	page1, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 1})
	if err != nil || len(page1.Chunk) != 1 || page1.NextBatch == "" || page1.PrevBatch != "" {
		t.Fatalf("page 1: %+v %v", page1, err)
	}
	page2, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 1, Since: page1.NextBatch})
	if err != nil || len(page2.Chunk) != 1 || page2.Chunk[0].RoomID != small || page2.NextBatch != "" || page2.PrevBatch == "" {
		t.Fatalf("page 2: %+v %v", page2, err)
	}
	back, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{Limit: 1, Since: page2.PrevBatch})
	if err != nil || len(back.Chunk) != 1 || back.Chunk[0].RoomID != big {
		t.Fatalf("back: %+v %v", back, err)
	}

	// POST with a search term; unauthenticated GET works; other servers do not.
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "TULIP"}})
	if chunk, _ := body["chunk"].([]any); status != 200 || len(chunk) != 1 || chunk[0].(map[string]any)["room_id"] != big.String() {
		t.Fatalf("search: %d %v", status, body)
	}
	status, body = apiCall(t, r, bob, v3, http.MethodPost, "/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}})
	if chunk, _ := body["chunk"].([]any); status != 200 || len(chunk) != 0 {
		t.Fatalf("room type filter: %d %v", status, body)
	}
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/publicRooms?limit=5", nil)
	if chunk, _ := body["chunk"].([]any); status != 200 || len(chunk) != 2 {
		t.Fatalf("anonymous: %d %v", status, body)
	}
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/publicRooms?server=elsewhere.example", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/publicRooms?since=bogus", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/publicRooms?limit=ten", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")

	// Unpublishing removes it.
	if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/directory/list/room/"+esc(small.String()), map[string]any{"visibility": "private"}); status != 200 {
		t.Fatalf("unpublish: %d %v", status, body)
	}
	list, err = bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{})
	if err != nil || len(list.Chunk) != 1 {
		t.Fatalf("after unpublish: %+v %v", list, err)
	}
}

// TestAliasPowerBeforeV12: what sytest checks of alias deletion by power
// level, in a room of version 11, where (unlike v12) the creator may be
// named in the power levels' users: a user given power deletes another's
// alias, and a restricted m.room.aliases level does not stop a regular
// member adding and deleting their own (that event type is not used for
// local aliases any more).
func TestAliasPowerBeforeV12(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomVersion: "11", Invite: []id.UserID{bob.UserID}})
	testrig.Join(t, room, bob)
	setPL := func(content map[string]any) {
		t.Helper()
		if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/rooms/"+esc(room.String())+"/state/m.room.power_levels/", content); status != 200 {
			t.Fatalf("power levels: %d %v", status, body)
		}
	}
	setPL(map[string]any{"users": map[string]any{alice.UserID.String(): 100}, "events": map[string]any{"m.room.aliases": 50}})
	own := id.RoomAlias("#bobs:axon.test")
	if _, err := bob.CreateAlias(ctx, own, room); err != nil {
		t.Fatalf("bob adds an alias: %v", err)
	}
	if _, err := bob.DeleteAlias(ctx, own); err != nil {
		t.Fatalf("bob deletes his alias: %v", err)
	}
	others := id.RoomAlias("#alices:axon.test")
	if _, err := alice.CreateAlias(ctx, others, room); err != nil {
		t.Fatal(err)
	}
	_, err := bob.DeleteAlias(ctx, others)
	wantClientError(t, err, 403, "M_FORBIDDEN")
	setPL(map[string]any{"users": map[string]any{alice.UserID.String(): 100, bob.UserID.String(): 100}})
	if _, err := bob.DeleteAlias(ctx, others); err != nil {
		t.Fatalf("bob, with power, deletes alice's alias: %v", err)
	}
}
