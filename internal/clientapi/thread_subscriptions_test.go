package clientapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/testrig"
)

const msc4306 = "/_matrix/client/unstable/io.element.msc4306"

func withThreadSubscriptions(c *config.Config) { c.Experimental.ThreadSubscriptions = true }

// TestThreadSubscriptionsAPI checks MSC4306's endpoints: subscribing
// manually and automatically, the cause event's checks, the refusal of
// automatic subscriptions older than an unsubscription, and what users
// who cannot see a thread get.
func TestThreadSubscriptionsAPI(t *testing.T) {
	// Off by default: not served.
	off := testrig.Start(t)
	carol := off.CreateUser("carol")
	status, body := apiCall(t, off, carol, msc4306, http.MethodGet, "/rooms/!r:axon.test/thread/$e/subscription", nil)
	wantAPIError(t, status, body, http.StatusNotFound, "M_UNRECOGNIZED", "feature off")

	r := testrig.Start(t, withThreadSubscriptions)
	alice, bob, mallory := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("mallory")
	room, root := sharedRoom(t, alice, bob)
	path := "/rooms/" + esc(room.String()) + "/thread/" + esc(root.String()) + "/subscription"
	get := func(c *mautrix.Client) (int, map[string]any) {
		return apiCall(t, r, c, msc4306, http.MethodGet, path, nil)
	}
	put := func(c *mautrix.Client, b any) (int, map[string]any) {
		return apiCall(t, r, c, msc4306, http.MethodPut, path, b)
	}
	del := func(c *mautrix.Client) (int, map[string]any) {
		return apiCall(t, r, c, msc4306, http.MethodDelete, path, nil)
	}

	status, body = get(bob)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "before subscribing")
	if status, body = put(bob, map[string]any{}); status != 200 {
		t.Fatalf("subscribe: %d %v", status, body)
	}
	if status, body = get(bob); status != 200 || body["automatic"] != false {
		t.Fatalf("get: %d %v", status, body)
	}
	// Subscriptions are per user.
	status, body = get(alice)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "alice's")

	// An automatic subscription leaves a manual one as it is; a manual
	// one replaces an automatic one.
	r1 := threadReply(t, alice, room, root.String(), "one")
	if status, body = put(bob, map[string]any{"automatic": r1}); status != 200 {
		t.Fatalf("automatic over manual: %d %v", status, body)
	}
	if _, body = get(bob); body["automatic"] != false {
		t.Fatalf("automatic replaced manual: %v", body)
	}
	if status, body = del(bob); status != 200 {
		t.Fatalf("unsubscribe: %d %v", status, body)
	}
	status, body = get(bob)
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "after unsubscribing")
	// r1 was there when bob unsubscribed: it cannot subscribe him again.
	status, body = put(bob, map[string]any{"automatic": r1})
	wantAPIError(t, status, body, http.StatusConflict, "IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION", "old cause")
	r2 := threadReply(t, alice, room, root.String(), "two")
	if status, body = put(bob, map[string]any{"automatic": r2}); status != 200 {
		t.Fatalf("newer cause: %d %v", status, body)
	}
	if _, body = get(bob); body["automatic"] != true {
		t.Fatalf("automatic: %v", body)
	}
	if status, body = put(bob, map[string]any{}); status != 200 {
		t.Fatalf("manual over automatic: %d %v", status, body)
	}
	if _, body = get(bob); body["automatic"] != false {
		t.Fatalf("manual did not replace automatic: %v", body)
	}
	// Unsubscribing twice is fine.
	for range 2 {
		if status, body = del(bob); status != 200 {
			t.Fatalf("unsubscribe: %d %v", status, body)
		}
	}

	// The cause must be in this thread.
	other := testrig.SendText(t, alice, room, "another root")
	elsewhere := threadReply(t, alice, room, other.String(), "in another thread")
	for what, cause := range map[string]any{"the root itself": root, "another thread": elsewhere, "unknown event": "$nope", "a plain message": other} {
		status, body = put(bob, map[string]any{"automatic": cause})
		wantAPIError(t, status, body, http.StatusBadRequest, "IO.ELEMENT.MSC4306.M_NOT_IN_THREAD", what)
	}
	status, body = put(bob, map[string]any{"automatic": 1})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_BAD_JSON", "a number as cause")
	status, body = put(bob, map[string]any{"automatic": "not-an-id"})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM", "a cause that is no event ID")

	// A thread the user cannot see does not exist for them.
	for _, call := range []func(*mautrix.Client) (int, map[string]any){get, del, func(c *mautrix.Client) (int, map[string]any) { return put(c, map[string]any{}) }} {
		status, body = call(mallory)
		wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "outsider")
	}
	status, body = apiCall(t, r, bob, msc4306, http.MethodPut, "/rooms/"+esc(room.String())+"/thread/$unknown/subscription", map[string]any{})
	wantAPIError(t, status, body, http.StatusNotFound, "M_NOT_FOUND", "unknown root")
	status, body = apiCall(t, r, bob, msc4306, http.MethodPut, "/rooms/"+esc(room.String())+"/thread/nope/subscription", map[string]any{})
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM", "root that is no event ID")
	status, body = apiCall(t, r, bob, msc4306, http.MethodGet, "/rooms/nope/thread/"+esc(root.String())+"/subscription", nil)
	wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM", "bad room ID")
}

