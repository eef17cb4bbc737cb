package stateres

import (
	"context"
	"errors"
	"testing"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

const (
	alice   = "@alice:a.example"
	bob     = "@bob:b.example"
	charlie = "@charlie:c.example"
	carol   = "@carol:a.example"
	dave    = "@dave:d.example"
	eve     = "@eve:e.example"
	zara    = "@zara:a.example"
)

// versions are the room versions every fork test runs under: the last two
// with state resolution v2 and the first with v2.1.
var versions = []id.RoomVersion{id.RoomV10, id.RoomV11, id.RoomV12}

// baseRoom is alice's public room with bob (power 50) and charlie joined.
func baseRoom(t *testing.T, v id.RoomVersion) (*testRoom, *fork) {
	r, f := newRoom(t, v, alice, map[string]any{"users": map[string]any{bob: 50}})
	f.send("bob join", bob, typeMember, bob, join())
	f.send("charlie join", charlie, typeMember, charlie, join())
	return r, f
}

func TestResolveUnconflictedFetchesNothing(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			got := r.resolve(f, f.clone(), f.clone())
			if len(got) != len(f.state) {
				t.Fatalf("got %d keys, want %d", len(got), len(f.state))
			}
			r.expect(got, f.state)
			if r.fetchCalls != 0 {
				t.Errorf("agreeing sets cost %d fetches, want none", r.fetchCalls)
			}
			// The result is a new map: changing it leaves the input alone.
			got[topicKey] = "$x"
			if _, ok := f.state[topicKey]; ok {
				t.Error("Resolve returned an input set")
			}
		})
	}
}

func TestResolveTrivialInputs(t *testing.T) {
	got, err := Resolve(context.Background(), id.RoomV11, nil, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("no sets: %v, %v", got, err)
	}
	one := State{topicKey: "$t"}
	got, err = Resolve(context.Background(), id.RoomV11, []State{one}, nil)
	if err != nil || got[topicKey] != "$t" {
		t.Fatalf("one set: %v, %v", got, err)
	}
}

func TestResolveUnsupportedVersions(t *testing.T) {
	sets := []State{{topicKey: "$a"}, {topicKey: "$b"}}
	for _, v := range []id.RoomVersion{id.RoomV1, id.RoomV0, "13-unknown"} {
		if _, err := Resolve(context.Background(), v, sets, nil); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("version %q: got %v, want ErrUnsupportedVersion", v, err)
		}
	}
}

// A key present in only some sets is conflicted: the event must pass the
// auth checks to survive, rather than being taken as agreed.
func TestResolveKeyMissingFromOneSet(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a := f.clone()
			tp := a.send("topic", alice, "m.room.topic", "", topic("a"))
			r.expect(r.resolve(a, f), map[Key]string{topicKey: tp})
		})
	}
}

// The topic changed on both forks: mainline ordering decides. Events are
// applied in mainline order, so the last one allowed wins.
func TestResolveTopicMainlineOrdering(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			t.Run("same power levels, later origin_server_ts wins", func(t *testing.T) {
				r, f := baseRoom(t, v)
				a, b := f.clone(), f.clone()
				late := a.send("late topic", alice, "m.room.topic", "", topic("a"), at(5000))
				b.send("early topic", alice, "m.room.topic", "", topic("b"), at(4000))
				r.expect(r.resolve(a, b), map[Key]string{topicKey: late})
				r.expect(r.resolve(b, a), map[Key]string{topicKey: late})
			})
			t.Run("same power levels and timestamp, larger event ID wins", func(t *testing.T) {
				r, f := baseRoom(t, v)
				a, b := f.clone(), f.clone()
				x := a.send("topic x", alice, "m.room.topic", "", topic("x"), at(5000))
				y := b.send("topic y", bob, "m.room.topic", "", topic("y"), at(5000))
				want := max(x, y)
				r.expect(r.resolve(a, b), map[Key]string{topicKey: want})
				r.expect(r.resolve(b, a), map[Key]string{topicKey: want})
			})
			t.Run("newer power levels ancestry wins over a later timestamp", func(t *testing.T) {
				r, f := baseRoom(t, v)
				a, b := f.clone(), f.clone()
				pl1 := a.send("pl1", alice, typePowerLevels, "", map[string]any{"users": users(v, map[string]any{bob: 50, charlie: 10})}, at(2000))
				newer := a.send("topic on pl1", alice, "m.room.topic", "", topic("a"), at(3000))
				b.send("topic on pl0", alice, "m.room.topic", "", topic("b"), at(9000))
				got := r.resolve(a, b)
				r.expect(got, map[Key]string{topicKey: newer, plKey: pl1})
			})
			t.Run("three forks", func(t *testing.T) {
				r, f := baseRoom(t, v)
				a, b, c := f.clone(), f.clone(), f.clone()
				a.send("topic a", alice, "m.room.topic", "", topic("a"), at(3000))
				last := b.send("topic b", bob, "m.room.topic", "", topic("b"), at(3002))
				c.send("topic c", alice, "m.room.topic", "", topic("c"), at(3001))
				r.expect(r.resolve(a, b, c), map[Key]string{topicKey: last})
			})
		})
	}
}

