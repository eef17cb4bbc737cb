package stateres

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"go.mau.fi/util/exgjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

const (
	typeCreate      = "m.room.create"
	typePowerLevels = "m.room.power_levels"
	typeJoinRules   = "m.room.join_rules"
	typeMember      = "m.room.member"
)

// creatorPower is the sender power level of a v12 room creator when ordering
// power events: above any level a power levels event can hold (canonical JSON
// integers stop at 2^53-1), as Synapse ranks them.
const creatorPower = 1 << 53

// isPowerEvent reports whether ev can take abilities away: power levels,
// join rules, the create event, or a kick or ban.
func isPowerEvent(ev *pdu.PDU) bool {
	if ev == nil || ev.StateKey == nil {
		return false
	}
	switch ev.Type {
	case typePowerLevels, typeJoinRules, typeCreate:
		return *ev.StateKey == ""
	case typeMember:
		m := gjson.GetBytes(ev.Content, "membership")
		return m.Type == gjson.String && (m.Str == "leave" || m.Str == "ban") && *ev.StateKey != string(ev.Sender)
	}
	return false
}

// reverseTopologicalPowerSort sorts the power events together with the events
// of their auth chains reachable through the full conflicted set: auth events
// first, and among the events whose auth events are all placed, highest
// sender power level, then earliest origin_server_ts, then smallest event ID.
// It returns the order and the events of the graph.
func (r *resolver) reverseTopologicalPowerSort(power []string, full map[string]bool) ([]string, map[string]bool, error) {
	edges := make(map[string][]string)
	for _, p := range power {
		if _, ok := edges[p]; ok {
			continue
		}
		edges[p] = nil
		stack := []string{p}
		for len(stack) > 0 {
			eid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			ev := r.events[eid]
			if ev == nil {
				continue
			}
			for _, aid := range ev.AuthEvents {
				a := string(aid)
				if !full[a] {
					continue
				}
				if _, ok := edges[a]; !ok {
					edges[a] = nil
					stack = append(stack, a)
				}
				if !slices.Contains(edges[eid], a) {
					edges[eid] = append(edges[eid], a)
				}
			}
		}
	}

	keys := make(map[string]powerKey, len(edges))
	for eid := range edges {
		pl, err := r.senderPower(r.events[eid])
		if err != nil {
			return nil, nil, err
		}
		keys[eid] = powerKey{power: pl, ts: r.events[eid].OriginServerTS, id: eid}
	}

	// Kahn's algorithm from the events with no auth events left to place.
	outdeg := make(map[string]int, len(edges))
	dependents := make(map[string][]string, len(edges))
	ready := &powerHeap{}
	for eid, auth := range edges {
		outdeg[eid] = len(auth)
		for _, a := range auth {
			dependents[a] = append(dependents[a], eid)
		}
		if len(auth) == 0 {
			ready.items = append(ready.items, keys[eid])
		}
	}
	heap.Init(ready)
	sorted := make([]string, 0, len(edges))
	for ready.Len() > 0 {
		k := heap.Pop(ready).(powerKey)
		sorted = append(sorted, k.id)
		for _, d := range dependents[k.id] {
			outdeg[d]--
			if outdeg[d] == 0 {
				heap.Push(ready, keys[d])
			}
		}
	}
	// Every event of the graph counts as taken by this step, even one on an
	// auth cycle (which no valid event graph has) that Kahn's algorithm never
	// reaches: it is dropped, not replayed with the other events.
	inGraph := make(map[string]bool, len(edges))
	for eid := range edges {
		inGraph[eid] = true
	}
	return sorted, inGraph, nil
}

type powerKey struct {
	power int64
	ts    int64
	id    string
}

// less orders by higher power first, then earlier timestamp, then event ID.
func (a powerKey) less(b powerKey) bool {
	if a.power != b.power {
		return a.power > b.power
	}
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	return a.id < b.id
}

type powerHeap struct{ items []powerKey }

