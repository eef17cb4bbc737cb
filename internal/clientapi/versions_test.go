package clientapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestVersions(t *testing.T) {
	r := testrig.Start(t)
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/versions", "", nil)
	if status != 200 {
		t.Fatalf("versions: %d %v", status, body)
	}
	var versions []string
	for _, v := range body["versions"].([]any) {
		versions = append(versions, v.(string))
	}
	for _, want := range []string{"r0.6.1", "v1.1", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"} {
		if !slices.Contains(versions, want) {
			t.Errorf("version %s not advertised: %v", want, versions)
		}
	}
	// Nothing past the spec Axon was checked against (docs/spec-versions.md).
	if slices.Contains(versions, "v1.20") {
		t.Errorf("v1.20 advertised: %v", versions)
	}
	// A probe per version; the behaviour is tested in the files named.
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	// v1.16: use_state_after (sync_state_after_test.go).
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
	if jr := syncRoom(syncRaw(t, r, alice.AccessToken, map[string][]string{"use_state_after": {"true"}}), "join", room); jr["state_after"] == nil || jr["state"] != nil {
		t.Errorf("v1.16 use_state_after: %v", jr)
	}
	// v1.17: the legacy mention push rules are not among the defaults.
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/pushrules/", alice.AccessToken, nil)
	if status != 200 {
		t.Fatalf("pushrules: %d %v", status, body)
	}
	for kind, rules := range body["global"].(map[string]any) {
		for _, rule := range rules.([]any) {
			switch id := rule.(map[string]any)["rule_id"]; id {
			case ".m.rule.contains_display_name", ".m.rule.contains_user_name", ".m.rule.roomnotif":
				t.Errorf("v1.17 removed default rule %s (%s) still served", id, kind)
			}
		}
	}
	// v1.18: invite blocking (invite_permission_test.go).
	if err := bob.SetAccountData(context.Background(), "m.invite_permission_config", map[string]any{"default_action": "block"}); err != nil {
		t.Fatal(err)
	}
	status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+room.String()+"/invite", alice.AccessToken, map[string]any{"user_id": bob.UserID})
	wantAPIError(t, status, body, 403, "M_INVITE_BLOCKED", "v1.18 invite blocking")
	// v1.19: mutual rooms (mutual_rooms_test.go).
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v1/mutual_rooms?user_id="+bob.UserID.String(), alice.AccessToken, nil)
	if status != 200 || body["count"] != float64(0) {
		t.Errorf("v1.19 mutual_rooms: %d %v", status, body)
	}
	// v1.15's room summary is served.
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v1/room_summary/%21nowhere", "", nil)
	wantAPIError(t, status, body, 404, "M_NOT_FOUND", "room summary of an unknown room")
}

