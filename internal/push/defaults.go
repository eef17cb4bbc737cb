// Package push holds push rules and push delivery: the server-default rule
// set every user starts with, each user's own rules (stored as m.push_rules
// account data), the evaluator that decides whether an event notifies or
// highlights (used by /sync's counts, /notifications and delivery), and the
// durable queue that sends notifications to users' push gateways.
package push

// Ruleset is a user's rules of one scope ("global"), by kind, in priority
// order within each kind.
type Ruleset struct {
	Override []Rule `json:"override"`
	Content  []Rule `json:"content"`
	// Postcontent is MSC4306's kind between content and room: present only
	// with thread subscriptions on, and holding only server-default rules.
	Postcontent []Rule `json:"postcontent,omitempty"`
	Room        []Rule `json:"room"`
	Sender      []Rule `json:"sender"`
	Underride   []Rule `json:"underride"`
}

// Rule is one push rule as the client-server API shows it.
type Rule struct {
	RuleID  string `json:"rule_id"`
	Default bool   `json:"default"`
	Enabled bool   `json:"enabled"`
	// Conditions is present (possibly empty) on override and underride
	// rules and absent on the others.
	Conditions []Condition `json:"conditions,omitzero"`
	Pattern    string      `json:"pattern,omitempty"`
	Actions    []any       `json:"actions"`
}

// Condition is one push condition.
type Condition struct {
	Kind    string  `json:"kind"`
	Key     string  `json:"key,omitempty"`
	Pattern *string `json:"pattern,omitempty"` // "" is a real pattern (state_key of state events)
	Value   any     `json:"value,omitzero"`    // false is a real value
	Is      string  `json:"is,omitempty"`
	// Subscribed is the argument of MSC4306's thread subscription condition.
	Subscribed *bool `json:"subscribed,omitempty"`
}

// Actions and tweaks used by the defaults.
var (
	notify       any = "notify"
	soundDefault any = map[string]any{"set_tweak": "sound", "value": "default"}
	soundRing    any = map[string]any{"set_tweak": "sound", "value": "ring"}
	highlight    any = map[string]any{"set_tweak": "highlight"}
)

func match(key, pattern string) Condition {
	return Condition{Kind: "event_match", Key: key, Pattern: &pattern}
}

func rule(id string, enabled bool, conds []Condition, actions ...any) Rule {
	if conds == nil {
		conds = []Condition{}
	}
	if actions == nil {
		actions = []any{}
	}
	return Rule{RuleID: id, Default: true, Enabled: enabled, Conditions: conds, Actions: actions}
}

// DefaultRuleset is the spec's server-default rule set (client-server API,
// "Predefined Rules", v1.17: the legacy body-matching mention rules are
// gone, so the content kind is empty) for userID, plus MSC3930's rules
// for polls.
func DefaultRuleset(userID string) Ruleset {
	return Ruleset{
		Override: []Rule{
			rule(".m.rule.master", false, nil),
			rule(".m.rule.suppress_notices", true, []Condition{match("content.msgtype", "m.notice")}),
			rule(".m.rule.invite_for_me", true, []Condition{
				match("type", "m.room.member"), match("content.membership", "invite"), match("state_key", userID),
			}, notify, soundDefault),
			rule(".m.rule.member_event", true, []Condition{match("type", "m.room.member")}),
			rule(".m.rule.is_user_mention", true, []Condition{
				{Kind: "event_property_contains", Key: `content.m\.mentions.user_ids`, Value: userID},
			}, notify, soundDefault, highlight),
			rule(".m.rule.is_room_mention", true, []Condition{
				{Kind: "event_property_is", Key: `content.m\.mentions.room`, Value: true},
				{Kind: "sender_notification_permission", Key: "room"},
			}, notify, highlight),
			rule(".m.rule.tombstone", true, []Condition{match("type", "m.room.tombstone"), match("state_key", "")}, notify, highlight),
			rule(".m.rule.reaction", true, []Condition{match("type", "m.reaction")}),
			rule(".m.rule.room.server_acl", true, []Condition{match("type", "m.room.server_acl"), match("state_key", "")}),
			rule(".m.rule.suppress_edits", true, []Condition{
				{Kind: "event_property_is", Key: `content.m\.relates_to.rel_type`, Value: "m.replace"},
			}),
			// Not in the spec: poll votes never notify (MSC3930, as
			// Synapse and the clients that show these rules have it).
			rule(pollRule+"poll_response", true, []Condition{match("type", "org.matrix.msc3381.poll.response")}),
		},
		Content: []Rule{},
		Room:    []Rule{},
		Sender:  []Rule{},
		Underride: []Rule{
			rule(".m.rule.call", true, []Condition{match("type", "m.call.invite")}, notify, soundRing),
			rule(".m.rule.encrypted_room_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"}, match("type", "m.room.encrypted"),
			}, notify, soundDefault),
			rule(".m.rule.room_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"}, match("type", "m.room.message"),
			}, notify, soundDefault),
			rule(".m.rule.message", true, []Condition{match("type", "m.room.message")}, notify),
			rule(".m.rule.encrypted", true, []Condition{match("type", "m.room.encrypted")}, notify),
			// Not in the spec: polls notify as messages do (MSC3930; the
			// poll events of MSC3381 carry their unstable types), the
			// one-to-one rules first.
			rule(pollRule+"poll_start_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"}, match("type", "org.matrix.msc3381.poll.start"),
			}, notify, soundDefault),
			rule(pollRule+"poll_start", true, []Condition{match("type", "org.matrix.msc3381.poll.start")}, notify),
			rule(pollRule+"poll_end_one_to_one", true, []Condition{
				{Kind: "room_member_count", Is: "2"}, match("type", "org.matrix.msc3381.poll.end"),
			}, notify, soundDefault),
			rule(pollRule+"poll_end", true, []Condition{match("type", "org.matrix.msc3381.poll.end")}, notify),
		},
	}
}

// pollRule prefixes the IDs of MSC3930's poll rules, which keep the MSC's
// unstable prefix until the spec has them.
const pollRule = ".org.matrix.msc3930.rule."

// ThreadSubscriptionCondition is MSC4306's condition kind, under its
// unstable name: the event is in a thread the user is (subscribed: true)
// or is not (false) subscribed to.
const ThreadSubscriptionCondition = "io.element.msc4306.thread_subscription"

// threadSubscriptionRules are MSC4306's postcontent rules: after content
// rules (keyword mentions still notify) and before room rules (a muted room
// still notifies of subscribed threads), messages in threads notify only
// users subscribed to them.
func threadSubscriptionRules() []Rule {
	no, yes := false, true
	return []Rule{
		rule(".io.element.msc4306.rule.unsubscribed_thread", true, []Condition{{Kind: ThreadSubscriptionCondition, Subscribed: &no}}),
		rule(".io.element.msc4306.rule.subscribed_thread", true, []Condition{{Kind: ThreadSubscriptionCondition, Subscribed: &yes}}, notify, soundDefault),
	}
}
