package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/axon-matrix/axon/internal/accountdata"
	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// AccountDataType is the global account data entry holding a user's rules.
const AccountDataType = "m.push_rules"

// Kinds are the rule kinds in priority order.
var Kinds = []string{"override", "content", "postcontent", "room", "sender", "underride"}

// kind returns the slice of a kind, or nil for an unknown kind.
func (rs *Ruleset) kind(k string) *[]Rule {
	switch k {
	case "override":
		return &rs.Override
	case "content":
		return &rs.Content
	case "postcontent":
		return &rs.Postcontent
	case "room":
		return &rs.Room
	case "sender":
		return &rs.Sender
	case "underride":
		return &rs.Underride
	}
	return nil
}

// clone returns a deep enough copy for editing (rules are replaced, never
// mutated in place).
func (rs *Ruleset) clone() *Ruleset {
	c := &Ruleset{}
	for _, k := range Kinds {
		*c.kind(k) = append([]Rule{}, *rs.kind(k)...)
	}
	return c
}

// Rules stores each user's rule set as the m.push_rules account data entry
// ({"global": ruleset}) and keeps parsed copies in memory: sync and push
// delivery ask for them on every evaluation.
type Rules struct {
	db *storage.DB
	ad *accountdata.Service

	cache *loadcache.Map[string, *Ruleset]
	// threadSubscriptions adds MSC4306's postcontent rules to the defaults.
	threadSubscriptions bool
}

// WithThreadSubscriptions makes MSC4306's postcontent rules part of every
// user's defaults, and returns r. Without it, stored postcontent rules (of
// a time it was on) are ignored.
func (r *Rules) WithThreadSubscriptions() *Rules {
	r.threadSubscriptions = true
	return r
}

// Defaults returns the server-default rules of user.
func (r *Rules) Defaults(user string) Ruleset {
	d := DefaultRuleset(user)
	if r != nil && r.threadSubscriptions {
		d.Postcontent = threadSubscriptionRules()
	}
	return d
}

// maxCachedRulesets bounds the cache; it refills from storage.
const maxCachedRulesets = 50000

// NewRules creates the store. A user's cached rules are dropped when the
// change feed announces a write of their m.push_rules, whoever made it.
func NewRules(db *storage.DB) *Rules {
	r := &Rules{db: db, ad: accountdata.New(db), cache: loadcache.New[string, *Ruleset](maxCachedRulesets)}
	db.Feed().Subscribe(func(c storage.Change) {
		if c.Kind == storage.KindAccountData && c.Room == "" && c.Type == AccountDataType {
			r.cache.Forget(c.Users[0])
		}
	})
	return r
}

// Get returns the user's rules: the stored set once the user changed
// something, else the server defaults. The result is shared: do not modify.
func (r *Rules) Get(ctx context.Context, user string) (*Ruleset, error) {
	return r.cache.Load(user, func() (*Ruleset, error) {
		raw, err := r.db.GetAccountData(ctx, user, "", AccountDataType)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("push rules of %s: %w", user, err)
		}
		return r.parseStored(raw, user), nil
	})
}

// parseStored reads stored account data, falling back to the defaults when
// it is absent or unusable.
func (r *Rules) parseStored(raw []byte, user string) *Ruleset {
	defaults := r.Defaults(user)
	if raw != nil {
		var c struct {
			Global *Ruleset `json:"global"`
		}
		if json.Unmarshal(raw, &c) == nil && c.Global != nil {
			for _, k := range Kinds {
				if *c.Global.kind(k) == nil {
					*c.Global.kind(k) = []Rule{}
				}
			}
			if defaults.Postcontent == nil {
				c.Global.Postcontent = nil
			}
			addMissingDefaults(c.Global, defaults)
			return c.Global
		}
	}
	return &defaults
}

