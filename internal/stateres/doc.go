// Package stateres resolves conflicting room states: given the states after
// each of an event's prev events, it computes the one state before that event.
// It implements state resolution v2 (room versions 2 to 11) and v2.1 (room
// version 12, MSC4297) as the spec's room version pages define them. It is pure:
// events come from a FetchFunc, nothing is stored, and the same inputs always
// give the same answer, which is the whole point — every server in a room must
// arrive at the same state without talking to each other.
//
// The steps, in the order Resolve performs them:
//
//  1. Split the keys. A key whose event is the same in every input state is
//     unconflicted; every other key is conflicted, and the events the states
//     hold for it form the conflicted state set. When nothing conflicts the
//     answer is the unconflicted map and no event is fetched.
//
//  2. Widen the conflict. Each state's full auth chain is everything reachable
//     from its events through auth_events; the auth difference is what some
//     chains contain but not all — the history the forks disagree about. The
//     unconflicted events are in every state, so their chains can never add to
//     the difference; they are walked only when an event from the conflicted
//     events' chains still needs to be ruled in or out, and the walk stops once
//     all such events are decided. v2.1 also adds the conflicted state
//     subgraph: every event that lies on an auth path from one conflicted event
//     to another, so that the events which made a conflicted event legal get
//     replayed with it. The union is the full conflicted set.
//
//  3. Order the power events. Power events are the ones that can take
//     abilities away: power levels, join rules, the create event, and kicks and
//     bans (a leave or ban sent by someone other than its target). They and the
//     events of their auth chains inside the full conflicted set are sorted
//     topologically along auth edges (an auth event before what it authorises),
//     choosing among the ready events the sender with the highest power level
//     (by the power levels event it cites; creators of a v12 room rank above
//     everyone), then the earliest origin_server_ts, then the smallest event ID.
//
//  4. Replay them. Starting from the unconflicted state (v2) or from an empty
//     state (v2.1, which stops a stale unconflicted entry from vetoing the very
//     events that explain it), each event is checked against the authorisation
//     rules with the state built so far and, for keys that state lacks, the
//     event's own non-rejected auth events; an event that passes takes its key.
//
//  5. Order and replay the rest. The remaining events of the full conflicted
//     set are sorted by mainline: the chain of power levels events reached from
//     the power levels the replay settled on, following each one's power levels
//     auth event. An event is placed by the first power levels event on its own
//     such chain that lies on the mainline; events authorised by older power
//     levels go first, then earliest origin_server_ts, then smallest event ID.
//     They are then replayed onto the state of step 4 in that order.
//
//  6. The unconflicted map is laid over the result, so an unconflicted key
//     always keeps its event.
//
// Where the spec's prose leaves room the package does what Synapse and Ruma
// do, because agreeing with the servers already in a room is what matters:
// only state_key "" power levels, join rules and create events count as power
// events; step 3 follows auth edges only through events of the full conflicted
// set; events the FetchFunc cannot find are left out; and rejected events are
// never used as auth events. Unlike Synapse (which documents its behaviour as a
// known deviation), an event marked rejected that reaches the full conflicted
// set is re-checked like any other, as the spec's "Rejected events" section
// requires. The signature check for join_authorised_via_users_server (rule
// 5.2.1) is a check on receipt, not on state, and is not repeated here: events
// reach state resolution only after their signatures were verified.
package stateres
