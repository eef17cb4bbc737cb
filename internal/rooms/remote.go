package rooms

import (
	"context"
	"encoding/json/v2"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/stateres"
	"github.com/axon-matrix/axon/internal/storage"
)

// Events from other servers enter the pipeline half-way: accept replaces
// build, and authorisation makes the spec's three checks (server-server
// API, "Checks performed on receipt of a PDU") instead of one:
//
//  1. against the event's own auth events: failing, it is rejected;
//  2. against the state before it: failing, it is rejected;
//  3. against the room's current state: failing, it is soft-failed.
//
// Rejected and soft-failed events are stored (events citing a rejected one
// are rejected in turn; soft-failed ones stay in the DAG) but outside the
// stream, so clients never see them.

// ErrUnknownPrevEvents means a remote event cites prev events this server
// does not have; federation fetches them (get_missing_events) first.
var ErrUnknownPrevEvents = errors.New("prev events not known")

// AcceptRemote takes an event another server sent into the room it names,
// and returns it with the verdict stored (Event.InStream false unless
// accepted). keys serves the signing keys of any server, at a time. An
// event already stored is returned as it is.
func (s *Service) AcceptRemote(ctx context.Context, roomID string, raw []byte, keys pdu.GetKeyFunc) (*Event, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	ev, err := s.acceptLocked(ctx, r, raw, keys)
	s.writer.unlock(r)
	if err != nil {
		return nil, err
	}
	if ev.InStream() && ev.fresh {
		// Listeners hear of accepted events only, as of local ones (the
		// change feed announced it at its commit).
		s.publish(ev.Event)
	}
	return ev.Event, nil
}

// acceptedEvent is an event AcceptRemote stored, or found stored (fresh
// false).
type acceptedEvent struct {
	*Event
	fresh bool
}

func (s *Service) acceptLocked(ctx context.Context, r *room, raw []byte, keys pdu.GetKeyFunc) (acceptedEvent, error) {
	c, err := s.accept(r, raw, keys)
	if err != nil {
		return acceptedEvent{}, err
	}
	if row, err := s.db.GetEvent(ctx, c.eventID); err == nil {
		ev, err := s.wrap(ctx, row)
		return acceptedEvent{Event: ev}, err
	} else if !errors.Is(err, storage.ErrNotFound) {
		return acceptedEvent{}, err
	}
	before, err := s.stateBefore(ctx, r, c)
	if err != nil {
		return acceptedEvent{}, err
	}
	v, err := s.authoriseRemote(ctx, r, c, before, keys)
	if err != nil {
		return acceptedEvent{}, err
	}
	ev, err := s.persist(ctx, r, c, v, before)
	return acceptedEvent{Event: ev, fresh: true}, err
}

// accept parses and verifies a remote PDU: its room, its ID, its origin's
// signature; a PDU whose content does not match its hash is redacted, as
// the spec requires. r.mu is held.
func (s *Service) accept(r *room, raw []byte, keys pdu.GetKeyFunc) (*candidate, error) {
	if len(raw) > MaxPDUSize {
		return nil, fmt.Errorf("PDU is larger than %d bytes", MaxPDUSize)
	}
	var p pdu.PDU
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("parse PDU: %w", err)
	}
	if string(p.RoomID) != r.id {
		return nil, fmt.Errorf("PDU of room %s sent to room %s", p.RoomID, r.id)
	}
	if p.Type == "m.room.create" {
		return nil, errors.New("a room's create event cannot arrive as a new event")
	}
	origin := p.Sender.Homeserver()
	if origin == "" || origin == s.serverName {
		return nil, fmt.Errorf("PDU from %q is not another server's", p.Sender)
	}
	if err := p.VerifySignature(r.v().version, origin, keys); err != nil {
		return nil, fmt.Errorf("signature of %s: %w", origin, err)
	}
	if !p.VerifyContentHash() {
		p = *p.Redact(r.v().version)
	}
	eventID, err := p.GetEventID(r.v().version)
	if err != nil {
		return nil, fmt.Errorf("event ID: %w", err)
	}
	p.InternalMeta.EventID = eventID
	stored, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encode PDU: %w", err)
	}
	return &candidate{p: &p, eventID: string(eventID), roomID: r.id, raw: stored}, nil
}

