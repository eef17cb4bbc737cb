package clientapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/testrig"
)

// TestPollPushRules checks MSC3930's default rules for polls: they are
// listed (one-to-one rules before their generic counterparts), poll starts
// and ends notify (with sound in a room of two) while votes do not, and a
// rule set stored before the rules existed gets them too.
func TestPollPushRules(t *testing.T) {
	ctx := context.Background()
	r := testrig.Start(t)
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	const p = ".org.matrix.msc3930.rule."
	ruleIDs := func(body map[string]any, kind string) []string {
		return fieldOf(body[kind], "rule_id")
	}
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/pushrules/global/", nil)
	if status != 200 {
		t.Fatalf("rules: %d %v", status, body)
	}
	wantUnder := []string{".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
		".m.rule.encrypted", p + "poll_start_one_to_one", p + "poll_start", p + "poll_end_one_to_one", p + "poll_end"}
	if got := ruleIDs(body, "underride"); !slices.Equal(got, wantUnder) {
		t.Fatalf("underride: %v", got)
	}
	if got := ruleIDs(body, "override"); got[len(got)-1] != p+"poll_response" {
		t.Fatalf("override: %v", got)
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/pushrules/global/override/"+p+"poll_response", nil)
	if status != 200 || body["default"] != true || body["enabled"] != true || len(body["actions"].([]any)) != 0 {
		t.Fatalf("poll_response: %d %v", status, body)
	}

	// Evaluation in a room of two.
	room, _ := sharedRoom(t, bob, alice)
	for _, ev := range []struct{ typ, body string }{
		{"org.matrix.msc3381.poll.start", "start"},
		{"org.matrix.msc3381.poll.response", "vote"},
		{"org.matrix.msc3381.poll.end", "end"},
	} {
		if _, err := bob.SendMessageEvent(ctx, room, event.Type{Type: ev.typ, Class: event.MessageEventType}, map[string]any{"body": ev.body}); err != nil {
			t.Fatal(err)
		}
	}
	status, body = apiCall(t, r, alice, v3, http.MethodGet, "/notifications", nil)
	if status != 200 {
		t.Fatalf("notifications: %d %v", status, body)
	}
	var got []string
	for _, n := range body["notifications"].([]any) {
		m := n.(map[string]any)
		ev := m["event"].(map[string]any)
		actions, _ := json.Marshal(m["actions"])
		if typ := ev["type"].(string); strings.Contains(typ, "poll") {
			got = append(got, typ+" "+string(actions))
		}
	}
	want := []string{
		`org.matrix.msc3381.poll.end ["notify",{"set_tweak":"sound","value":"default"}]`,
		`org.matrix.msc3381.poll.start ["notify",{"set_tweak":"sound","value":"default"}]`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("notifications:\n got %v\nwant %v", got, want)
	}

	// A rule set stored before the poll rules existed (a whole copy, with
	// one rule of the user's own) is shown with them, in their places.
	carol := r.CreateUser("carol")
	old := push.DefaultRuleset(carol.UserID.String())
	drop := func(rules []push.Rule) []push.Rule {
		return slices.DeleteFunc(rules, func(x push.Rule) bool { return strings.HasPrefix(x.RuleID, p) })
	}
	old.Override, old.Underride = drop(old.Override), drop(old.Underride)
	old.Underride = slices.Insert(old.Underride, 0, push.Rule{RuleID: "mine", Enabled: true, Conditions: []push.Condition{}, Actions: []any{}})
	raw, err := json.Marshal(map[string]any{"global": old})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Server.DB.PutAccountData(ctx, carol.UserID.String(), "", push.AccountDataType, raw); err != nil {
		t.Fatal(err)
	}
	status, body = apiCall(t, r, carol, v3, http.MethodGet, "/pushrules/global/", nil)
	if status != 200 {
		t.Fatalf("carol's rules: %d %v", status, body)
	}
	if got := ruleIDs(body, "underride"); !slices.Equal(got, append([]string{"mine"}, wantUnder...)) {
		t.Fatalf("carol's underride: %v", got)
	}
	if got := ruleIDs(body, "override"); got[len(got)-1] != p+"poll_response" {
		t.Fatalf("carol's override: %v", got)
	}
}
