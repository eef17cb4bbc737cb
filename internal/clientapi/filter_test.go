package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestFilters(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, _ := sharedRoom(t, alice, bob)
	for i := 0; i < 3; i++ {
		if _, err := alice.SendText(ctx, room, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	filterPath := "/user/" + url.PathEscape(alice.UserID.String()) + "/filter"
	def := map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}}
	status, body := apiCall(t, r, alice, v3, http.MethodPost, filterPath, def)
	id, _ := body["filter_id"].(string)
	if status != 200 || id == "" {
		t.Fatalf("create filter: %d %v", status, body)
	}
	// Read back as uploaded.
	status, body = apiCall(t, r, alice, v3, http.MethodGet, filterPath+"/"+id, nil)
	if status != 200 || fmt.Sprint(body) != fmt.Sprint(def) {
		t.Fatalf("get filter: %d %v", status, body)
	}
	// /sync by ID and inline both apply it: one event, limited.
	for _, f := range []string{id, `{"room":{"timeline":{"limit":1}}}`} {
		status, body = apiCall(t, r, alice, v3, http.MethodGet, "/sync?filter="+url.QueryEscape(f), nil)
		tl := body["rooms"].(map[string]any)["join"].(map[string]any)[room.String()].(map[string]any)["timeline"].(map[string]any)
		if status != 200 || len(tl["events"].([]any)) != 1 || tl["limited"] != true {
			t.Fatalf("sync with filter %s: %d %v", f, status, tl)
		}
	}

	// Errors, none of which stores anything.
	status, body = apiCall(t, r, bob, v3, http.MethodGet, filterPath+"/"+id, nil)
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN")
	status, body = apiCall(t, r, bob, v3, http.MethodPost, filterPath, def)
	wantAPIError(t, status, body, http.StatusForbidden, "M_FORBIDDEN")
	status, body = apiCall(t, r, alice, v3, http.MethodGet, filterPath+"/999999", nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, http.MethodGet, filterPath+"/abc", nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, filterPath, "{")
	wantAPIError(t, status, body, http.StatusBadRequest, "M_NOT_JSON")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, filterPath, "[1]")
	wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON")
	status, body = apiCall(t, r, alice, v3, http.MethodPost, filterPath, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": "one"}}})
	if status != http.StatusBadRequest {
		t.Fatalf("filter with a string limit: %d %v", status, body)
	}
	// The schema makes senders user IDs and rooms room IDs: a filter
	// naming anything else is refused, wherever the list is.
	for _, bad := range []map[string]any{
		{"room": map[string]any{"timeline": map[string]any{"senders": []string{"not_a_sender_id"}}}},
		{"room": map[string]any{"timeline": map[string]any{"rooms": []string{"not_a_room_id"}}}},
		{"room": map[string]any{"state": map[string]any{"not_senders": []string{"#alias:x"}}}},
		{"room": map[string]any{"not_rooms": []string{"@user:x"}}},
		{"presence": map[string]any{"senders": []string{""}}},
	} {
		status, body = apiCall(t, r, alice, v3, http.MethodPost, filterPath, bad)
		wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON", fmt.Sprint("filter ", bad))
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/rooms/"+esc(room.String())+"/messages?dir=b&filter="+
		url.QueryEscape(`{"senders":["nobody"]}`), nil)
	wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON", "/messages filter with a bad sender")
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/sync?filter=abc", nil)
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM")
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/sync?filter=424242", nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND")
}
