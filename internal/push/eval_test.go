package push

import (
	"context"
	"testing"
)

type fakeRoom struct {
	members   int
	name      string
	mayNotify bool
}

func (f fakeRoom) MemberCount(context.Context) int               { return f.members }
func (f fakeRoom) DisplayName(context.Context) string            { return f.name }
func (f fakeRoom) SenderMayNotify(context.Context, string) bool  { return f.mayNotify }
func (f fakeRoom) ThreadSubscribed(context.Context, string) bool { return false }

func strp(s string) *string { return &s }

// TestDefaultRules fires every server-default rule with an event made for
// it, and checks the rule that wins and what it does.
func TestDefaultRules(t *testing.T) {
	const me = "@alice:example.org"
	ctx := context.Background()
	group := fakeRoom{members: 5, name: "Alice", mayNotify: true}
	dm := fakeRoom{members: 2}
	tests := []struct {
		name      string
		ev        *Event
		room      fakeRoom
		rule      string
		notify    bool
		highlight bool
		sound     any
	}{
		{"notice", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil, []byte(`{"msgtype":"m.notice","body":"hi"}`)), group,
			".m.rule.suppress_notices", false, false, nil},
		{"invite for me", NewEvent("$1", "!r", "m.room.member", "@bob:x", strp(me), []byte(`{"membership":"invite"}`)), group,
			".m.rule.invite_for_me", true, false, "default"},
		{"invite for someone else", NewEvent("$1", "!r", "m.room.member", "@bob:x", strp("@carol:x"), []byte(`{"membership":"invite"}`)), group,
			".m.rule.member_event", false, false, nil},
		{"join", NewEvent("$1", "!r", "m.room.member", "@bob:x", strp("@bob:x"), []byte(`{"membership":"join"}`)), group,
			".m.rule.member_event", false, false, nil},
		{"user mention", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil,
			[]byte(`{"msgtype":"m.text","body":"hey","m.mentions":{"user_ids":["@alice:example.org"]}}`)), group,
			".m.rule.is_user_mention", true, true, "default"},
		{"room mention", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil,
			[]byte(`{"msgtype":"m.text","body":"@room hey","m.mentions":{"room":true}}`)), group,
			".m.rule.is_room_mention", true, true, nil},
		{"room mention without power", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil,
			[]byte(`{"msgtype":"m.text","body":"@room hey","m.mentions":{"room":true}}`)), fakeRoom{members: 5},
			".m.rule.message", true, false, nil},
		{"tombstone", NewEvent("$1", "!r", "m.room.tombstone", "@bob:x", strp(""), []byte(`{"body":"moved","replacement_room":"!n"}`)), group,
			".m.rule.tombstone", true, true, nil},
		{"reaction", NewEvent("$1", "!r", "m.reaction", "@bob:x", nil,
			[]byte(`{"m.relates_to":{"rel_type":"m.annotation","event_id":"$0","key":"👍"}}`)), group,
			".m.rule.reaction", false, false, nil},
		{"server acl", NewEvent("$1", "!r", "m.room.server_acl", "@bob:x", strp(""), []byte(`{"allow":["*"]}`)), group,
			".m.rule.room.server_acl", false, false, nil},
		{"edit", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil,
			[]byte(`{"msgtype":"m.text","body":"* fixed","m.relates_to":{"rel_type":"m.replace","event_id":"$0"}}`)), group,
			".m.rule.suppress_edits", false, false, nil},
		{"call", NewEvent("$1", "!r", "m.call.invite", "@bob:x", nil, []byte(`{"call_id":"c"}`)), group,
			".m.rule.call", true, false, "ring"},
		{"encrypted dm", NewEvent("$1", "!r", "m.room.encrypted", "@bob:x", nil, []byte(`{"algorithm":"m.megolm.v1.aes-sha2"}`)), dm,
			".m.rule.encrypted_room_one_to_one", true, false, "default"},
		{"dm", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil, []byte(`{"msgtype":"m.text","body":"hi"}`)), dm,
			".m.rule.room_one_to_one", true, false, "default"},
		{"message", NewEvent("$1", "!r", "m.room.message", "@bob:x", nil, []byte(`{"msgtype":"m.text","body":"hi Alice"}`)), group,
			".m.rule.message", true, false, nil},
		{"encrypted", NewEvent("$1", "!r", "m.room.encrypted", "@bob:x", nil, []byte(`{"algorithm":"m.megolm.v1.aes-sha2"}`)), group,
			".m.rule.encrypted", true, false, nil},
		{"topic", NewEvent("$1", "!r", "m.room.topic", "@bob:x", strp(""), []byte(`{"topic":"x"}`)), group,
			"", false, false, nil},
	}
	rs := DefaultRuleset(me)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := rs.Evaluate(ctx, tt.ev, me, tt.room)
			if o.RuleID != tt.rule || o.Notify != tt.notify || o.Highlight != tt.highlight {
				t.Fatalf("got rule %q notify %v highlight %v, want %q %v %v", o.RuleID, o.Notify, o.Highlight, tt.rule, tt.notify, tt.highlight)
			}
			if o.Tweaks["sound"] != tt.sound {
				t.Errorf("sound %v, want %v", o.Tweaks["sound"], tt.sound)
			}
			if h, ok := o.Tweaks["highlight"].(bool); tt.rule != "" && (!ok || h != tt.highlight) {
				t.Errorf("highlight tweak %v, want %v (never null)", o.Tweaks["highlight"], tt.highlight)
			}
		})
	}

	// The master rule, once enabled, silences everything.
	master := DefaultRuleset(me)
	master.Override[0].Enabled = true
	if o := master.Evaluate(ctx, tests[4].ev, me, group); o.RuleID != ".m.rule.master" || o.Notify {
		t.Errorf("master: %+v", o)
	}
}

