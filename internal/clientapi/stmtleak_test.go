package clientapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

// The audit's reproduction of the prepared-statement leak: a user whose
// ignore list takes every size from 1 to 300 reads a thread root after
// each change, then reads it over and over. SQLite's statement memory
// must not grow with the reads (it grew by a statement per read once the
// statement cache was full, and was never freed).
func TestThreadRootReadsWithLongIgnoreListsDoNotLeak(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, _ := sharedRoom(t, alice, bob)
	root := send(t, alice, roomID, map[string]any{"msgtype": "m.text", "body": "root"})
	threadReply(t, alice, roomID, root, "reply")
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID.String()) + "/event/" + url.PathEscape(root)
	read := func() {
		t.Helper()
		status, body := r.JSON(t, http.MethodGet, path, bob.AccessToken, nil)
		rel, _ := body["unsigned"].(map[string]any)["m.relations"].(map[string]any)
		if status != http.StatusOK || rel["m.thread"] == nil {
			t.Fatalf("GET event: %d %v", status, body)
		}
	}
	ignored := map[string]any{}
	for n := 1; n <= 300; n++ {
		ignored[fmt.Sprintf("@ignored%d:axon.test", n)] = map[string]any{}
		if err := bob.SetAccountData(ctx, "m.ignored_user_list", map[string]any{"ignored_users": ignored}); err != nil {
			t.Fatal(err)
		}
		read()
	}
	// A warm-up first: each of the read pool's connections prepares the
	// statements it serves once, a bounded cost that is not the leak.
	for range 100 {
		read()
	}
	filled, err := r.Server.DB.StatementMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		read()
	}
	after, err := r.Server.DB.StatementMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statement memory: %d bytes after the ignore lists and a warm-up, %d after 200 more reads", filled, after)
	// The leak kept a statement per read, about 128 KB each: 200 reads
	// grew it by megabytes. A few statements prepared late stay far below.
	if after > filled+256<<10 {
		t.Fatalf("statement memory grew from %d to %d bytes over 200 reads", filled, after)
	}
}
