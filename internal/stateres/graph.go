package stateres

import (
	"fmt"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
)

// load makes sure the events with the given IDs are in the cache, fetching
// the ones not yet asked for in one call.
func (r *resolver) load(ids []string) error {
	var want []string
	var asked map[string]bool
	for _, eid := range ids {
		if _, ok := r.events[eid]; ok || r.missing[eid] || asked[eid] {
			continue
		}
		if asked == nil {
			asked = make(map[string]bool)
		}
		asked[eid] = true
		want = append(want, eid)
	}
	if len(want) == 0 {
		return nil
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	evs, err := r.fetch(r.ctx, want)
	if err != nil {
		return fmt.Errorf("stateres: fetch %d events: %w", len(want), err)
	}
	for _, ev := range evs {
		if ev == nil {
			continue
		}
		eid := string(ev.InternalMeta.EventID)
		if eid == "" {
			calc, err := ev.GetEventID(r.version)
			if err != nil {
				continue
			}
			eid = string(calc)
			ev.InternalMeta.EventID = calc
		}
		r.events[eid] = ev
	}
	for _, eid := range want {
		if _, ok := r.events[eid]; !ok {
			r.missing[eid] = true
		}
	}
	return nil
}

// get returns one event, fetching it if needed; nil if it cannot be found.
func (r *resolver) get(eid string) (*pdu.PDU, error) {
	if ev, ok := r.events[eid]; ok {
		return ev, nil
	}
	if r.missing[eid] {
		return nil, nil
	}
	if err := r.load([]string{eid}); err != nil {
		return nil, err
	}
	return r.events[eid], nil
}

// walk visits the events reachable from start through auth_events (start
// included), breadth first, fetching each layer in one call. visit is called
// once per event ID, found or not; it returns whether to continue past that
// event and whether to stop the whole walk.
func (r *resolver) walk(start []string, visit func(eid string, ev *pdu.PDU) (descend, stop bool)) error {
	seen := make(map[string]bool, len(start))
	var frontier []string
	for _, eid := range start {
		if !seen[eid] {
			seen[eid] = true
			frontier = append(frontier, eid)
		}
	}
	for len(frontier) > 0 {
		if err := r.load(frontier); err != nil {
			return err
		}
		var next []string
		for _, eid := range frontier {
			ev := r.events[eid]
			descend, stop := visit(eid, ev)
			if stop {
				return nil
			}
			if !descend || ev == nil {
				continue
			}
			for _, aid := range ev.AuthEvents {
				if a := string(aid); !seen[a] {
					seen[a] = true
					next = append(next, a)
				}
			}
		}
		frontier = next
	}
	return nil
}

// idSet is an ordered set of event IDs.
type idSet struct {
	list []string
	set  map[string]bool
}

func (s *idSet) add(eid string) {
	if !s.set[eid] {
		s.set[eid] = true
		s.list = append(s.list, eid)
	}
}

// fullConflictedSet returns the conflicted events, the auth difference and
// (v2.1) the conflicted state subgraph, limited to state events that could be
// fetched. perSet holds each set's events for the conflicted keys.
func (r *resolver) fullConflictedSet(perSet [][]string, conflictedIDs []string, unconflicted State) (idSet, error) {
	isConflicted := make(map[string]bool, len(conflictedIDs))
	for _, eid := range conflictedIDs {
		isConflicted[eid] = true
	}

	// Each set's full auth chain is the chain of its unconflicted events,
	// which every set shares, plus the chain of its conflicted events. Count
	// in how many sets' conflicted chains each event appears.
	inSets := make(map[string]int)
	for _, ids := range perSet {
		err := r.walk(ids, func(eid string, _ *pdu.PDU) (bool, bool) {
			inSets[eid]++
			return true, false
		})
		if err != nil {
			return idSet{}, err
		}
	}
	// Events in some conflicted chains but not all are in the auth difference
	// unless the unconflicted chain has them. The conflicted events are in the
	// full conflicted set anyway, so they need no deciding.
	undecided := make(map[string]bool)
	for eid, n := range inSets {
		if n < len(perSet) && !isConflicted[eid] {
			undecided[eid] = true
		}
	}
	if len(undecided) > 0 {
		start := make([]string, 0, len(unconflicted))
		for _, eid := range unconflicted {
			start = append(start, eid)
		}
		slices.Sort(start)
		err := r.walk(start, func(eid string, _ *pdu.PDU) (bool, bool) {
			delete(undecided, eid)
			// An event in every conflicted chain has its whole chain there
			// too, so nothing undecided lies behind it.
			return inSets[eid] < len(perSet), len(undecided) == 0
		})
		if err != nil {
			return idSet{}, err
		}
	}

	full := idSet{set: make(map[string]bool)}
	for _, eid := range conflictedIDs {
		full.add(eid)
	}
	for eid, n := range inSets {
		if n < len(perSet) && !isConflicted[eid] && undecided[eid] {
			full.add(eid)
		}
	}
	if r.v21 {
		for _, eid := range r.conflictedSubgraph(inSets, isConflicted) {
			full.add(eid)
		}
	}

	out := idSet{set: make(map[string]bool, len(full.list))}
	for _, eid := range full.list {
		if ev := r.events[eid]; ev != nil && ev.StateKey != nil {
			out.add(eid)
		}
	}
	slices.Sort(out.list)
	return out, nil
}

// conflictedSubgraph returns the events on auth paths between conflicted
// events: those in the auth chain of a conflicted event (the keys of chain)
// from which a conflicted event can be reached. The conflicted events
// themselves are included.
func (r *resolver) conflictedSubgraph(chain map[string]int, isConflicted map[string]bool) []string {
	const (
		unvisited = iota
		open
		done
	)
	mark := make(map[string]uint8, len(chain))
	reaches := make(map[string]bool)
	type frame struct {
		eid string
		i   int
	}
	starts := make([]string, 0, len(chain))
	for eid := range chain {
		starts = append(starts, eid)
	}
	slices.Sort(starts)
	var stack []frame
	for _, s := range starts {
		if mark[s] != unvisited {
			continue
		}
		mark[s] = open
		stack = append(stack[:0], frame{eid: s})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			ev := r.events[top.eid]
			if ev != nil && top.i < len(ev.AuthEvents) {
				a := string(ev.AuthEvents[top.i])
				top.i++
				if _, in := chain[a]; in && mark[a] == unvisited {
					mark[a] = open
					stack = append(stack, frame{eid: a})
				}
				continue
			}
			// All auth events are finished (or, in a cycle, open and
			// counted as not reaching, which no valid DAG has).
			ok := isConflicted[top.eid]
			if ev != nil && !ok {
				for _, aid := range ev.AuthEvents {
					if reaches[string(aid)] {
						ok = true
						break
					}
				}
			}
			reaches[top.eid] = ok
			mark[top.eid] = done
			stack = stack[:len(stack)-1]
		}
	}
	var out []string
	for _, eid := range starts {
		if reaches[eid] {
			out = append(out, eid)
		}
	}
	return out
}