// users adds alice (the creator) at 100 where the room version needs her in
// the power levels to keep her power.
func users(v id.RoomVersion, u map[string]any) map[string]any {
	if !v.PrivilegedRoomCreators() {
		u[alice] = 100
	}
	return u
}

// Power events are replayed highest sender power first, whatever their
// timestamps: bob's later-replayed join rule wins although alice's is newer.
func TestResolvePowerEventsBySenderPower(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a, b := f.clone(), f.clone()
			a.send("alice invite-only", alice, typeJoinRules, "", map[string]any{"join_rule": "invite"}, at(9000))
			bobs := b.send("bob knock", bob, typeJoinRules, "", map[string]any{"join_rule": "knock"}, at(2000))
			r.expect(r.resolve(a, b), map[Key]string{jrKey: bobs})
		})
	}
}

// alice bans bob on one fork while bob changes the topic on the other: the
// ban is a power event, replayed first, and bob's topic then fails.
func TestResolveBanRacesStateChange(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a, b := f.clone(), f.clone()
			ban := a.send("ban bob", alice, typeMember, bob, membership("ban"), at(5000))
			b.send("bob topic", bob, "m.room.topic", "", topic("mine"), at(6000))
			b.send("bob name", bob, "m.room.name", "", map[string]any{"name": "mine"}, at(6001))
			got := r.resolve(a, b)
			r.expect(got, map[Key]string{member(bob): ban, topicKey: "", {"m.room.name", ""}: ""})
		})
	}
}

// One fork bans bob, the other bans and unbans him: the unban cites the ban,
// so it is replayed after it and wins.
func TestResolveBanUnbanRace(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a := f.clone()
			a.send("ban bob", alice, typeMember, bob, membership("ban"))
			b := a.clone()
			unban := b.send("unban bob", alice, typeMember, bob, membership("leave"))
			r.expect(r.resolve(a, b), map[Key]string{member(bob): unban})

			// bob rejoins after the unban: the unban is then only in the
			// auth difference, and is still replayed before his join.
			c := b.clone()
			rejoin := c.send("bob rejoins", bob, typeMember, bob, join())
			r.expect(r.resolve(a, c), map[Key]string{member(bob): rejoin})
		})
	}
}

// alice demotes bob on one fork while bob, still a moderator on the other,
// sets the topic: the topic was authorised by the old power levels, which the
// mainline places first, and fails against the demotion.
func TestResolveDemotionRacesStateChange(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a, b := f.clone(), f.clone()
			demote := a.send("demote bob", alice, typePowerLevels, "", map[string]any{"users": users(v, map[string]any{})}, at(5000))
			b.send("bob topic", bob, "m.room.topic", "", topic("mine"), at(9000))
			r.expect(r.resolve(a, b), map[Key]string{plKey: demote, topicKey: ""})
		})
	}
}

// alice demotes bob on one fork while bob promotes eve on the other: alice's
// power levels go first (higher sender power), and bob's then fails.
func TestResolveDemotionRacesPowerEvent(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			f.send("eve join", eve, typeMember, eve, join())
			a, b := f.clone(), f.clone()
			demote := a.send("demote bob", alice, typePowerLevels, "", map[string]any{"users": users(v, map[string]any{})}, at(9000))
			b.send("bob promotes eve", bob, typePowerLevels, "", map[string]any{"users": users(v, map[string]any{bob: 50, eve: 50})}, at(2000))
			kick := b.send("bob kicks charlie", bob, typeMember, charlie, membership("leave"), at(2001))
			got := r.resolve(a, b)
			r.expect(got, map[Key]string{plKey: demote, member(charlie): f.state[member(charlie)]})
			_ = kick
		})
	}
}

