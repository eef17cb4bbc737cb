package clientapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/testrig"
)

func ruleIDs(t *testing.T, body map[string]any, kind string) []string {
	t.Helper()
	var out []string
	list, _ := body[kind].([]any)
	for _, r := range list {
		out = append(out, r.(map[string]any)["rule_id"].(string))
	}
	return out
}

func TestPushRuleAPIRoundTrips(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		return apiCall(t, r, alice, v3, method, path, body)
	}
	must := func(status int, body map[string]any) map[string]any {
		t.Helper()
		if status != 200 {
			t.Fatalf("status %d: %v", status, body)
		}
		return body
	}

	// Content rules: create, order with before/after, read back.
	must(call(http.MethodPut, "/pushrules/global/content/cake", map[string]any{"pattern": "cake*lie", "actions": []any{"notify"}}))
	must(call(http.MethodPut, "/pushrules/global/content/tea?before=cake", map[string]any{"pattern": "tea", "actions": []any{"notify"}}))
	must(call(http.MethodPut, "/pushrules/global/content/time?after=cake", map[string]any{"pattern": "time", "actions": []any{}}))
	global := must(call(http.MethodGet, "/pushrules/global/", nil))
	if got := ruleIDs(t, global, "content"); len(got) != 3 || got[0] != "tea" || got[1] != "cake" || got[2] != "time" {
		t.Fatalf("content order: %v", got)
	}
	rule := must(call(http.MethodGet, "/pushrules/global/content/cake", nil))
	if rule["pattern"] != "cake*lie" || rule["enabled"] != true || rule["default"] != false {
		t.Errorf("rule: %v", rule)
	}
	// A new rule without before/after is the most important user rule.
	must(call(http.MethodPut, "/pushrules/global/content/first", map[string]any{"pattern": "x", "actions": []any{}}))
	if got := ruleIDs(t, must(call(http.MethodGet, "/pushrules/global/", nil)), "content"); got[0] != "first" {
		t.Errorf("new rule not first: %v", got)
	}

	// Override rules go below .m.rule.master and above the other defaults.
	must(call(http.MethodPut, "/pushrules/global/override/beer", map[string]any{
		"conditions": []any{map[string]any{"kind": "event_match", "key": "content.body", "pattern": "beer"}},
		"actions":    []any{"notify", map[string]any{"set_tweak": "sound", "value": "ding"}},
	}))
	if got := ruleIDs(t, must(call(http.MethodGet, "/pushrules/global/", nil)), "override"); got[0] != ".m.rule.master" || got[1] != "beer" {
		t.Errorf("override order: %v", got)
	}

	// enabled and actions.
	must(call(http.MethodPut, "/pushrules/global/override/.m.rule.master/enabled", map[string]any{"enabled": true}))
	if b := must(call(http.MethodGet, "/pushrules/global/override/.m.rule.master/enabled", nil)); b["enabled"] != true {
		t.Errorf("enabled: %v", b)
	}
	must(call(http.MethodPut, "/pushrules/global/underride/.m.rule.message/actions", map[string]any{"actions": []any{}}))
	if b := must(call(http.MethodGet, "/pushrules/global/underride/.m.rule.message/actions", nil)); len(b["actions"].([]any)) != 0 {
		t.Errorf("actions: %v", b)
	}

	// Errors.
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{http.MethodGet, "/pushrules/global/content/nope", nil, 404, "M_NOT_FOUND"},
		{http.MethodDelete, "/pushrules/global/content/nope", nil, 404, "M_NOT_FOUND"},
		{http.MethodPut, "/pushrules/global/content/.mine", map[string]any{"pattern": "a", "actions": []any{}}, 400, "M_INVALID_PARAM"},
		{http.MethodPut, "/pushrules/global/content/x?before=nope", map[string]any{"pattern": "a", "actions": []any{}}, 404, "M_NOT_FOUND"},
		{http.MethodPut, "/pushrules/global/override/x?after=.m.rule.master", map[string]any{"actions": []any{}}, 400, "M_INVALID_PARAM"},
		{http.MethodPut, "/pushrules/global/content/nopattern", map[string]any{"actions": []any{}}, 400, "M_MISSING_PARAM"},
		{http.MethodPut, "/pushrules/global/content/noactions", map[string]any{"pattern": "a"}, 400, "M_MISSING_PARAM"},
		{http.MethodPut, "/pushrules/global/content/badaction", map[string]any{"pattern": "a", "actions": []any{"explode"}}, 400, "M_UNKNOWN"},
		{http.MethodPut, "/pushrules/global/weird/x", map[string]any{"actions": []any{}}, 400, "M_INVALID_PARAM"},
		{http.MethodDelete, "/pushrules/global/override/.m.rule.master", nil, 400, "M_INVALID_PARAM"},
		{http.MethodPut, "/pushrules/global/override/nope/enabled", map[string]any{"enabled": true}, 404, "M_NOT_FOUND"},
	} {
		status, body := call(tc.method, tc.path, tc.body)
		if status != tc.status || body["errcode"] != tc.code {
			t.Errorf("%s %s: %d %v, want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}

	// Delete, and the whole set as m.push_rules account data in /sync.
	must(call(http.MethodDelete, "/pushrules/global/content/time", nil))
	resp, err := alice.SyncRequest(context.Background(), 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ev := range resp.AccountData.Events {
		if ev.Type.Type != "m.push_rules" {
			continue
		}
		found = true
		raw, _ := json.Marshal(ev.Content.Raw)
		var c struct {
			Global map[string]any `json:"global"`
		}
		json.Unmarshal(raw, &c)
		if got := ruleIDs(t, c.Global, "content"); len(got) != 3 || got[0] != "first" {
			t.Errorf("synced content rules: %v", got)
		}
	}
	if !found {
		t.Fatal("no m.push_rules in /sync account_data")
	}
	// Clients cannot write it through the account data API.
	status, body := call(http.MethodPut, "/user/"+url.PathEscape(alice.UserID.String())+"/account_data/m.push_rules", map[string]any{})
	wantAPIError(t, status, body, 405, "M_BAD_JSON")
}

// TestCountsFollowUserRules: a user's own rules change /sync counts, and a
// rule change itself invalidates cached counts.
func TestCountsFollowUserRulesAndNotifications(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, carol, room := bobsRoom(t, r)
	countsOf := func() (int, int) {
		t.Helper()
		resp, err := alice.SyncRequest(ctx, 0, "", "", false, "")
		if err != nil {
			t.Fatal(err)
		}
		jr := resp.Rooms.Join[room]
		if jr == nil || jr.UnreadNotifications == nil {
			t.Fatalf("no counts: %+v", jr)
		}
		return jr.UnreadNotifications.NotificationCount, jr.UnreadNotifications.HighlightCount
	}
	testrig.SendText(t, bob, room, "hello")
	if n, h := countsOf(); n != 1 || h != 0 {
		t.Fatalf("counts %d %d", n, h)
	}
	// A keyword rule highlights; the change recomputes the cached counts.
	if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/pushrules/global/content/hello",
		map[string]any{"pattern": "hello", "actions": []any{"notify", map[string]any{"set_tweak": "highlight"}}}); status != 200 {
		t.Fatal(status, body)
	}
	if n, h := countsOf(); n != 1 || h != 1 {
		t.Fatalf("counts after keyword rule %d %d", n, h)
	}
	// Muting bob.
	if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/pushrules/global/sender/"+url.PathEscape(bob.UserID.String()),
		map[string]any{"actions": []any{}}); status != 200 {
		t.Fatal(status, body)
	}
	testrig.SendText(t, bob, room, "muted")
	last, err := carol.SendMessageEvent(ctx, room, event.EventMessage, map[string]any{
		"msgtype": "m.text", "body": "alice!", "m.mentions": map[string]any{"user_ids": []string{alice.UserID.String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, h := countsOf(); n != 2 || h != 2 {
		t.Fatalf("counts with bob muted (hello highlight + carol's mention) %d %d", n, h)
	}

	// /notifications: newest first, highlight filter, pagination, read flags.
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/notifications", nil)
	ns, _ := body["notifications"].([]any)
	// Rules are evaluated as they are now: bob is muted, but the content
	// rule outranks sender rules, so his "hello" still highlights.
	if status != 200 || len(ns) != 2 {
		t.Fatalf("notifications: %d %v", status, body)
	}
	first := ns[0].(map[string]any)
	if first["event"].(map[string]any)["event_id"] != last.EventID.String() || first["read"] != false || first["room_id"] != room.String() {
		t.Errorf("notification: %v", first)
	}
	if err := alice.SendReceipt(ctx, room, last.EventID, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	if n, h := countsOf(); n != 0 || h != 0 {
		t.Fatalf("counts after receipt %d %d", n, h)
	}
	// Unmute bob, and page through one at a time.
	if status, _ := apiCall(t, r, alice, v3, http.MethodDelete, "/pushrules/global/sender/"+url.PathEscape(bob.UserID.String()), nil); status != 200 {
		t.Fatal(status)
	}
	var ids []string
	from := ""
	for i := 0; i < 10; i++ {
		path := "/notifications?limit=1"
		if from != "" {
			path += "&from=" + from
		}
		_, body := apiCall(t, r, alice, v3, http.MethodGet, path, nil)
		for _, n := range body["notifications"].([]any) {
			m := n.(map[string]any)
			ids = append(ids, m["event"].(map[string]any)["content"].(map[string]any)["body"].(string))
			if m["read"] != true {
				t.Errorf("read flag after receipt: %v", m)
			}
		}
		next, _ := body["next_token"].(string)
		if next == "" {
			break
		}
		from = next
	}
	if len(ids) != 3 || ids[0] != "alice!" || ids[1] != "muted" || ids[2] != "hello" {
		t.Errorf("paged notifications: %v", ids)
	}
	_, body = apiCall(t, r, alice, v3, http.MethodGet, "/notifications?only=highlight", nil)
	if ns := body["notifications"].([]any); len(ns) != 2 {
		t.Errorf("only=highlight: %v", body)
	}
}

// TestRuleChangeResendsCounts: a rule change alone (no new event) brings
// the rooms with their new counts into the next incremental sync.
func TestRuleChangeResendsCounts(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob, _, room := bobsRoom(t, r)
	testrig.SendText(t, bob, room, "hi")
	first, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := first.Rooms.Join[room].UnreadNotifications; c == nil || c.NotificationCount != 1 {
		t.Fatalf("counts: %+v", c)
	}
	if status, body := apiCall(t, r, alice, v3, http.MethodPut, "/pushrules/global/room/"+url.PathEscape(room.String()),
		map[string]any{"actions": []any{}}); status != 200 {
		t.Fatal(status, body)
	}
	next, err := alice.SyncRequest(ctx, 0, first.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	jr := next.Rooms.Join[room]
	if jr == nil || jr.UnreadNotifications == nil || jr.UnreadNotifications.NotificationCount != 0 {
		t.Fatalf("room after muting: %+v", jr)
	}
}

// A rule under a kind the server does not know (such as MSC4306's
// postcontent) does not exist: reading or changing it is 404 M_NOT_FOUND,
// the only error the spec gives those endpoints, so clients probing for an
// optional rule can tell "absent" from a bad request. Creating a rule of
// an unknown kind stays 400.
func TestPushRuleOfUnknownKindIsNotFound(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	rule := "/pushrules/global/postcontent/.io.element.msc4306.rule.subscribed_thread"
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, rule, nil},
		{http.MethodDelete, rule, nil},
		{http.MethodGet, rule + "/enabled", nil},
		{http.MethodPut, rule + "/enabled", map[string]any{"enabled": false}},
		{http.MethodGet, rule + "/actions", nil},
		{http.MethodPut, rule + "/actions", map[string]any{"actions": []any{}}},
	} {
		status, body := apiCall(t, r, alice, v3, c.method, c.path, c.body)
		wantAPIError(t, status, body, 404, "M_NOT_FOUND", c.method, c.path)
	}
	status, body := apiCall(t, r, alice, v3, http.MethodPut, "/pushrules/global/postcontent/mine", map[string]any{"actions": []any{}})
	wantAPIError(t, status, body, 400, "M_INVALID_PARAM")
}