// TestUnstableFeatures checks that every advertised unstable feature does
// what it names: each flag has a probe here, and a flag without one fails.
func TestUnstableFeatures(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	roomID, rootID := sharedRoom(t, alice, bob)
	reply, err := alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{
		"msgtype": "m.text", "body": "in thread",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": rootID},
	})
	if err != nil {
		t.Fatal(err)
	}
	receipt := func(typ string, body map[string]any) int {
		status, _ := r.JSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+roomID.String()+"/receipt/"+typ+"/"+reply.EventID.String(), bob.AccessToken, body)
		return status
	}

	probes := map[string]func(t *testing.T){
		"org.matrix.msc3440.stable": func(t *testing.T) {
			status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v1/rooms/"+roomID.String()+"/threads", bob.AccessToken, nil)
			chunk, _ := body["chunk"].([]any)
			if status != 200 || len(chunk) != 1 || chunk[0].(map[string]any)["event_id"] != rootID.String() {
				t.Fatalf("threads: %d %v", status, body)
			}
		},
		"org.matrix.msc2285.stable": func(t *testing.T) {
			if s := receipt("m.read.private", map[string]any{}); s != 200 {
				t.Fatalf("private receipt: %d", s)
			}
			if s := receipt("m.read.secret", map[string]any{}); s != 400 {
				t.Fatalf("unknown receipt type: %d", s)
			}
		},
		"org.matrix.msc3771": func(t *testing.T) {
			if s := receipt("m.read", map[string]any{"thread_id": rootID.String()}); s != 200 {
				t.Fatalf("threaded receipt: %d", s)
			}
			if s := receipt("m.read", map[string]any{"thread_id": "not-an-event"}); s != 400 {
				t.Fatalf("bad thread_id: %d", s)
			}
		},
		"org.matrix.msc3773": func(t *testing.T) {
			carol := r.CreateUser("carol")
			if _, err := alice.InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
				t.Fatal(err)
			}
			testrig.Join(t, roomID, carol)
			if _, err := alice.SendMessageEvent(ctx, roomID, event.EventMessage, map[string]any{
				"msgtype": "m.text", "body": "another in thread",
				"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": rootID},
			}); err != nil {
				t.Fatal(err)
			}
			filter := `{"room":{"timeline":{"unread_thread_notifications":true}}}`
			status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/sync?filter="+filter, carol.AccessToken, nil)
			room, _ := body["rooms"].(map[string]any)["join"].(map[string]any)[roomID.String()].(map[string]any)
			threads, _ := room["unread_thread_notifications"].(map[string]any)
			if status != 200 || threads[rootID.String()] == nil {
				t.Fatalf("unread_thread_notifications: %d %v", status, room)
			}
		},
		"org.matrix.e2e_cross_signing": func(t *testing.T) {
			// Alice uploads a master key and a self-signing key it signs;
			// bob sees both, and replacing them needs her password.
			master, masterPriv := crossSigningKey(t, alice.UserID.String(), "master", nil)
			selfSigning, _ := crossSigningKey(t, alice.UserID.String(), "self_signing", masterPriv)
			status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload", alice.AccessToken,
				map[string]any{"master_key": master, "self_signing_key": selfSigning})
			if status != 200 {
				t.Fatalf("first cross-signing upload: %d %v", status, body)
			}
			status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/keys/query", bob.AccessToken,
				map[string]any{"device_keys": map[string]any{alice.UserID.String(): []string{}}})
			masters, _ := body["master_keys"].(map[string]any)
			selfs, _ := body["self_signing_keys"].(map[string]any)
			if status != 200 || masters[alice.UserID.String()] == nil || selfs[alice.UserID.String()] == nil {
				t.Fatalf("keys/query: %d %v", status, body)
			}
			other, _ := crossSigningKey(t, alice.UserID.String(), "master", nil)
			status, body = r.JSON(t, http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload", alice.AccessToken,
				map[string]any{"master_key": other})
			if status != 401 || body["session"] == nil {
				t.Fatalf("replacing the master key without auth: %d %v", status, body)
			}
		},
		"org.matrix.msc3391": func(t *testing.T) {
			path := "/user/" + esc(bob.UserID.String()) + "/account_data/org.example.probe"
			if status, body := apiCall(t, r, bob, v3, http.MethodPut, path, map[string]any{"a": 1}); status != 200 {
				t.Fatalf("set: %d %v", status, body)
			}
			if status, body := apiCall(t, r, bob, "/_matrix/client/unstable/org.matrix.msc3391", http.MethodDelete, path, nil); status != 200 {
				t.Fatalf("delete: %d %v", status, body)
			}
			status, body := apiCall(t, r, bob, v3, http.MethodGet, path, nil)
			wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "get after delete")
		},
		"org.matrix.msc3827.stable": func(t *testing.T) {
			space := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", Visibility: "public",
				CreationContent: map[string]any{"type": "m.space"}})
			room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{Preset: "public_chat", Visibility: "public"})
			for filter, want := range map[string]id.RoomID{`["m.space"]`: space, `[null]`: room} {
				var types []*string
				if err := json.Unmarshal([]byte(filter), &types); err != nil {
					t.Fatal(err)
				}
				status, body := r.JSON(t, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken,
					map[string]any{"filter": map[string]any{"room_types": types}})
				if got := fieldOf(body["chunk"], "room_id"); status != 200 || !slices.Equal(got, []string{want.String()}) {
					t.Errorf("room_types %s: %d %v, want %s", filter, status, got, want)
				}
			}
		},
		"org.matrix.msc3916.stable": func(t *testing.T) {
			server, mediaID := upload(t, r, alice.AccessToken, "text/plain", "", []byte("authenticated"))
			path := "/_matrix/client/v1/media/download/" + server + "/" + mediaID
			if res := mediaDo(t, r, http.MethodGet, path, bob.AccessToken, "", nil); res.status != 200 || string(res.body) != "authenticated" {
				t.Fatalf("authenticated download: %d %s", res.status, res.body)
			}
			if res := mediaDo(t, r, http.MethodGet, path, "", "", nil); res.status != 401 {
				t.Fatalf("download without a token: %d %s", res.status, res.body)
			}
		},
		"org.matrix.simplified_msc3575": func(t *testing.T) {
			status, body := r.JSON(t, http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", bob.AccessToken,
				map[string]any{"lists": map[string]any{"all": map[string]any{"ranges": [][]int{{0, 10}}, "timeline_limit": 1}}})
			if status != 200 || body["pos"] == nil || body["rooms"].(map[string]any)[roomID.String()] == nil {
				t.Fatalf("sliding sync: %d %v", status, body)
			}
		},
	}

	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/versions", "", nil)
	if status != 200 {
		t.Fatalf("versions: %d", status)
	}
	var flags []string
	for name, on := range body["unstable_features"].(map[string]any) {
		if on != true {
			t.Errorf("feature %s advertised as %v: list only what is on", name, on)
		}
		flags = append(flags, name)
	}
	sort.Strings(flags)
	for _, name := range flags {
		probe, ok := probes[name]
		if !ok {
			t.Errorf("unstable feature %s is advertised but has no probe here", name)
			continue
		}
		t.Run(name, probe)
	}
	// The probes pin the list: a feature Axon has must stay advertised.
	for name := range probes {
		if !slices.Contains(flags, name) {
			t.Errorf("unstable feature %s works (it has a probe) but is not advertised: %v", name, flags)
		}
	}
	// Flags that matrix-js-sdk, Element Web or matrix-rust-sdk (Element X)
	// check, for things Axon does not do or does only at a stable path the
	// flag would lead clients away from.
	for flag, why := range map[string]string{
		"org.matrix.msc3882":                      "login tokens are served at /v1/login/get_token only, not the MSC's unstable path",
		"org.matrix.msc3814":                      "no dehydrated devices",
		"org.matrix.msc3026.busy_presence":        "presence is online, unavailable or offline",
		"org.matrix.msc4108":                      "no QR code login rendezvous (and no OAuth 2.0 API)",
		"org.matrix.msc4140":                      "no delayed events",
		"org.matrix.msc4306":                      "thread subscriptions are off unless configured (TestThreadSubscriptionsFlag)",
		"org.matrix.msc4028":                      "no pushing of every encrypted event",
		"org.matrix.msc4262":                      "no profiles sliding sync extension",
		"org.matrix.msc3030":                      "jump to date is served at /v1 only, not the MSC's unstable path",
		"org.matrix.msc3912":                      "no redaction with relations",
		"org.matrix.msc3881":                      "pushers cannot be disabled remotely",
		"uk.half-shot.msc2666.query_mutual_rooms": "mutual rooms are served at /v1/mutual_rooms only, not the MSC's unstable path",
		"uk.timedout.msc4323":                     "account moderation is served at /v1/admin only, not the MSC's unstable path",
		"io.element.e2ee_forced.private":          "rooms are not encrypted by the server's choice",
		"io.element.e2ee_forced.public":           "rooms are not encrypted by the server's choice",
		"io.element.e2ee_forced.trusted_private":  "rooms are not encrypted by the server's choice",
	} {
		if slices.Contains(flags, flag) {
			t.Errorf("%s advertised, but %s", flag, why)
		}
	}
}

