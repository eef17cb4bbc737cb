package stateres

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// testRoom builds real, hashed and signed PDUs of one room version, and
// serves them to Resolve as a FetchFunc that counts its calls.
type testRoom struct {
	t       testing.TB
	version id.RoomVersion
	roomID  id.RoomID
	events  map[string]*pdu.PDU
	names   map[string]string // event ID → test name, for failure messages
	key     ed25519.PrivateKey
	ts      int64

	hidden     map[string]bool // events fetch pretends not to have
	fetchCalls int
	fetched    int
}

// fork is one line of history: its state and its latest event.
type fork struct {
	r     *testRoom
	state State
	head  string
	depth int64
}

const testKeyID = id.KeyID("ed25519:test")

// newRoom creates a room as creator: create event, the creator's join, power
// levels (plUsers, plus the creator before v12) and a public join rule.
func newRoom(t testing.TB, version id.RoomVersion, creator string, pl map[string]any) (*testRoom, *fork) {
	r := &testRoom{
		t: t, version: version, events: map[string]*pdu.PDU{}, names: map[string]string{},
		key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), ts: 1000, hidden: map[string]bool{},
	}
	f := &fork{r: r, state: State{}}
	createContent := map[string]any{"room_version": string(version)}
	if version.CreatorInContent() {
		createContent["creator"] = creator
	}
	if !version.RoomIDIsCreateEventID() {
		r.roomID = id.RoomID("!room:" + id.UserID(creator).Homeserver())
	}
	f.send("create", creator, typeCreate, "", createContent)
	if version.RoomIDIsCreateEventID() {
		r.roomID = id.RoomID("!" + f.state[Key{typeCreate, ""}][1:])
	}
	f.send("creator join", creator, typeMember, creator, map[string]any{"membership": "join"})
	if pl == nil {
		pl = map[string]any{}
	}
	if !version.PrivilegedRoomCreators() {
		users, _ := pl["users"].(map[string]any)
		if users == nil {
			users = map[string]any{}
		}
		users[creator] = 100
		pl["users"] = users
	}
	f.send("pl0", creator, typePowerLevels, "", pl)
	f.send("jr public", creator, typeJoinRules, "", map[string]any{"join_rule": "public"})
	return r, f
}

func (f *fork) clone() *fork {
	return &fork{r: f.r, state: copyState(f.state), head: f.head, depth: f.depth}
}

type sendOpt func(p *pdu.PDU, o *sendOpts)

type sendOpts struct {
	allowFail bool
	rejected  bool
	signers   []string
}

// signedBy adds a signature of another server (restricted joins).
func signedBy(server string) sendOpt {
	return func(_ *pdu.PDU, o *sendOpts) { o.signers = append(o.signers, server) }
}

// at sets the event's origin_server_ts.
func at(ts int64) sendOpt { return func(p *pdu.PDU, _ *sendOpts) { p.OriginServerTS = ts } }

// rejected marks the event as rejected (as the pipeline would store it).
func rejected() sendOpt { return func(_ *pdu.PDU, o *sendOpts) { o.rejected = true } }

// unchecked builds the event even if the fork's state does not allow it.
func unchecked() sendOpt { return func(_ *pdu.PDU, o *sendOpts) { o.allowFail = true } }

