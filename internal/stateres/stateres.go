package stateres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// Key identifies one piece of room state.
type Key struct{ Type, StateKey string }

// State maps state keys to event IDs.
type State map[Key]string

// FetchFunc returns the events with the given IDs (state events and events of
// their auth chains); missing ones are simply absent from the result. The PDUs
// have InternalMeta.EventID set.
type FetchFunc func(ctx context.Context, ids []string) ([]*pdu.PDU, error)

// ErrUnsupportedVersion is returned for room versions whose state resolution
// algorithm this package does not implement (v1) or does not know.
var ErrUnsupportedVersion = errors.New("stateres: unsupported room version")

// Resolve returns the resolution of the state sets (e.g. the states after each
// prev event of a new event) for the room version: v2 for rooms v2..v11, v2.1
// for v12. Room version 1 returns ErrUnsupportedVersion. The sets are not
// modified; the result is a new map.
func Resolve(ctx context.Context, version id.RoomVersion, sets []State, fetch FetchFunc) (State, error) {
	if !version.IsKnown() || version.StateResVersion() == id.StateResV1 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedVersion, version)
	}
	switch len(sets) {
	case 0:
		return State{}, nil
	case 1:
		return copyState(sets[0]), nil
	}
	unconflicted, conflicted := separate(sets)
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	r := &resolver{
		ctx:     ctx,
		version: version,
		v21:     version.StateResVersion() == id.StateResV2_1,
		fetch:   fetch,
		events:  make(map[string]*pdu.PDU),
		missing: make(map[string]bool),
	}
	return r.resolve(sets, unconflicted, conflicted)
}

// separate splits the keys of the sets into the unconflicted map (same event
// in every set) and, for every other key, the distinct events the sets hold
// for it. A key missing from some set is conflicted even if the others agree.
func separate(sets []State) (State, map[Key][]string) {
	unconflicted := make(State, len(sets[0]))
	var conflicted map[Key][]string
	note := func(k Key) {
		if _, done := unconflicted[k]; done {
			return
		}
		if _, done := conflicted[k]; done {
			return
		}
		first, ok := sets[0][k]
		same := ok
		for _, s := range sets[1:] {
			if v, ok := s[k]; !ok || v != first {
				same = false
				break
			}
		}
		if same {
			unconflicted[k] = first
			return
		}
		var vals []string
		for _, s := range sets {
			if v, ok := s[k]; ok && !contains(vals, v) {
				vals = append(vals, v)
			}
		}
		if conflicted == nil {
			conflicted = make(map[Key][]string)
		}
		conflicted[k] = vals
	}
	for _, s := range sets {
		for k := range s {
			note(k)
		}
	}
	return unconflicted, conflicted
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func copyState(s State) State {
	out := make(State, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// resolver holds what one Resolve call learns: the events fetched so far.
type resolver struct {
	ctx     context.Context
	version id.RoomVersion
	v21     bool
	fetch   FetchFunc
	events  map[string]*pdu.PDU
	missing map[string]bool // asked for and not returned

	createID   string   // the v12 create event's ID, from the room ID
	creators   []string // v12 room creators, once looked up
	creatorsOK bool
	receiptKey ed25519.PrivateKey // see receiptVerified
}

func (r *resolver) resolve(sets []State, unconflicted State, conflicted map[Key][]string) (State, error) {
	// The conflicted events of each set, and all of them.
	perSet := make([][]string, len(sets))
	var conflictedIDs []string
	seen := make(map[string]bool)
	for k, vals := range conflicted {
		for i, s := range sets {
			if v, ok := s[k]; ok {
				perSet[i] = append(perSet[i], v)
			}
		}
		for _, v := range vals {
			if !seen[v] {
				seen[v] = true
				conflictedIDs = append(conflictedIDs, v)
			}
		}
	}

	full, err := r.fullConflictedSet(perSet, conflictedIDs, unconflicted)
	if err != nil {
		return nil, err
	}

	var base State
	if !r.v21 {
		base = unconflicted
	}
	if err := r.prefetchAuthState(full, base); err != nil {
		return nil, err
	}

	// Steps 3 and 4: the power events and their conflicted auth ancestry.
	var powerEvents []string
	for _, eid := range full.list {
		if isPowerEvent(r.events[eid]) {
			powerEvents = append(powerEvents, eid)
		}
	}
	sortedPower, inGraph, err := r.reverseTopologicalPowerSort(powerEvents, full.set)
	if err != nil {
		return nil, err
	}
	resolved := &overlay{base: base, top: make(State)}
	if err := r.iterativeAuthChecks(sortedPower, resolved); err != nil {
		return nil, err
	}

	// Step 5: everything else, in mainline order.
	var rest []string
	for _, eid := range full.list {
		if !inGraph[eid] {
			rest = append(rest, eid)
		}
	}
	if len(rest) > 0 {
		plID, _ := resolved.get(Key{"m.room.power_levels", ""})
		rest, err = r.mainlineSort(rest, plID)
		if err != nil {
			return nil, err
		}
		if err := r.iterativeAuthChecks(rest, resolved); err != nil {
			return nil, err
		}
	}

	// Step 6: the unconflicted state wins over anything resolved.
	out := copyState(unconflicted)
	for k, v := range resolved.top {
		if _, ok := unconflicted[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

// overlay is the state being built by the iterative auth checks: the changes
// in top over an unchanged base, so the base (in v2 the whole unconflicted
// state, possibly thousands of members) is never copied.
type overlay struct {
	base State
	top  State
}

func (o *overlay) get(k Key) (string, bool) {
	if v, ok := o.top[k]; ok {
		return v, true
	}
	v, ok := o.base[k]
	return v, ok
}
