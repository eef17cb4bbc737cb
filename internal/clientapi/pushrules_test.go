package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestDefaultPushRules(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	rs, err := alice.GetPushRules(context.Background())
	if err != nil {
		t.Fatalf("get push rules: %v", err)
	}
	if len(rs.Override) == 0 || rs.Override[0].RuleID != ".m.rule.master" || rs.Override[0].Enabled || len(rs.Underride) != 9 { // the spec's 5 and MSC3930's 4
		t.Fatalf("ruleset: %+v", rs)
	}
	status, body := apiCall(t, r, alice, v3, http.MethodGet, "/pushrules/global/", nil)
	if status != 200 {
		t.Fatalf("global: %d %v", status, body)
	}
	for _, kind := range []string{"override", "content", "room", "sender", "underride"} {
		if _, ok := body[kind].([]any); !ok {
			t.Fatalf("kind %s missing: %v", kind, body)
		}
	}
	found := false
	for _, rule := range body["override"].([]any) {
		m := rule.(map[string]any)
		if m["rule_id"] == ".m.rule.invite_for_me" {
			conds := m["conditions"].([]any)
			found = conds[2].(map[string]any)["pattern"] == alice.UserID.String()
		}
	}
	if !found {
		t.Fatalf("invite_for_me does not name the user: %v", body["override"])
	}
	status, body = apiCall(t, r, nil, v3, http.MethodGet, "/pushrules/", nil)
	wantAPIError(t, status, body, 401, "M_MISSING_TOKEN")
}
