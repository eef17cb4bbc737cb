package push

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestDefaultsMatchSpec compares every rule with the JSON the spec's
// "Predefined Rules" section gives for it.
func TestDefaultsMatchSpec(t *testing.T) {
	doc, err := os.ReadFile("../../../shared/matrix-spec/content/client-server-api/modules/push.md")
	if err != nil {
		t.Skip("spec not available:", err)
	}
	text := string(doc)
	start := strings.Index(text, "#### Predefined Rules")
	end := strings.Index(text, "#### Push Rules: API")
	if start < 0 || end < start {
		t.Fatal("predefined rules section not found")
	}
	section := text[start:end]
	const user = "@alice:example.org"
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(section, -1)
	specRules := map[string]any{}
	var order []string
	for _, b := range blocks {
		body := strings.ReplaceAll(b[1], "[the user's Matrix ID]", user)
		var r map[string]any
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("spec block: %v\n%s", err, body)
		}
		id := r["rule_id"].(string)
		specRules[id] = r
		order = append(order, id)
	}

	rs := DefaultRuleset(user)
	raw, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var ours struct {
		Override, Content, Room, Sender, Underride []map[string]any
	}
	if err := json.Unmarshal(raw, &ours); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kind := range [][]map[string]any{ours.Override, ours.Content, ours.Room, ours.Sender, ours.Underride} {
		for _, r := range kind {
			id := r["rule_id"].(string)
			if strings.HasPrefix(id, pollRule) {
				continue // MSC3930's, not the spec's: TestPollRules
			}
			got = append(got, id)
			if !reflect.DeepEqual(r, specRules[id]) {
				a, _ := json.Marshal(r)
				b, _ := json.Marshal(specRules[id])
				t.Errorf("rule %s:\n ours %s\n spec %s", id, a, b)
			}
		}
	}
	if !reflect.DeepEqual(got, order) {
		t.Errorf("rule order:\n ours %v\n spec %v", got, order)
	}
	for _, k := range []string{`"content":[]`, `"room":[]`, `"sender":[]`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("want %s in %s", k, raw)
		}
	}
}
