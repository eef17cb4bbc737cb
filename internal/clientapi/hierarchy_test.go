package clientapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// hierarchy asks for the space hierarchy below room as c.
func hierarchy(t *testing.T, r *testrig.Rig, c *mautrix.Client, room id.RoomID, query url.Values) (int, map[string]any) {
	t.Helper()
	path := "/rooms/" + esc(room.String()) + "/hierarchy"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return apiCall(t, r, c, v1, http.MethodGet, path, nil)
}

func addChild(t *testing.T, c *mautrix.Client, space, child id.RoomID, content map[string]any) {
	t.Helper()
	if content == nil {
		content = map[string]any{}
	}
	if _, ok := content["via"]; !ok {
		content["via"] = []string{"axon.test"}
	}
	if _, err := c.SendStateEvent(context.Background(), space, event.StateSpaceChild, child.String(), content); err != nil {
		t.Fatalf("add child: %v", err)
	}
}

func TestHierarchy(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	mk := func(req *mautrix.ReqCreateRoom) id.RoomID {
		t.Helper()
		res, err := alice.CreateRoom(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res.RoomID
	}
	space := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Space", CreationContent: map[string]any{"type": "m.space"}})
	public := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Public"})
	private := mk(&mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Private"})
	sub := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Sub", CreationContent: map[string]any{"type": "m.space"}})
	deep := mk(&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Deep"})
	restricted := mk(&mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Restricted", InitialState: []*event.Event{{
		Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
			"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": space.String()}}}},
	}}})
	worldReadable := mk(&mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Readable", InitialState: []*event.Event{{
		Type: event.StateHistoryVisibility, Content: event.Content{Raw: map[string]any{"history_visibility": "world_readable"}},
	}}})

	addChild(t, alice, space, public, map[string]any{"order": "b", "suggested": true})
	addChild(t, alice, space, private, map[string]any{"order": "a"})
	addChild(t, alice, space, sub, map[string]any{"order": "c"})
	addChild(t, alice, space, restricted, map[string]any{"order": "d"})
	addChild(t, alice, space, worldReadable, map[string]any{"order": "e"}) // not suggested
	addChild(t, alice, space, "!elsewhere:remote.example", nil)            // remote: skipped
	addChild(t, alice, space, "!removed:axon.test", map[string]any{"via": []string{}})
	addChild(t, alice, sub, deep, nil)
	addChild(t, alice, sub, space, nil) // a loop: each room once

	// Alice sees everything, breadth first, children in their order.
	status, body := hierarchy(t, r, alice, space, nil)
	want := []string{space.String(), private.String(), public.String(), sub.String(), restricted.String(), worldReadable.String(), deep.String()}
	if status != 200 || !slices.Equal(roomIDs(body), want) {
		t.Fatalf("alice: %d %v\nwant %v", status, roomIDs(body), want)
	}
	first := body["rooms"].([]any)[0].(map[string]any)
	if first["room_type"] != "m.space" || first["name"] != "Space" || first["join_rule"] != "public" || first["num_joined_members"] != float64(1) {
		t.Fatalf("space entry: %v", first)
	}
	if cs := first["children_state"].([]any); len(cs) != 6 || cs[0].(map[string]any)["state_key"] != private.String() ||
		cs[0].(map[string]any)["origin_server_ts"] == nil {
		t.Fatalf("children_state: %v", cs)
	}

	// Bob, a non-member, sees public and world-readable rooms only; the
	// restricted room appears once he joins the space.
	status, body = hierarchy(t, r, bob, space, nil)
	want = []string{space.String(), public.String(), sub.String(), worldReadable.String(), deep.String()}
	if status != 200 || !slices.Equal(roomIDs(body), want) {
		t.Fatalf("bob: %d %v\nwant %v", status, roomIDs(body), want)
	}
	if _, err := bob.JoinRoom(ctx, space.String(), nil); err != nil {
		t.Fatal(err)
	}
	_, body = hierarchy(t, r, bob, space, nil)
	want = []string{space.String(), public.String(), sub.String(), restricted.String(), worldReadable.String(), deep.String()}
	if !slices.Equal(roomIDs(body), want) {
		t.Fatalf("bob joined: %v\nwant %v", roomIDs(body), want)
	}
	if rs := body["rooms"].([]any)[3].(map[string]any); rs["join_rule"] != "restricted" ||
		len(rs["allowed_room_ids"].([]any)) != 1 {
		t.Fatalf("restricted entry: %v", rs)
	}

	// A private root is forbidden to a non-member.
	status, body = hierarchy(t, r, bob, private, nil)
	wantAPIError(t, status, body, 403, "M_FORBIDDEN")
	status, body = hierarchy(t, r, bob, "!missing:axon.test", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND")

	// max_depth and suggested_only.
	_, body = hierarchy(t, r, alice, space, url.Values{"max_depth": {"0"}})
	if got := roomIDs(body); !slices.Equal(got, []string{space.String()}) {
		t.Fatalf("max_depth 0: %v", got)
	}
	_, body = hierarchy(t, r, alice, space, url.Values{"max_depth": {"1"}})
	if got := roomIDs(body); len(got) != 6 {
		t.Fatalf("max_depth 1: %v", got)
	}
	_, body = hierarchy(t, r, alice, space, url.Values{"suggested_only": {"true"}})
	if got := roomIDs(body); !slices.Equal(got, []string{space.String(), public.String()}) {
		t.Fatalf("suggested_only: %v", got)
	}

	// Paging: three pages of 3, 3, 1 rooms cover the walk exactly once.
	var all []string
	from := ""
	for page := 0; page < 5; page++ {
		q := url.Values{"limit": {"3"}}
		if from != "" {
			q.Set("from", from)
		}
		status, body = hierarchy(t, r, alice, space, q)
		if status != 200 {
			t.Fatalf("page %d: %d %v", page, status, body)
		}
		all = append(all, roomIDs(body)...)
		next, _ := body["next_batch"].(string)
		if next == "" {
			break
		}
		from = next
	}
	want = []string{space.String(), private.String(), public.String(), sub.String(), restricted.String(), worldReadable.String(), deep.String()}
	if !slices.Equal(all, want) {
		t.Fatalf("paged: %v\nwant %v", all, want)
	}
	status, body = hierarchy(t, r, alice, space, url.Values{"from": {from}, "suggested_only": {"true"}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = hierarchy(t, r, alice, space, url.Values{"from": {"garbage!"}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = hierarchy(t, r, alice, space, url.Values{"max_depth": {"-1"}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = hierarchy(t, r, alice, space, url.Values{"limit": {"0"}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
}