// stateBefore is the state before c: the room's current state when c
// cites exactly the forward extremities, the state after its one prev
// event, or the resolution of the states after its prev events. r.mu is
// held.
func (s *Service) stateBefore(ctx context.Context, r *room, c *candidate) (stateSnapshot, error) {
	if sameIDs(c.p.PrevEvents, r.extremities) {
		return r.current(), nil
	}
	prevs, err := s.Events(ctx, eventIDStrings(c.p.PrevEvents))
	if err != nil {
		return stateSnapshot{}, err
	}
	if len(prevs) != len(c.p.PrevEvents) || len(prevs) == 0 {
		return stateSnapshot{}, ErrUnknownPrevEvents
	}
	sets := make([]storage.StateMap, 0, len(prevs))
	for _, prev := range prevs {
		st, err := s.StateAt(ctx, prev.StateAfter)
		if err != nil {
			return stateSnapshot{}, err
		}
		sets = append(sets, st)
	}
	if len(sets) == 1 {
		chain, err := s.chainLen(ctx, prevs[0].StateAfter)
		if err != nil {
			return stateSnapshot{}, err
		}
		return stateSnapshot{group: prevs[0].StateAfter, chainLen: chain, state: sets[0]}, nil
	}
	resolved, err := s.resolve(ctx, r.v().version, sets)
	if err != nil {
		return stateSnapshot{}, fmt.Errorf("resolve the state before %s: %w", c.eventID, err)
	}
	// A resolved state has no group yet: group 0 makes persist store the
	// state after the event as a full snapshot.
	return stateSnapshot{state: resolved}, nil
}

// authoriseRemote makes the three checks on receipt of a PDU. r.mu is held.
func (s *Service) authoriseRemote(ctx context.Context, r *room, c *candidate, before stateSnapshot, keys pdu.GetKeyFunc) (verdict, error) {
	getEvents := s.authEventsFunc(ctx, c.p, c.roomID)
	// 1. The event's own auth events: all known, none rejected, and they
	// allow it. Missing ones are fetched by federation before this.
	authEvs, err := getEvents(c.p.AuthEvents)
	if err != nil {
		return verdict{}, err
	}
	for i, ae := range authEvs {
		if ae == nil {
			return verdict{status: storage.Rejected, reason: fmt.Sprintf("unknown auth event %s", c.p.AuthEvents[i])}, nil
		}
	}
	if err := eventauth.Authorize(r.v().version, c.p, nil, getEvents, keys); err != nil {
		return verdict{status: storage.Rejected, reason: "auth events: " + authMessage(err)}, nil
	}
	// 2. The state before the event.
	if err := s.authorizeAgainst(ctx, r, c, before.state, keys); err != nil {
		return verdict{status: storage.Rejected, reason: "state before: " + authMessage(err)}, nil
	}
	// 3. The current state, unless that is the state before.
	if before.group != r.v().group || !sameIDs(c.p.PrevEvents, r.extremities) {
		if err := s.authorizeAgainst(ctx, r, c, r.v().state, keys); err != nil {
			return verdict{status: storage.SoftFailed, reason: "current state: " + authMessage(err)}, nil
		}
	}
	return accepted, nil
}

// authorizeAgainst checks c against the auth events a state selects for it.
func (s *Service) authorizeAgainst(ctx context.Context, r *room, c *candidate, state storage.StateMap, keys pdu.GetKeyFunc) error {
	var ids []string
	for _, k := range c.p.AuthEventSelection(r.v().version) {
		if evID, ok := state[storage.StateKey{Type: k.Type, StateKey: k.StateKey}]; ok {
			ids = append(ids, evID)
		}
	}
	evs, err := s.Events(ctx, ids)
	if err != nil {
		return err
	}
	auth := make([]*pdu.PDU, 0, len(evs))
	for _, ev := range evs {
		auth = append(auth, ev.PDU)
	}
	// In v12 the create event is no auth event: Authorize finds it
	// through getEvents by the room ID.
	return eventauth.Authorize(r.v().version, c.p, auth, s.authEventsFunc(ctx, c.p, c.roomID), keys)
}

// resolveState is state resolution (internal/stateres) over the room's
// stored events.
func (s *Service) resolveState(ctx context.Context, version id.RoomVersion, sets []storage.StateMap) (storage.StateMap, error) {
	in := make([]stateres.State, len(sets))
	for i, set := range sets {
		in[i] = make(stateres.State, len(set))
		for k, v := range set {
			in[i][stateres.Key(k)] = v
		}
	}
	resolved, err := stateres.Resolve(ctx, version, in, s.fetchPDUs)
	if err != nil {
		return nil, err
	}
	out := make(storage.StateMap, len(resolved))
	for k, v := range resolved {
		out[storage.StateKey(k)] = v
	}
	return out, nil
}

// fetchPDUs serves stored events to state resolution.
func (s *Service) fetchPDUs(ctx context.Context, ids []string) ([]*pdu.PDU, error) {
	evs, err := s.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*pdu.PDU, len(evs))
	for i, ev := range evs {
		out[i] = ev.PDU
	}
	return out, nil
}