// addMissingDefaults adds the server-default rules a stored rule set
// lacks: rules that became defaults after the user first changed a rule
// (the stored set is a whole copy). Clients cannot delete default rules,
// so a missing one was never there. Each goes after the default rule it
// follows in the defaults, or first among them when none does.
func addMissingDefaults(rs *Ruleset, defaults Ruleset) {
	for _, k := range Kinds {
		rules := rs.kind(k)
		for i, d := range *defaults.kind(k) {
			if indexOf(*rules, d.RuleID) >= 0 {
				continue
			}
			at := -1
			for j := i - 1; j >= 0 && at < 0; j-- {
				if p := indexOf(*rules, (*defaults.kind(k))[j].RuleID); p >= 0 {
					at = p + 1
				}
			}
			if at < 0 {
				// No earlier default: before the first default rule, after
				// the user's own (which outrank defaults), master aside.
				at = len(*rules)
				for j, r := range *rules {
					if r.Default && r.RuleID != ".m.rule.master" {
						at = j
						break
					}
				}
			}
			*rules = slices.Insert(*rules, at, d)
		}
	}
}

// indexOf returns the position of the rule with this ID, or -1.
func indexOf(rules []Rule, id string) int {
	return slices.IndexFunc(rules, func(r Rule) bool { return r.RuleID == id })
}

// DefaultContent is the m.push_rules content of a user who never changed a
// rule (what an initial sync shows).
func (r *Rules) DefaultContent(user string) map[string]any {
	return map[string]any{"global": r.Defaults(user)}
}

// update applies fn to a copy of the user's rules and stores the result.
// The cached copy is dropped by the feed when the write commits.
func (r *Rules) update(ctx context.Context, user string, fn func(rs *Ruleset) error) error {
	_, err := r.ad.Update(ctx, user, "", AccountDataType, func(old []byte) ([]byte, bool, error) {
		rs := r.parseStored(old, user).clone()
		if err := fn(rs); err != nil {
			return nil, false, err
		}
		b, err := json.Marshal(map[string]any{"global": rs})
		return b, err == nil, err
	})
	return err
}

func checkKind(kind string) error {
	if !slices.Contains(Kinds, kind) {
		return mxerr.InvalidParam("Unknown push rule kind %q", kind)
	}
	return nil
}

// checkExisting answers a request for an existing rule under an unknown
// kind: no such rule exists, and 404 is the only error the spec gives
// those endpoints (clients probe for optional rules, MSC4306's
// postcontent ones, and take 404 as "absent").
func checkExisting(kind, ruleID string) error {
	if !slices.Contains(Kinds, kind) {
		return mxerr.NotFound("Unknown push rule %s/%s", kind, ruleID)
	}
	return nil
}