// The spec's "Rejected events": an event rejected against the state at it
// but present in a state set is re-checked like any other; an auth event that
// was rejected is never used to authorise another.
func TestResolveRejectedEvents(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			t.Run("rejected conflicted event passes the replay", func(t *testing.T) {
				r, f := baseRoom(t, v)
				a, b := f.clone(), f.clone()
				a.send("topic a", alice, "m.room.topic", "", topic("a"), at(3000))
				tb := b.send("topic b (rejected here)", alice, "m.room.topic", "", topic("b"), at(4000), rejected())
				b.state[topicKey] = tb // another server's state holds it
				r.expect(r.resolve(a, b), map[Key]string{topicKey: tb})
			})
			for _, rej := range []bool{false, true} {
				name := "accepted auth event authorises"
				if rej {
					name = "rejected auth event does not authorise"
				}
				t.Run(name, func(t *testing.T) {
					r, f := baseRoom(t, v)
					f.send("pl mods", alice, typePowerLevels, "", map[string]any{"users": users(v, map[string]any{bob: 50, carol: 50})})
					cj := f.send("carol join", carol, typeMember, carol, join())
					a, b := f.clone(), f.clone()
					a.send("alice topic", alice, "m.room.topic", "", topic("a"), at(3000))
					ct := b.send("carol topic", carol, "m.room.topic", "", topic("c"), at(4000))
					// carol's join is unconflicted: v2 finds it in the
					// base state, v2.1 among the topic's auth events.
					// Either way a rejected join cannot make her a member.
					r.events[cj].InternalMeta.Rejected = rej
					got := r.resolve(a, b)
					want := ct
					if rej {
						want = a.state[topicKey]
					}
					r.expect(got, map[Key]string{topicKey: want, member(carol): cj})
				})
			}
		})
	}
}

// MSC4297 problem A (Complement TestMSC4297StateResolutionV2_1_starts_from_empty_set):
// alice makes the room invite-only and leaves; a server then claims the join
// rule is still public. v2 replays both join rules against the unconflicted
// state, where alice has left, so both fail and the room loses its join rule;
// v2.1 replays them from an empty state, where alice's own auth events say
// she was joined, and keeps "invite".
func TestResolveV21StartsFromEmptySet(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := newRoom(t, v, alice, nil)
			public := f.state[jrKey]
			f.send("bob join", bob, typeMember, bob, join())
			f.send("charlie join", charlie, typeMember, charlie, join())
			invite := f.send("invite only", alice, typeJoinRules, "", map[string]any{"join_rule": "invite"})
			f.send("alice leaves", alice, typeMember, alice, membership("leave"))
			var last string
			for i := range 3 {
				last = f.send("charlie name", charlie, typeMember, charlie, map[string]any{"membership": "join", "displayname": i})
			}
			wrong := f.clone()
			wrong.state[jrKey] = public

			want := invite
			if v.StateResVersion() == id.StateResV2 {
				want = ""
			}
			got := r.resolve(f, wrong)
			r.expect(got, map[Key]string{jrKey: want, member(alice): f.state[member(alice)], member(charlie): last})
		})
	}
}

// MSC4297 problem B (Complement TestMSC4297StateResolutionV2_1_includes_conflicted_subgraph):
// bob (raised by alice's pl2) raises charlie in pl3; a server later claims
// the first power levels are current. pl2 is in every auth chain (eve's join
// cites pl3), so v2 replays only pl1 and pl3, and pl3 fails against pl1. v2.1
// adds the conflicted subgraph, pl2 among it, and pl3 survives.
func TestResolveV21ConflictedSubgraph(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			creator := "@creator:a.example"
			r, f := newRoom(t, v, creator, nil)
			pl1Users := map[string]any{alice: 100}
			if !v.PrivilegedRoomCreators() {
				pl1Users[creator] = 100
			}
			pl1 := f.send("pl1", creator, typePowerLevels, "", map[string]any{"users": pl1Users})
			f.send("alice join", alice, typeMember, alice, join())
			f.send("bob join", bob, typeMember, bob, join())
			f.send("charlie join", charlie, typeMember, charlie, join())
			pl2Users := map[string]any{alice: 100, bob: 50}
			pl3Users := map[string]any{alice: 100, bob: 50, charlie: 50}
			if !v.PrivilegedRoomCreators() {
				pl2Users[creator], pl3Users[creator] = 100, 100
			}
			f.send("pl2", alice, typePowerLevels, "", map[string]any{"users": pl2Users})
			pl3 := f.send("pl3", bob, typePowerLevels, "", map[string]any{"users": pl3Users})
			f.send("zara join", zara, typeMember, zara, join())
			f.send("eve join", eve, typeMember, eve, join())
			before := f.clone()
			var last string
			for i := range 3 {
				last = f.send("eve name", eve, typeMember, eve, map[string]any{"membership": "join", "displayname": i})
			}
			wrong := f.clone()
			wrong.state[plKey] = pl1
			delete(wrong.state, member(zara))

			want := pl3
			if v.StateResVersion() == id.StateResV2 {
				want = pl1
			}
			r.expect(r.resolve(before, wrong), map[Key]string{plKey: want, member(eve): last})
		})
	}
}