func (h *powerHeap) Len() int           { return len(h.items) }
func (h *powerHeap) Less(i, j int) bool { return h.items[i].less(h.items[j]) }
func (h *powerHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *powerHeap) Push(x any)         { h.items = append(h.items, x.(powerKey)) }
func (h *powerHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

// senderPower is the power level of ev's sender according to the power
// levels event among its auth events (or, without one, 100 for the room's
// creator and 0 for anyone else). In v12 the room's creators outrank all.
func (r *resolver) senderPower(ev *pdu.PDU) (int64, error) {
	if r.version.PrivilegedRoomCreators() && ev.Type != typeCreate {
		creators, err := r.roomCreators(ev.RoomID)
		if err != nil {
			return 0, err
		}
		if slices.Contains(creators, string(ev.Sender)) {
			return creatorPower, nil
		}
	}
	var pl, create *pdu.PDU
	for _, aid := range ev.AuthEvents {
		a, err := r.get(string(aid))
		if err != nil {
			return 0, err
		}
		if a == nil || a.StateKey == nil || *a.StateKey != "" {
			continue
		}
		switch a.Type {
		case typePowerLevels:
			pl = a
		case typeCreate:
			if create == nil {
				create = a
			}
		}
	}
	if pl == nil {
		if create != nil {
			creator := string(create.Sender)
			if r.version.CreatorInContent() {
				creator = gjson.GetBytes(create.Content, "creator").Str
			}
			if creator != "" && creator == string(ev.Sender) {
				return 100, nil
			}
		}
		return 0, nil
	}
	level := gjson.GetBytes(pl.Content, exgjson.Path("users", string(ev.Sender)))
	if !level.Exists() || level.Type == gjson.Null {
		level = gjson.GetBytes(pl.Content, "users_default")
	}
	return looseInt(level), nil
}

// looseInt reads a power level the way the older room versions allowed it to
// be written (numbers, numeric strings, booleans); anything else counts as 0.
func looseInt(v gjson.Result) int64 {
	switch v.Type {
	case gjson.Number:
		f := v.Float()
		if f >= math.MaxInt64 {
			return math.MaxInt64
		}
		if f <= math.MinInt64 {
			return math.MinInt64
		}
		return v.Int()
	case gjson.String:
		n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64)
		if err != nil && n == 0 {
			return 0
		}
		return n // ParseInt clamps out-of-range values to the int64 bounds
	case gjson.True:
		return 1
	}
	return 0
}

// roomCreators returns the v12 room's creators: the create event's sender
// and its additional_creators. The create event's ID is the room ID.
func (r *resolver) roomCreators(roomID id.RoomID) ([]string, error) {
	if r.creatorsOK {
		return r.creators, nil
	}
	if len(roomID) < 2 {
		return nil, nil
	}
	create, err := r.get("$" + string(roomID)[1:])
	if err != nil {
		return nil, err
	}
	r.creatorsOK = true
	if create == nil {
		return nil, nil
	}
	r.creators = []string{string(create.Sender)}
	gjson.GetBytes(create.Content, "additional_creators").ForEach(func(_, v gjson.Result) bool {
		if v.Type == gjson.String {
			r.creators = append(r.creators, v.Str)
		}
		return true
	})
	return r.creators, nil
}

// powerLevelsAuthEvent returns the ID of the power levels event among ev's
// auth events, or "".
func (r *resolver) powerLevelsAuthEvent(ev *pdu.PDU) (string, error) {
	for _, aid := range ev.AuthEvents {
		a, err := r.get(string(aid))
		if err != nil {
			return "", err
		}
		if a != nil && a.Type == typePowerLevels && a.StateKey != nil && *a.StateKey == "" {
			return string(aid), nil
		}
	}
	return "", nil
}

// mainlineSort orders events by the mainline of the power levels event plID:
// events whose power levels ancestry meets the mainline further back come
// first (no meeting at all is furthest back), then earlier origin_server_ts,
// then smaller event ID.
func (r *resolver) mainlineSort(events []string, plID string) ([]string, error) {
	mainline := make(map[string]int) // event ID → position, 0 for plID
	for cur := plID; cur != ""; {
		if _, loop := mainline[cur]; loop {
			break
		}
		mainline[cur] = len(mainline)
		ev, err := r.get(cur)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			break
		}
		if cur, err = r.powerLevelsAuthEvent(ev); err != nil {
			return nil, err
		}
	}

	// position memoises the mainline position reached from a power levels
	// event, so events sharing ancestry walk it once.
	position := make(map[string]int)
	positionOf := func(ev *pdu.PDU) (int, error) {
		var path []string
		pos := math.MaxInt
		for cur := ev; cur != nil; {
			next, err := r.powerLevelsAuthEvent(cur)
			if err != nil {
				return 0, err
			}
			if next == "" {
				break
			}
			if p, ok := mainline[next]; ok {
				pos = p
				break
			}
			if p, ok := position[next]; ok {
				pos = p
				break
			}
			if slices.Contains(path, next) {
				break
			}
			path = append(path, next)
			if cur, err = r.get(next); err != nil {
				return 0, err
			}
		}
		for _, p := range path {
			position[p] = pos
		}
		return pos, nil
	}

	type item struct {
		pos int
		ts  int64
		id  string
	}
	items := make([]item, len(events))
	for i, eid := range events {
		ev := r.events[eid]
		pos, err := positionOf(ev)
		if err != nil {
			return nil, err
		}
		items[i] = item{pos: pos, ts: ev.OriginServerTS, id: eid}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(b.pos, a.pos); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ts, b.ts); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out, nil
}