// crossSigningKey builds a cross-signing key of the usage for user, signed by
// signer (the master key's private half) when one is given, and returns it
// with its private key.
func crossSigningKey(t *testing.T, user, usage string, signer ed25519.PrivateKey) (map[string]any, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawStdEncoding
	key := map[string]any{"user_id": user, "usage": []string{usage},
		"keys": map[string]string{"ed25519:" + b64.EncodeToString(pub): b64.EncodeToString(pub)}}
	if signer != nil {
		raw, err := json.Marshal(key)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := canonicaljson.CanonicalJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		signerPub := b64.EncodeToString(signer.Public().(ed25519.PublicKey))
		key["signatures"] = map[string]any{user: map[string]string{"ed25519:" + signerPub: b64.EncodeToString(ed25519.Sign(signer, canon))}}
	}
	return key, priv
}

func TestCapabilities(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	caps, err := alice.Capabilities(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if caps.RoomVersions == nil || caps.RoomVersions.Default != "12" {
		t.Fatalf("room versions %+v", caps.RoomVersions)
	}
	var avail []string
	for v, stability := range caps.RoomVersions.Available {
		if stability != "stable" {
			t.Errorf("room version %s is %s", v, stability)
		}
		avail = append(avail, v)
	}
	slices.SortFunc(avail, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	if !slices.Equal(avail, []string{"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}) {
		t.Fatalf("available room versions %v", avail)
	}
	for name, c := range map[string]*mautrix.CapBooleanTrue{
		"m.change_password": caps.ChangePassword, "m.set_displayname": caps.SetDisplayname,
		"m.set_avatar_url": caps.SetAvatarURL, "m.get_login_token": caps.GetLoginToken,
	} {
		if c == nil || !c.Enabled {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// m.profile_fields lets users set any field (profile_fields_test.go).
	status, body := r.JSON(t, http.MethodGet, "/_matrix/client/v3/capabilities", alice.AccessToken, nil)
	pf, _ := body["capabilities"].(map[string]any)["m.profile_fields"].(map[string]any)
	if status != 200 || pf["enabled"] != true || pf["allowed"] != nil || pf["disallowed"] != nil {
		t.Fatalf("m.profile_fields: %d %v", status, pf)
	}
	// Leaving does not forget (m.forget_forced_upon_leave, v1.18): a left
	// room can still be forgotten, and it is in include_leave syncs until then.
	if ff, _ := body["capabilities"].(map[string]any)["m.forget_forced_upon_leave"].(map[string]any); ff["enabled"] != false {
		t.Fatalf("m.forget_forced_upon_leave: %v", ff)
	}
	room := testrig.CreateRoom(t, alice, &mautrix.ReqCreateRoom{})
	if _, err := alice.LeaveRoom(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	if left := syncRoom(syncRaw(t, r, alice.AccessToken, map[string][]string{"filter": {`{"room":{"include_leave":true}}`}}), "leave", room); left == nil {
		t.Fatal("left room not in an include_leave sync")
	}
	// The endpoint needs an access token.
	status, body = r.JSON(t, http.MethodGet, "/_matrix/client/v3/capabilities", "", nil)
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN", "capabilities without token")
}
