package push

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Event is the part of an event push rules look at: its top-level fields as
// a client sees them, with content decoded.
type Event struct {
	ID       string
	RoomID   string
	Type     string
	Sender   string
	StateKey *string
	// Content is the decoded content object (nil when not an object).
	Content map[string]any
}

// NewEvent decodes raw content into an Event.
func NewEvent(eventID, roomID, typ, sender string, stateKey *string, content []byte) *Event {
	ev := &Event{ID: eventID, RoomID: roomID, Type: typ, Sender: sender, StateKey: stateKey}
	_ = json.Unmarshal(content, &ev.Content) // not an object: no content properties match
	return ev
}

// value returns the event property at a dot-separated path.
func (ev *Event) value(path []string) (any, bool) {
	if len(path) == 0 {
		return nil, false
	}
	switch path[0] {
	case "content":
		var cur any = ev.Content
		if ev.Content == nil {
			return nil, false
		}
		for _, p := range path[1:] {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[p]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	if len(path) != 1 {
		return nil, false
	}
	switch path[0] {
	case "type":
		return ev.Type, true
	case "sender":
		return ev.Sender, true
	case "room_id":
		return ev.RoomID, true
	case "event_id":
		return ev.ID, true
	case "state_key":
		if ev.StateKey == nil {
			return nil, false
		}
		return *ev.StateKey, true
	}
	return nil, false
}

// threadRoot returns the root of the thread the event is in, "" when it
// is in none.
func (ev *Event) threadRoot() string {
	rel, _ := ev.Content["m.relates_to"].(map[string]any)
	if t, _ := rel["rel_type"].(string); t != "m.thread" {
		return ""
	}
	root, _ := rel["event_id"].(string)
	return root
}

// Room answers the questions about the room that some conditions ask. It is
// only consulted when a rule gets that far, so evaluating a message against
// the defaults rarely touches it.
type Room interface {
	// MemberCount is the number of joined members.
	MemberCount(ctx context.Context) int
	// DisplayName is the evaluated user's display name in the room.
	DisplayName(ctx context.Context) string
	// SenderMayNotify reports whether the event's sender has the power
	// level the notification key (e.g. "room") requires.
	SenderMayNotify(ctx context.Context, key string) bool
	// ThreadSubscribed reports whether the evaluated user is subscribed
	// to the thread with this root (MSC4306).
	ThreadSubscribed(ctx context.Context, rootID string) bool
}

// Outcome is what the first matching rule asks for.
type Outcome struct {
	RuleID    string
	Actions   []any
	Notify    bool
	Highlight bool
	// Tweaks are the set_tweak actions, highlight always present as a bool.
	Tweaks map[string]any
}

// Evaluate runs the rule set over an event for user and returns the
// outcome of the first enabled rule that matches (zero Outcome when none).
func (rs *Ruleset) Evaluate(ctx context.Context, ev *Event, user string, room Room) Outcome {
	for _, kind := range []struct {
		name  string
		rules []Rule
	}{{"override", rs.Override}, {"content", rs.Content}, {"postcontent", rs.Postcontent}, {"room", rs.Room}, {"sender", rs.Sender}, {"underride", rs.Underride}} {
		for i := range kind.rules {
			r := &kind.rules[i]
			if !r.Enabled {
				continue
			}
			var ok bool
			switch kind.name {
			case "override", "postcontent", "underride":
				ok = conditionsMatch(ctx, r.Conditions, ev, user, room)
			case "content":
				ok = ev.Type != "" && bodyMatch(ev, r.Pattern)
			case "room":
				ok = r.RuleID == ev.RoomID
			case "sender":
				ok = r.RuleID == ev.Sender
			}
			if ok {
				return ActionsOutcome(r.RuleID, r.Actions)
			}
		}
	}
	return Outcome{}
}

// ActionsOutcome interprets a rule's actions.
func ActionsOutcome(ruleID string, actions []any) Outcome {
	o := Outcome{RuleID: ruleID, Actions: actions, Tweaks: map[string]any{"highlight": false}}
	for _, a := range actions {
		switch a := a.(type) {
		case string:
			// "coalesce" is a notify that may be merged; "dont_notify" is
			// the legacy spelling of no action.
			if a == "notify" || a == "coalesce" {
				o.Notify = true
			}
		case map[string]any:
			tweak, _ := a["set_tweak"].(string)
			if tweak == "" {
				continue
			}
			v, has := a["value"]
			if tweak == "highlight" {
				b, isBool := v.(bool)
				o.Highlight = !has || (isBool && b)
				o.Tweaks["highlight"] = o.Highlight
				continue
			}
			if has {
				o.Tweaks[tweak] = v
			}
		}
	}
	if !o.Notify {
		// Tweaks only mean something for notifying events; a highlight
		// without notify does not count.
		o.Highlight = false
		o.Tweaks = map[string]any{"highlight": false}
	}
	return o
}

func isRoomCondition(kind string) bool {
	return kind == "room_member_count" || kind == "sender_notification_permission" || kind == "contains_display_name" ||
		kind == ThreadSubscriptionCondition
}

// conditionsMatch checks every condition, the ones that only read the event
// first so the room is consulted only when those all pass.
func conditionsMatch(ctx context.Context, conds []Condition, ev *Event, user string, room Room) bool {
	for pass := 0; pass < 2; pass++ {
		for i := range conds {
			c := &conds[i]
			if isRoomCondition(c.Kind) != (pass == 1) {
				continue
			}
			if !conditionMatch(ctx, c, ev, user, room) {
				return false
			}
		}
	}
	return true
}

func conditionMatch(ctx context.Context, c *Condition, ev *Event, user string, room Room) bool {
	switch c.Kind {
	case "event_match":
		if c.Pattern == nil {
			return false
		}
		if c.Key == "content.body" {
			return bodyMatch(ev, *c.Pattern)
		}
		v, ok := ev.value(SplitPath(c.Key))
		s, isStr := v.(string)
		return ok && isStr && globMatch(*c.Pattern, s, false)
	case "event_property_is":
		v, ok := ev.value(SplitPath(c.Key))
		return ok && scalarEqual(v, c.Value)
	case "event_property_contains":
		v, ok := ev.value(SplitPath(c.Key))
		arr, isArr := v.([]any)
		if !ok || !isArr {
			return false
		}
		for _, x := range arr {
			if scalarEqual(x, c.Value) {
				return true
			}
		}
		return false
	case "contains_display_name":
		if room == nil {
			return false
		}
		name := room.DisplayName(ctx)
		body, _ := ev.Content["body"].(string)
		return name != "" && containsWord(body, name)
	case "room_member_count":
		if room == nil {
			return false
		}
		return memberCountMatch(c.Is, room.MemberCount(ctx))
	case "sender_notification_permission":
		return room != nil && room.SenderMayNotify(ctx, c.Key)
	case ThreadSubscriptionCondition:
		root := ev.threadRoot()
		if room == nil || c.Subscribed == nil || root == "" {
			return false
		}
		return room.ThreadSubscribed(ctx, root) == *c.Subscribed
	}
	// Unknown conditions never match (the spec: the rule then never applies).
	return false
}

// SplitPath splits a dot-separated property path, honouring the \. and \\
// escapes.
func SplitPath(key string) []string {
	if !strings.Contains(key, `\`) {
		return strings.Split(key, ".")
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '\\' && i+1 < len(key) && (key[i+1] == '.' || key[i+1] == '\\'):
			cur.WriteByte(key[i+1])
			i++
		case c == '.':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// scalarEqual compares non-compound JSON values: strings, integers, booleans
// and null.
func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := toFloat(b)
		return ok && x == y
	case json.Number:
		xf, err := x.Float64()
		y, ok := toFloat(b)
		return err == nil && ok && xf == y
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func memberCountMatch(is string, n int) bool {
	op := ""
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(is, p) {
			op = p
			break
		}
	}
	want, err := strconv.Atoi(is[len(op):])
	if err != nil {
		return false
	}
	switch op {
	case "", "==":
		return n == want
	case "<":
		return n < want
	case ">":
		return n > want
	case "<=":
		return n <= want
	case ">=":
		return n >= want
	}
	return false
}

// bodyMatch matches a glob against content.body at word boundaries.
func bodyMatch(ev *Event, pattern string) bool {
	body, ok := ev.Content["body"].(string)
	return ok && globMatch(pattern, body, true)
}

var globCache sync.Map // pattern + "\x00" + word flag -> *regexp.Regexp

// globMatch matches a glob (* and ?) case-insensitively against the whole of
// s, or, with words, against any substring of s that starts and ends at a
// word boundary.
func globMatch(pattern, s string, words bool) bool {
	if !words && !strings.ContainsAny(pattern, "*?") {
		return strings.EqualFold(pattern, s)
	}
	key := pattern + "\x00" + strconv.FormatBool(words)
	re, ok := globCache.Load(key)
	if !ok {
		var b strings.Builder
		b.WriteString("(?is)")
		if words {
			b.WriteString(`(?:^|[^A-Za-z0-9_])`)
		} else {
			b.WriteString("^")
		}
		for _, r := range pattern {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		if words {
			b.WriteString(`(?:[^A-Za-z0-9_]|$)`)
		} else {
			b.WriteString("$")
		}
		re, _ = globCache.LoadOrStore(key, regexp.MustCompile(b.String()))
	}
	return re.(*regexp.Regexp).MatchString(s)
}

// containsWord matches name in body at word boundaries, case-insensitively.
func containsWord(body, name string) bool {
	if name == "" || body == "" {
		return false
	}
	lb, ln := strings.ToLower(body), strings.ToLower(name)
	for from := 0; ; {
		idx := strings.Index(lb[from:], ln)
		if idx < 0 {
			return false
		}
		idx += from
		end := idx + len(ln)
		if (idx == 0 || !isWordChar(lb[idx-1])) && (end >= len(lb) || !isWordChar(lb[end])) {
			return true
		}
		from = idx + 1
	}
}

func isWordChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