// TestThreadSubscriptionPushRules checks MSC4306's postcontent rules: with
// thread subscriptions on, thread replies notify the users subscribed to
// the thread (even in a room they muted) and, of the others, only those
// mentioned; clients cannot add postcontent rules. With them off, nothing
// changes.
func TestThreadSubscriptionPushRules(t *testing.T) {
	ctx := context.Background()
	notified := func(t *testing.T, r *testrig.Rig, c *mautrix.Client) []string {
		t.Helper()
		status, body := apiCall(t, r, c, v3, http.MethodGet, "/notifications", nil)
		if status != 200 {
			t.Fatalf("notifications: %d %v", status, body)
		}
		var out []string
		for _, n := range body["notifications"].([]any) {
			content, _ := n.(map[string]any)["event"].(map[string]any)["content"].(map[string]any)
			if b, _ := content["body"].(string); strings.HasPrefix(b, "reply") {
				out = append(out, b)
			}
		}
		slices.Sort(out)
		return out
	}
	setup := func(t *testing.T, opts ...testrig.Option) (*testrig.Rig, *mautrix.Client, *mautrix.Client, *mautrix.Client, id.RoomID, id.EventID) {
		r := testrig.Start(t, opts...)
		alice, bob, carol := r.CreateUser("alice"), r.CreateUser("bob"), r.CreateUser("carol")
		room, root := sharedRoom(t, alice, bob)
		if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
			t.Fatal(err)
		}
		testrig.Join(t, room, carol)
		return r, alice, bob, carol, room, root
	}

	t.Run("on", func(t *testing.T) {
		r, alice, bob, carol, room, root := setup(t, withThreadSubscriptions)
		status, body := apiCall(t, r, bob, v3, http.MethodGet, "/pushrules/global/", nil)
		if got := fieldOf(body["postcontent"], "rule_id"); status != 200 || !slices.Equal(got, []string{
			".io.element.msc4306.rule.unsubscribed_thread", ".io.element.msc4306.rule.subscribed_thread"}) {
			t.Fatalf("postcontent rules: %d %v", status, body["postcontent"])
		}
		status, body = apiCall(t, r, bob, v3, http.MethodPut, "/pushrules/global/postcontent/mine", map[string]any{"actions": []any{"notify"}})
		wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM", "client postcontent rule")

		path := "/rooms/" + esc(room.String()) + "/thread/" + esc(root.String()) + "/subscription"
		if status, body := apiCall(t, r, bob, msc4306, http.MethodPut, path, map[string]any{}); status != 200 {
			t.Fatalf("subscribe: %d %v", status, body)
		}
		threadReply(t, alice, room, root.String(), "reply 1")
		// Bob mutes the room: his subscription still notifies him.
		status, body = apiCall(t, r, bob, v3, http.MethodPut, "/pushrules/global/room/"+esc(room.String()), map[string]any{"actions": []any{}})
		if status != 200 {
			t.Fatalf("mute: %d %v", status, body)
		}
		threadReply(t, alice, room, root.String(), "reply 2")
		if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{
			"msgtype": "m.text", "body": "reply 3 for carol", "m.mentions": map[string]any{"user_ids": []string{carol.UserID.String()}},
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}}); err != nil {
			t.Fatal(err)
		}
		if got := notified(t, r, bob); !slices.Equal(got, []string{"reply 1", "reply 2", "reply 3 for carol"}) {
			t.Errorf("bob (subscribed): %v", got)
		}
		if got := notified(t, r, carol); !slices.Equal(got, []string{"reply 3 for carol"}) {
			t.Errorf("carol (not subscribed): %v", got)
		}
	})

	t.Run("off", func(t *testing.T) {
		r, alice, _, carol, room, root := setup(t)
		status, body := apiCall(t, r, carol, v3, http.MethodGet, "/pushrules/global/", nil)
		if _, has := body["postcontent"]; status != 200 || has {
			t.Fatalf("rules: %d %v", status, body)
		}
		threadReply(t, alice, room, root.String(), "reply 1")
		if got := notified(t, r, carol); !slices.Equal(got, []string{"reply 1"}) {
			t.Errorf("carol: %v", got)
		}
	})
}