// Rule returns one rule.
func (r *Rules) Rule(ctx context.Context, user, kind, ruleID string) (*Rule, error) {
	if err := checkExisting(kind, ruleID); err != nil {
		return nil, err
	}
	rs, err := r.Get(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, rule := range *rs.kind(kind) {
		if rule.RuleID == ruleID {
			return &rule, nil
		}
	}
	return nil, mxerr.NotFound("Unknown push rule %s/%s", kind, ruleID)
}

// NewRule is the body of PUT /pushrules/global/{kind}/{ruleId}.
type NewRule struct {
	Actions    []any       `json:"actions"`
	Conditions []Condition `json:"conditions"`
	Pattern    *string     `json:"pattern"`
}

// Put creates or replaces a user-defined rule; before and after (optional)
// name user-defined rules of the same kind to place it next to.
func (r *Rules) Put(ctx context.Context, user, kind, ruleID string, nr NewRule, before, after string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if kind == "postcontent" {
		// MSC4306: only the server's rules live there, for now.
		return mxerr.InvalidParam("Clients cannot create postcontent rules")
	}
	if ruleID == "" || strings.HasPrefix(ruleID, ".") || strings.ContainsAny(ruleID, `/\`) {
		return mxerr.InvalidParam("Invalid rule ID %q: it must not start with '.' or contain slashes", ruleID)
	}
	if nr.Actions == nil {
		return mxerr.MissingParam("Missing actions")
	}
	if err := checkActions(nr.Actions); err != nil {
		return err
	}
	rule := Rule{RuleID: ruleID, Enabled: true, Actions: nr.Actions}
	switch kind {
	case "override", "underride":
		rule.Conditions = nr.Conditions
		if rule.Conditions == nil {
			rule.Conditions = []Condition{}
		}
		for _, c := range rule.Conditions {
			if c.Kind == "" {
				return mxerr.BadJSON("Every condition needs a kind")
			}
		}
	case "content":
		if nr.Pattern == nil || *nr.Pattern == "" {
			return mxerr.MissingParam("Content rules need a pattern")
		}
		rule.Pattern = *nr.Pattern
	}
	return r.update(ctx, user, func(rs *Ruleset) error {
		list := rs.kind(kind)
		// A replaced rule keeps its place unless told otherwise.
		at := -1
		for i, x := range *list {
			if x.RuleID == ruleID {
				at = i
				rule.Enabled = x.Enabled
				*list = append((*list)[:i:i], (*list)[i+1:]...)
				break
			}
		}
		pos, err := position(*list, before, after)
		if err != nil {
			return err
		}
		if pos < 0 {
			pos = at
		}
		if pos < 0 {
			// New rules are the most important user-defined rule of the kind.
			pos = firstUserIndex(*list, kind)
		}
		*list = append((*list)[:pos:pos], append([]Rule{rule}, (*list)[pos:]...)...)
		return nil
	})
}

// firstUserIndex is where the most important user-defined rule of a kind
// goes: at the first existing user rule, else after .m.rule.master (which
// stays first) for overrides and before the defaults for the other kinds,
// as user underrides must outrank the default ones to take effect.
func firstUserIndex(list []Rule, kind string) int {
	for i, x := range list {
		if !x.Default {
			return i
		}
	}
	if kind == "override" && len(list) > 0 && list[0].RuleID == ".m.rule.master" {
		return 1
	}
	return 0
}

// position resolves before/after to an index in list (-1 when neither).
func position(list []Rule, before, after string) (int, error) {
	find := func(id string) (int, error) {
		for i, x := range list {
			if x.RuleID == id {
				if x.Default {
					return 0, mxerr.InvalidParam("Cannot place a rule relative to the server-default rule %s", id)
				}
				return i, nil
			}
		}
		return 0, mxerr.NotFound("Unknown push rule %s", id)
	}
	if before != "" {
		return find(before)
	}
	if after != "" {
		i, err := find(after)
		return i + 1, err
	}
	return -1, nil
}

func checkActions(actions []any) error {
	for _, a := range actions {
		switch a := a.(type) {
		case string:
			switch a {
			case "notify", "dont_notify", "coalesce":
			default:
				return mxerr.New("M_UNKNOWN", "Unknown action %q", a).WithStatus(400)
			}
		case map[string]any:
			if _, ok := a["set_tweak"].(string); !ok {
				return mxerr.New("M_UNKNOWN", "Action objects need set_tweak").WithStatus(400)
			}
		default:
			return mxerr.New("M_UNKNOWN", "Invalid action").WithStatus(400)
		}
	}
	return nil
}

// Delete removes a user-defined rule.
func (r *Rules) Delete(ctx context.Context, user, kind, ruleID string) error {
	if err := checkExisting(kind, ruleID); err != nil {
		return err
	}
	return r.update(ctx, user, func(rs *Ruleset) error {
		list := rs.kind(kind)
		for i, x := range *list {
			if x.RuleID == ruleID {
				if x.Default {
					return mxerr.InvalidParam("Server-default rules cannot be deleted")
				}
				*list = append((*list)[:i:i], (*list)[i+1:]...)
				return nil
			}
		}
		return mxerr.NotFound("Unknown push rule %s/%s", kind, ruleID)
	})
}

// SetEnabled enables or disables a rule.
func (r *Rules) SetEnabled(ctx context.Context, user, kind, ruleID string, enabled bool) error {
	return r.modify(ctx, user, kind, ruleID, func(x *Rule) error { x.Enabled = enabled; return nil })
}

// SetActions replaces a rule's actions.
func (r *Rules) SetActions(ctx context.Context, user, kind, ruleID string, actions []any) error {
	if actions == nil {
		return mxerr.MissingParam("Missing actions")
	}
	if err := checkActions(actions); err != nil {
		return err
	}
	return r.modify(ctx, user, kind, ruleID, func(x *Rule) error { x.Actions = actions; return nil })
}

func (r *Rules) modify(ctx context.Context, user, kind, ruleID string, fn func(*Rule) error) error {
	if err := checkExisting(kind, ruleID); err != nil {
		return err
	}
	return r.update(ctx, user, func(rs *Ruleset) error {
		list := *rs.kind(kind)
		for i := range list {
			if list[i].RuleID == ruleID {
				return fn(&list[i])
			}
		}
		return mxerr.NotFound("Unknown push rule %s/%s", kind, ruleID)
	})
}
