package stateres

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// prefetchAuthState fetches, in one call, the base state events the
// iterative auth checks will consult for the events of the full conflicted
// set, and the power levels event the mainline starts from.
func (r *resolver) prefetchAuthState(full idSet, base State) error {
	var ids []string
	if v, ok := base[Key{typePowerLevels, ""}]; ok {
		ids = append(ids, v)
	}
	for _, eid := range full.list {
		ev := r.events[eid]
		for _, k := range ev.AuthEventSelection(r.version) {
			if v, ok := base[Key{k.Type, k.StateKey}]; ok {
				ids = append(ids, v)
			}
		}
		if r.version.RoomIDIsCreateEventID() && r.createID == "" && len(ev.RoomID) > 1 {
			r.createID = "$" + string(ev.RoomID)[1:]
			ids = append(ids, r.createID)
		}
	}
	return r.load(ids)
}

// iterativeAuthChecks applies each event in order to the state being built
// if the authorisation rules allow it against that state. A key the state
// lacks is taken from the event's own auth events; rejected events never
// serve as auth events.
func (r *resolver) iterativeAuthChecks(order []string, state *overlay) error {
	for i, eid := range order {
		if i%64 == 63 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		ev := r.events[eid]
		if ev == nil || ev.StateKey == nil {
			continue
		}
		sel := ev.AuthEventSelection(r.version)
		chosen := make(map[pdu.StateKey]*pdu.PDU, len(sel))
		for _, aid := range ev.AuthEvents {
			a, err := r.get(string(aid))
			if err != nil {
				return err
			}
			if usable(a) {
				if k := (pdu.StateKey{Type: a.Type, StateKey: *a.StateKey}); sel.Has(k) {
					chosen[k] = a
				}
			}
		}
		for _, k := range sel {
			sid, ok := state.get(Key{k.Type, k.StateKey})
			if !ok {
				continue
			}
			a, err := r.get(sid)
			if err != nil {
				return err
			}
			if usable(a) {
				chosen[k] = a
			}
		}
		// Not nil even when empty: nil tells eventauth to read the event's
		// own auth_events instead.
		auth := make([]*pdu.PDU, 0, len(chosen))
		for _, k := range sel {
			if a := chosen[k]; a != nil {
				auth = append(auth, a)
			}
		}
		if r.authorize(ev, auth) == nil {
			state.top[Key{ev.Type, *ev.StateKey}] = eid
		}
	}
	return nil
}

func usable(a *pdu.PDU) bool {
	return a != nil && a.StateKey != nil && !a.InternalMeta.Rejected
}

// authorize runs the authorisation rules for ev against the given auth
// events. A panic inside the rules (malformed old-version content can cause
// one) counts as a rejection rather than bringing the caller down.
func (r *resolver) authorize(ev *pdu.PDU, auth []*pdu.PDU) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stateres: authorisation rules panicked on %s: %v", ev.InternalMeta.EventID, p)
		}
	}()
	check, getKey := ev, noKeys
	if ev.Type == typeMember {
		if via := gjson.GetBytes(ev.Content, "join_authorised_via_users_server").Str; via != "" {
			check, getKey = r.receiptVerified(ev, id.UserID(via).Homeserver())
		}
	}
	return eventauth.Authorize(r.version, check, auth, r.authEvents, getKey)
}

// authEvents serves eventauth's lookups (in v12, the create event by the
// room ID) from the resolver's cache.
func (r *resolver) authEvents(ids []id.EventID) ([]*pdu.PDU, error) {
	strs := make([]string, len(ids))
	for i, x := range ids {
		strs[i] = string(x)
	}
	if err := r.load(strs); err != nil {
		return nil, err
	}
	out := make([]*pdu.PDU, 0, len(ids))
	for _, s := range strs {
		if ev := r.events[s]; ev != nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

func noKeys(string, id.KeyID, time.Time) (id.SigningKey, time.Time, error) {
	return "", time.Time{}, fmt.Errorf("stateres: no signing keys during state resolution")
}

// receiptKeyID names the stand-in signature made by receiptVerified.
const receiptKeyID = id.KeyID("ed25519:stateres")

// receiptVerified handles rule 5.2.1 (a member event naming an authorising
// server must carry that server's signature). The rule is checked when an
// event is received; state resolution only replays the rules that depend on
// state, and the server's key may since have expired or be unreachable.
// eventauth always verifies it, so the check runs on a copy carrying a
// signature from a key made here, which getKey vouches for. If the authorising
// user ID has no server name the original event is checked and fails as it
// did on receipt.
func (r *resolver) receiptVerified(ev *pdu.PDU, server string) (*pdu.PDU, pdu.GetKeyFunc) {
	if server == "" {
		return ev, noKeys
	}
	if r.receiptKey == nil {
		r.receiptKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	}
	cp := *ev
	cp.Signatures = nil
	if err := cp.Sign(r.version, server, receiptKeyID, r.receiptKey); err != nil {
		return ev, noKeys
	}
	pub := id.SigningKey(base64.RawStdEncoding.EncodeToString(r.receiptKey.Public().(ed25519.PublicKey)))
	validUntil := time.UnixMilli(ev.OriginServerTS).Add(time.Hour)
	return &cp, func(name string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		if name == server && keyID == receiptKeyID {
			return pub, validUntil, nil
		}
		return "", time.Time{}, nil
	}
}
