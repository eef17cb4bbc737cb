package clientapi_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestMutualRooms(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
	var want []string
	for range 3 {
		room, _ := sharedRoom(t, alice, bob)
		want = append(want, room.String())
	}
	slices.Sort(want)
	// A room bob left and one with carol only do not count.
	left, _ := sharedRoom(t, alice, bob)
	if _, err := bob.LeaveRoom(ctx, left); err != nil {
		t.Fatal(err)
	}
	sharedRoom(t, alice, carol)

	for _, path := range []string{"/mutual_rooms", "/user/mutual_rooms"} {
		status, body := apiCall(t, r, alice, v1, http.MethodGet, path+"?user_id="+esc(bob.UserID.String()), nil)
		if status != 200 || body["count"] != float64(3) || body["next_batch"] != nil {
			t.Fatalf("%s: %d %v", path, status, body)
		}
		var got []string
		for _, x := range body["joined"].([]any) {
			got = append(got, x.(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: joined %v, want %v", path, got, want)
		}
	}
	status, body := apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms?user_id="+esc(carol.UserID.String()), nil)
	if status != 200 || body["count"] != float64(0) || len(body["joined"].([]any)) != 0 {
		t.Fatalf("bob and carol: %d %v", status, body)
	}
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms?user_id="+esc("@nobody:axon.test"), nil)
	if status != 200 || len(body["joined"].([]any)) != 0 {
		t.Fatalf("unknown user: %d %v", status, body)
	}
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms", nil)
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms?user_id="+esc(bob.UserID.String()), nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms?user_id="+esc("@Bad User:axon.test"), nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
	status, body = apiCall(t, r, bob, v1, http.MethodGet, "/mutual_rooms?user_id="+esc(alice.UserID.String())+"&from=bogus", nil)
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")

	// Paging, through the service with a small page.
	var paged []string
	from := ""
	for i := 0; ; i++ {
		page, err := r.Server.Rooms.MutualRooms(ctx, alice.UserID.String(), bob.UserID.String(), from, 2)
		if err != nil {
			t.Fatal(err)
		}
		if page.Count != 3 || len(page.Joined) == 0 || i > 3 {
			t.Fatalf("page %d: %+v", i, page)
		}
		paged = append(paged, page.Joined...)
		if page.NextBatch == "" {
			break
		}
		from = page.NextBatch
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged %v, want %v", paged, want)
	}
	// The token of the last page answered over HTTP continues there.
	page, _ := r.Server.Rooms.MutualRooms(ctx, alice.UserID.String(), bob.UserID.String(), "", 2)
	status, body = apiCall(t, r, alice, v1, http.MethodGet, "/mutual_rooms?user_id="+esc(bob.UserID.String())+"&from="+esc(page.NextBatch), nil)
	if status != 200 || len(body["joined"].([]any)) != 1 || body["joined"].([]any)[0] != want[2] {
		t.Fatalf("from next_batch: %d %v", status, body)
	}
}