// TestSpecConditionExamples are the examples of the spec's condition
// descriptions.
func TestSpecConditionExamples(t *testing.T) {
	topic := func(v string) *Event {
		return NewEvent("$1", "!r", "m.room.topic", "@a:x", strp(""), []byte(`{"topic":`+v+`}`))
	}
	c := Condition{Kind: "event_match", Key: "content.topic", Pattern: strp("lunc?*")}
	for v, want := range map[string]bool{`"Lunch plans"`: true, `"LUNCH"`: true, `" lunch"`: false, `"lunc"`: false, `null`: false} {
		if got := conditionMatch(context.Background(), &c, topic(v), "", nil); got != want {
			t.Errorf("lunc?* on topic %s: %v, want %v", v, got, want)
		}
	}
	body := func(v string) *Event {
		return NewEvent("$1", "!r", "m.room.message", "@a:x", nil, []byte(`{"body":"`+v+`"}`))
	}
	c = Condition{Kind: "event_match", Key: "content.body", Pattern: strp("ex*ple")}
	for v, want := range map[string]bool{"An example event.": true, "exple": true, "An exciting triple-whammy": true, "examples": false, "anexample": false} {
		if got := conditionMatch(context.Background(), &c, body(v), "", nil); got != want {
			t.Errorf("ex*ple on body %q: %v, want %v", v, got, want)
		}
	}
	create := NewEvent("$1", "!r", "m.room.create", "@a:x", strp(""), []byte(`{"m.federate":true,"room_version":"1"}`))
	c = Condition{Kind: "event_property_is", Key: `content.m\.federate`, Value: true}
	if !conditionMatch(context.Background(), &c, create, "", nil) {
		t.Error(`content.m\.federate is true: no match`)
	}
	c.Value = "true"
	if conditionMatch(context.Background(), &c, create, "", nil) {
		t.Error(`string "true" matched boolean true`)
	}
	for is, want := range map[string]bool{"2": true, "==2": true, "<3": true, ">2": false, ">=2": true, "<=1": false} {
		c := Condition{Kind: "room_member_count", Is: is}
		if got := conditionMatch(context.Background(), &c, create, "", fakeRoom{members: 2}); got != want {
			t.Errorf("room_member_count %s with 2: %v", is, got)
		}
	}
	if got := SplitPath(`content.m\.relates_to.a\\b`); len(got) != 3 || got[1] != "m.relates_to" || got[2] != `a\b` {
		t.Errorf("SplitPath: %q", got)
	}
}

func TestUserRuleKinds(t *testing.T) {
	const me = "@alice:x"
	ctx := context.Background()
	msg := NewEvent("$1", "!room", "m.room.message", "@bob:x", nil, []byte(`{"msgtype":"m.text","body":"I like cake a lot"}`))
	for _, tc := range []struct {
		kind string
		rule Rule
	}{
		{"content", Rule{RuleID: "cake", Enabled: true, Pattern: "cake", Actions: []any{"notify", map[string]any{"set_tweak": "highlight"}}}},
		{"room", Rule{RuleID: "!room", Enabled: true, Actions: []any{"notify", map[string]any{"set_tweak": "highlight"}}}},
		{"sender", Rule{RuleID: "@bob:x", Enabled: true, Actions: []any{"notify", map[string]any{"set_tweak": "highlight", "value": true}}}},
	} {
		rs := DefaultRuleset(me)
		*rs.kind(tc.kind) = []Rule{tc.rule}
		if o := rs.Evaluate(ctx, msg, me, fakeRoom{members: 3}); o.RuleID != tc.rule.RuleID || !o.Highlight {
			t.Errorf("%s rule: %+v", tc.kind, o)
		}
	}
	rs := DefaultRuleset(me)
	rs.Room = []Rule{{RuleID: "!room", Enabled: true, Actions: []any{}}}
	if o := rs.Evaluate(ctx, msg, me, fakeRoom{members: 3}); o.Notify {
		t.Errorf("muted room notified: %+v", o)
	}
	rs.Override = append([]Rule{{RuleID: "dn", Enabled: true, Conditions: []Condition{{Kind: "contains_display_name"}},
		Actions: []any{"notify", map[string]any{"set_tweak": "highlight", "value": false}}}}, rs.Override...)
	named := NewEvent("$2", "!other", "m.room.message", "@bob:x", nil, []byte(`{"body":"ask Alice!"}`))
	if o := rs.Evaluate(ctx, named, me, fakeRoom{name: "alice"}); o.RuleID != "dn" || !o.Notify || o.Highlight {
		t.Errorf("display name rule: %+v", o)
	}
}