// TestThreadSubscriptionsSlidingSync checks MSC4308: the sliding sync
// extension carries the newest changes to the user's subscriptions (all of
// the current ones on a new connection, no unsubscriptions), and its
// prev_batch leads the companion endpoint to the changes it left out.
func TestThreadSubscriptionsSlidingSync(t *testing.T) {
	const ext = "io.element.msc4308.thread_subscriptions"
	slide := func(t *testing.T, r *testrig.Rig, c *mautrix.Client, pos string, limit int) (string, map[string]any) {
		t.Helper()
		q := ""
		if pos != "" {
			q = "?timeout=0&pos=" + pos
		}
		status, body := apiCall(t, r, c, "/_matrix/client/unstable/org.matrix.simplified_msc3575", http.MethodPost, "/sync"+q,
			map[string]any{"extensions": map[string]any{ext: map[string]any{"enabled": true, "limit": limit}}})
		if status != 200 {
			t.Fatalf("sliding sync: %d %v", status, body)
		}
		out, _ := body["extensions"].(map[string]any)[ext].(map[string]any)
		return body["pos"].(string), out
	}
	threads := func(m any, room id.RoomID) []string {
		byRoom, _ := m.(map[string]any)
		var out []string
		for root := range byRoom[room.String()].(map[string]any) {
			out = append(out, root)
		}
		slices.Sort(out)
		return out
	}

	r := testrig.Start(t, withThreadSubscriptions)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, _ := sharedRoom(t, alice, bob)
	pos, out := slide(t, r, bob, "", 2)
	if out == nil || out["subscribed"] != nil || out["unsubscribed"] != nil {
		t.Fatalf("initial, no subscriptions: %v", out)
	}
	roots := make([]id.EventID, 3)
	for i := range roots {
		roots[i] = testrig.SendText(t, alice, room, "root")
		path := "/rooms/" + esc(room.String()) + "/thread/" + esc(roots[i].String()) + "/subscription"
		if status, body := apiCall(t, r, bob, msc4306, http.MethodPut, path, map[string]any{}); status != 200 {
			t.Fatalf("subscribe: %d %v", status, body)
		}
	}
	path := "/rooms/" + esc(room.String()) + "/thread/" + esc(roots[0].String()) + "/subscription"
	if status, body := apiCall(t, r, bob, msc4306, http.MethodDelete, path, nil); status != 200 {
		t.Fatalf("unsubscribe: %d %v", status, body)
	}

	// Four changes, three threads; the newest two fit.
	_, out = slide(t, r, bob, pos, 2)
	if got := threads(out["unsubscribed"], room); !slices.Equal(got, []string{roots[0].String()}) {
		t.Fatalf("unsubscribed: %v", out)
	}
	if got := threads(out["subscribed"], room); !slices.Equal(got, []string{roots[2].String()}) {
		t.Fatalf("subscribed: %v", out)
	}
	sub := out["subscribed"].(map[string]any)[room.String()].(map[string]any)[roots[2].String()].(map[string]any)
	if sub["automatic"] != false || sub["bump_stamp"] == nil {
		t.Fatalf("subscription: %v", sub)
	}
	prev, _ := out["prev_batch"].(string)
	if prev == "" {
		t.Fatalf("no prev_batch: %v", out)
	}
	const companion = "/_matrix/client/unstable/io.element.msc4308"
	status, body := apiCall(t, r, bob, companion, http.MethodGet, "/thread_subscriptions?dir=b&limit=10&from="+prev, nil)
	if status != 200 || body["end"] != nil {
		t.Fatalf("companion: %d %v", status, body)
	}
	if got := threads(body["subscribed"], room); !slices.Equal(got, []string{roots[1].String()}) {
		t.Fatalf("companion page: %v", body)
	}
	if un := body["unsubscribed"].(map[string]any); len(un) != 0 {
		t.Fatalf("companion unsubscribed: %v", body)
	}
	// Without from: from now, the latest first, one at a time.
	status, body = apiCall(t, r, bob, companion, http.MethodGet, "/thread_subscriptions?dir=b&limit=1", nil)
	if got := threads(body["unsubscribed"], room); status != 200 || !slices.Equal(got, []string{roots[0].String()}) || body["end"] == nil {
		t.Fatalf("companion from now: %d %v", status, body)
	}

	// A new connection gets the current subscriptions only.
	_, out = slide(t, r, bob, "", 10)
	want := []string{roots[1].String(), roots[2].String()}
	slices.Sort(want)
	if got := threads(out["subscribed"], room); !slices.Equal(got, want) || out["unsubscribed"] != nil {
		t.Fatalf("new connection: %v", out)
	}

	for _, q := range []string{"dir=f", "dir=b&from=nope", "dir=b&limit=0", "dir=b&limit=x", ""} {
		status, body = apiCall(t, r, bob, companion, http.MethodGet, "/thread_subscriptions?"+q, nil)
		wantAPIError(t, status, body, http.StatusBadRequest, "M_INVALID_PARAM", q)
	}

	// With thread subscriptions off, the extension is left out.
	off := testrig.Start(t)
	carol := off.CreateUser("carol")
	if _, out := slide(t, off, carol, "", 10); out != nil {
		t.Fatalf("extension served while off: %v", out)
	}
}

// TestThreadSubscriptionsFlag: /versions lists org.matrix.msc4306 exactly
// when thread subscriptions are on.
func TestThreadSubscriptionsFlag(t *testing.T) {
	for _, on := range []bool{false, true} {
		var opts []testrig.Option
		if on {
			opts = append(opts, withThreadSubscriptions)
		}
		r := testrig.Start(t, opts...)
		status, body := r.JSON(t, http.MethodGet, "/_matrix/client/versions", "", nil)
		flag, listed := body["unstable_features"].(map[string]any)["org.matrix.msc4306"]
		if status != 200 || listed != on || (on && flag != true) {
			t.Errorf("thread subscriptions on=%v: %d flag %v listed %v", on, status, flag, listed)
		}
	}
}
