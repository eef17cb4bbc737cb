package push

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/axon-matrix/axon/internal/rooms"
)

// Evaluator runs users' push rules over room events. It remembers, per
// recent event, the decoded content and the room facts conditions asked
// about, so evaluating one event for every member of a big room decodes it
// and counts the members once.
type Evaluator struct {
	rooms *rooms.Service
	rules *Rules // nil: everyone has the server defaults

	// Subscribers, when set, returns the users subscribed to a thread
	// (MSC4306's thread subscription condition); asked once per event.
	Subscribers func(ctx context.Context, roomID, rootID string) (map[string]bool, error)

	mu     sync.Mutex
	recent map[string]*eventFacts
}

// maxRecentFacts bounds the per-event memo.
const maxRecentFacts = 4096

type eventFacts struct {
	ev *Event

	mu          sync.Mutex
	memberCount int
	counted     bool
	mayNotify   map[string]bool
	subscribers map[string]bool // of the event's thread; nil until asked
}

// NewEvaluator creates an evaluator; rules may be nil (defaults only).
func NewEvaluator(rs *rooms.Service, rules *Rules) *Evaluator {
	return &Evaluator{rooms: rs, rules: rules, recent: map[string]*eventFacts{}}
}

// Rules returns the rule store (nil when defaults only).
func (e *Evaluator) Rules() *Rules { return e.rules }

func (e *Evaluator) facts(ev *rooms.Event) *eventFacts {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, ok := e.recent[ev.EventID]
	if ok {
		return f
	}
	if len(e.recent) >= maxRecentFacts {
		e.recent = map[string]*eventFacts{}
	}
	f = &eventFacts{ev: NewEvent(ev.EventID, ev.RoomID, ev.Type, ev.Sender, ev.StateKey, ev.PDU.Content)}
	e.recent[ev.EventID] = f
	return f
}

// RulesetOf returns the user's rules.
func (e *Evaluator) RulesetOf(ctx context.Context, user string) (*Ruleset, error) {
	if e.rules == nil {
		d := e.rules.Defaults(user)
		return &d, nil
	}
	return e.rules.Get(ctx, user)
}

// Evaluate returns what the user's rules do with ev. The user's own events
// never notify them, nor do any events of users they ignore (invites
// included, which the spec has servers not show): no push, no unread count,
// no /notifications entry.
func (e *Evaluator) Evaluate(ctx context.Context, ev *rooms.Event, user string) (Outcome, error) {
	if ev.Sender == user {
		return Outcome{Tweaks: map[string]any{"highlight": false}}, nil
	}
	ignored, err := e.rooms.IgnoredUsers(ctx, user)
	if err != nil {
		return Outcome{}, err
	}
	if ignored[ev.Sender] {
		return Outcome{Tweaks: map[string]any{"highlight": false}}, nil
	}
	rs, err := e.RulesetOf(ctx, user)
	if err != nil {
		return Outcome{}, err
	}
	f := e.facts(ev)
	return rs.Evaluate(ctx, f.ev, user, &roomView{e: e, f: f, user: user}), nil
}

// roomView answers room conditions for one event and user.
type roomView struct {
	e    *Evaluator
	f    *eventFacts
	user string
}

func (v *roomView) MemberCount(ctx context.Context) int {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if !v.f.counted {
		m, err := v.e.rooms.MembersByMembership(ctx, v.f.ev.RoomID)
		if err != nil {
			return 0 // not cached: a later evaluation may succeed
		}
		v.f.memberCount, v.f.counted = len(m["join"]), true
	}
	return v.f.memberCount
}

func (v *roomView) DisplayName(ctx context.Context) string {
	ev, err := v.e.rooms.CurrentStateEvent(ctx, v.f.ev.RoomID, "m.room.member", v.user)
	if err != nil || ev == nil {
		return ""
	}
	var c struct {
		DisplayName string `json:"displayname"`
	}
	_ = json.Unmarshal(ev.PDU.Content, &c)
	return c.DisplayName
}

func (v *roomView) SenderMayNotify(ctx context.Context, key string) bool {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if ok, done := v.f.mayNotify[key]; done {
		return ok
	}
	pl, err := v.e.rooms.PowerLevels(ctx, v.f.ev.RoomID)
	if err != nil {
		return false
	}
	ok := pl.UserLevel(v.f.ev.Sender) >= pl.NotificationLevel(key)
	if v.f.mayNotify == nil {
		v.f.mayNotify = map[string]bool{}
	}
	v.f.mayNotify[key] = ok
	return ok
}

func (v *roomView) ThreadSubscribed(ctx context.Context, rootID string) bool {
	if v.e.Subscribers == nil {
		return false
	}
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if v.f.subscribers == nil {
		subs, err := v.e.Subscribers(ctx, v.f.ev.RoomID, rootID)
		if err != nil {
			return false // not cached: a later evaluation may succeed
		}
		v.f.subscribers = subs
	}
	return v.f.subscribers[v.user]
}

// DefaultContent is the m.push_rules content of a user who never changed a
// rule.
func (e *Evaluator) DefaultContent(user string) map[string]any {
	return e.rules.DefaultContent(user)
}