// Conflicted events the fetch cannot find are left out; the rest resolve.
func TestResolveMissingEvents(t *testing.T) {
	for _, v := range versions {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			a, b := f.clone(), f.clone()
			ta := a.send("topic a", alice, "m.room.topic", "", topic("a"), at(3000))
			tb := b.send("topic b", alice, "m.room.topic", "", topic("b"), at(4000))
			r.hidden[tb] = true
			r.expect(r.resolve(a, b), map[Key]string{topicKey: ta})
			r.hidden[ta] = true
			r.expect(r.resolve(a, b), map[Key]string{topicKey: ""})
		})
	}
}

// A restricted join names an authorising user whose server signed it on
// receipt; replaying it must not need that server's key again.
func TestResolveRestrictedJoinReplay(t *testing.T) {
	for _, v := range []id.RoomVersion{id.RoomV10, id.RoomV11, id.RoomV12} {
		t.Run(string(v), func(t *testing.T) {
			r, f := baseRoom(t, v)
			f.send("restricted", alice, typeJoinRules, "", map[string]any{
				"join_rule": "restricted",
				"allow":     []any{map[string]any{"type": "m.room_membership", "room_id": "!space:a.example"}},
			})
			a := f.clone()
			dj := a.send("dave restricted join", dave, typeMember, dave, map[string]any{
				"membership": "join", "join_authorised_via_users_server": alice,
			}, signedBy(id.UserID(alice).Homeserver()))
			// alice's server's key has since gone: the resolver must not
			// need it (the signature was checked on receipt).
			r.events[dj].Signatures[id.UserID(alice).Homeserver()] = map[id.KeyID]string{"ed25519:gone": "AAAA"}
			r.expect(r.resolve(a, f), map[Key]string{member(dave): dj})
		})
	}
}

func TestResolveFetchErrors(t *testing.T) {
	r, f := baseRoom(t, id.RoomV11)
	a, b := f.clone(), f.clone()
	a.send("topic a", alice, "m.room.topic", "", topic("a"))
	b.send("topic b", alice, "m.room.topic", "", topic("b"))
	boom := errors.New("storage down")
	_, err := Resolve(context.Background(), r.version, []State{a.state, b.state}, func(context.Context, []string) ([]*pdu.PDU, error) {
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("fetch error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Resolve(ctx, r.version, []State{a.state, b.state}, r.fetch); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}

// Garbage from a malicious server must not panic: unknown auth events, a
// non-state event in a state set, an event with itself as auth event.
func TestResolveMalformedInput(t *testing.T) {
	r, f := baseRoom(t, id.RoomV9)
	f.send("pl with x", alice, typePowerLevels, "", map[string]any{"users": map[string]any{alice: 100, bob: 50, "@x:x.example": 100}})
	a, b := f.clone(), f.clone()
	msg := a.send("message", alice, "m.room.message", "", map[string]any{"body": "hi"})
	r.events[msg].StateKey = nil
	a.state[topicKey] = msg
	odd := b.send("odd", alice, typePowerLevels, "", map[string]any{"users": map[string]any{alice: 100, bob: 50, "@x:x.example": nil}}, unchecked())
	r.events[odd].AuthEvents = append(r.events[odd].AuthEvents, "$nowhere")
	b.state[plKey] = odd
	loop := b.send("self-cited kick", alice, typeMember, charlie, membership("leave"))
	r.events[loop].AuthEvents = append(r.events[loop].AuthEvents, id.EventID(loop))
	got := r.resolve(a, b)
	if got[topicKey] != "" {
		t.Errorf("a message became state: %s", got[topicKey])
	}
	// odd (a null power level in a v9 room, which eventauth's checks of old
	// versions mishandle) must be rejected, not crash the resolver; the kick
	// on an auth cycle is never replayed.
	r.expect(got, map[Key]string{plKey: f.state[plKey], member(charlie): f.state[member(charlie)]})
}
