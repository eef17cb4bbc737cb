package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestUserDirectory(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob, carol, dave := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol"), r.CreateUser("dave")
	name, avatar := "Alice Liddell", "mxc://axon.test/rabbit"
	if err := r.Server.DB.SetProfile(ctx, alice.UserID.String(), &name, &avatar); err != nil {
		t.Fatal(err)
	}
	// alice is in a public room; dave only in a private one with bob.
	if _, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"}); err != nil {
		t.Fatal(err)
	}
	sharedRoom(t, bob, dave)

	res, err := carol.SearchUserDirectory(ctx, "liddell", 10)
	if err != nil || len(res.Results) != 1 || res.Limited {
		t.Fatalf("search: %+v %v", res, err)
	}
	// mautrix reads "displayname"; the spec's key here is display_name.
	if u := res.Results[0]; u.UserID != alice.UserID || u.Extra["display_name"] != name || u.AvatarURL.String() != avatar {
		t.Fatalf("result: %+v", u)
	}
	// Localpart, case-insensitively.
	if res, err := carol.SearchUserDirectory(ctx, "ALI", 10); err != nil || len(res.Results) != 1 {
		t.Fatalf("localpart search: %+v %v", res, err)
	}
	// dave is invisible to carol but visible to bob, who shares a room.
	if res, err := carol.SearchUserDirectory(ctx, "dave", 10); err != nil || len(res.Results) != 0 {
		t.Fatalf("carol found dave: %+v %v", res, err)
	}
	if res, err := bob.SearchUserDirectory(ctx, "dave", 10); err != nil || len(res.Results) != 1 {
		t.Fatalf("bob did not find dave: %+v %v", res, err)
	}
	// The server name is not a search hit for everyone.
	if res, err := carol.SearchUserDirectory(ctx, "axon", 10); err != nil || len(res.Results) != 0 {
		t.Fatalf("server-name search: %+v %v", res, err)
	}

	// limited, and the exact match ranks first.
	for _, lp := range []string{"alex", "alfred", "al"} {
		u := r.CreateUser(lp)
		if _, err := u.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = carol.SearchUserDirectory(ctx, "al", 2)
	if err != nil || len(res.Results) != 2 || !res.Limited || res.Results[0].UserID != r.UserID("al") {
		t.Fatalf("limited: %+v %v", res, err)
	}

	status, body := apiCall(t, r, carol, v3, http.MethodPost, "/user_directory/search", map[string]any{})
	wantAPIError(t, status, body, 400, "M_MISSING_PARAM")
	status, body = apiCall(t, r, carol, v3, http.MethodPost, "/user_directory/search", map[string]any{"search_term": 5})
	wantAPIError(t, status, body, 400, "M_BAD_JSON")
}