// send adds an event to the fork, with auth events chosen from the fork's
// state, and checks the fork's state allows it. It returns the event ID.
func (f *fork) send(name, sender, typ, stateKey string, content map[string]any, opts ...sendOpt) string {
	r := f.r
	r.t.Helper()
	raw, err := json.Marshal(content)
	if err != nil {
		r.t.Fatal(err)
	}
	r.ts++
	p := &pdu.PDU{
		Type: typ, Sender: id.UserID(sender), RoomID: r.roomID, Content: raw, StateKey: &stateKey,
		OriginServerTS: r.ts, Depth: f.depth + 1, PrevEvents: []id.EventID{}, AuthEvents: []id.EventID{},
	}
	if typ == typeCreate && r.version.RoomIDIsCreateEventID() {
		p.RoomID = ""
	}
	if f.head != "" {
		p.PrevEvents = append(p.PrevEvents, id.EventID(f.head))
	}
	for _, k := range p.AuthEventSelection(r.version) {
		if v, ok := f.state[Key{k.Type, k.StateKey}]; ok {
			p.AuthEvents = append(p.AuthEvents, id.EventID(v))
		}
	}
	var o sendOpts
	for _, opt := range opts {
		opt(p, &o)
	}
	for _, server := range append([]string{id.UserID(sender).Homeserver()}, o.signers...) {
		if err := p.Sign(r.version, server, testKeyID, r.key); err != nil {
			r.t.Fatal(err)
		}
	}
	evID, err := p.GetEventID(r.version)
	if err != nil {
		r.t.Fatal(err)
	}
	p.InternalMeta.EventID = evID
	p.InternalMeta.Rejected = o.rejected
	r.events[string(evID)] = p
	r.names[string(evID)] = name
	authErr := func() (err error) {
		defer func() {
			if x := recover(); x != nil {
				err = fmt.Errorf("panic: %v", x)
			}
		}()
		return eventauth.Authorize(r.version, p, nil, r.getEvents, r.getKey)
	}()
	if authErr != nil && !o.allowFail {
		r.t.Fatalf("%s is not allowed by its fork's state: %v", name, authErr)
	}
	f.head, f.depth = string(evID), p.Depth
	if authErr == nil && !o.rejected {
		f.state[Key{typ, stateKey}] = string(evID)
	}
	return string(evID)
}

func (r *testRoom) getEvents(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, len(ids))
	for i, x := range ids {
		out[i] = r.events[string(x)]
	}
	if len(ids) == 1 && out[0] == nil {
		return nil, nil
	}
	return out, nil
}

func (r *testRoom) getKey(_ string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	if keyID != testKeyID {
		return "", time.Time{}, nil
	}
	pub := base64.RawStdEncoding.EncodeToString(r.key.Public().(ed25519.PublicKey))
	return id.SigningKey(pub), time.Now().Add(24 * time.Hour), nil
}

func (r *testRoom) fetch(_ context.Context, ids []string) ([]*pdu.PDU, error) {
	r.fetchCalls++
	out := make([]*pdu.PDU, 0, len(ids))
	for _, x := range ids {
		if ev := r.events[x]; ev != nil && !r.hidden[x] {
			out = append(out, ev)
		}
	}
	r.fetched += len(out)
	return out, nil
}

// resolve runs Resolve over the forks' states.
func (r *testRoom) resolve(forks ...*fork) State {
	r.t.Helper()
	sets := make([]State, len(forks))
	for i, f := range forks {
		sets[i] = f.state
	}
	got, err := Resolve(context.Background(), r.version, sets, r.fetch)
	if err != nil {
		r.t.Fatalf("Resolve: %v", err)
	}
	return got
}

// expect checks the resolved event at each key (by event ID; "" for absent).
func (r *testRoom) expect(got State, want map[Key]string) {
	r.t.Helper()
	for k, w := range want {
		if g := got[k]; g != w {
			r.t.Errorf("%s/%q: got %s, want %s", k.Type, k.StateKey, r.name(g), r.name(w))
		}
	}
}

func (r *testRoom) name(eid string) string {
	if eid == "" {
		return "(absent)"
	}
	if n, ok := r.names[eid]; ok {
		return fmt.Sprintf("%q", n)
	}
	return eid
}

func member(user string) Key { return Key{typeMember, user} }

var (
	plKey    = Key{typePowerLevels, ""}
	jrKey    = Key{typeJoinRules, ""}
	topicKey = Key{"m.room.topic", ""}
)

func join() map[string]any { return map[string]any{"membership": "join"} }

func membership(m string) map[string]any { return map[string]any{"membership": m} }

func topic(s string) map[string]any { return map[string]any{"topic": s} }
