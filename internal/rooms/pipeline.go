package rooms

import (
	"cmp"
	"context"
	"encoding/json/v2"
	"fmt"
	"maps"
	"slices"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// The write pipeline. Every event enters a room through the same stages,
// under the room's writer (roomWriter):
//
//	build (a local event)  ─┐
//	                        ├─ state before ─ authorise ─ persist
//	accept (a remote PDU) ─┘
//
// build makes and signs a PDU citing the room's forward extremities;
// accept parses and verifies one another server sent (remote.go). The
// state before an event is the room's current state when the event cites
// exactly the forward extremities, and otherwise the resolution of the
// states after its prev events. Authorisation decides accepted, rejected
// or soft-failed (verdict). persist writes the event, its DAG edges, its
// status and, for an accepted event, the state and forward-extremity
// changes in one storage request, then updates the in-memory room.

// candidate is an event on its way into a room.
type candidate struct {
	p       *pdu.PDU
	eventID string
	roomID  string
	raw     []byte
	// req is the local request the event was built from (transaction ID,
	// redaction target); zero for remote events.
	req SendRequest
}

// stateSnapshot is a room state with the state group holding it.
type stateSnapshot struct {
	group    int64
	chainLen int64
	state    storage.StateMap
}

// verdict is what authorisation decided.
type verdict struct {
	status storage.EventStatus
	reason string
}

var accepted = verdict{status: storage.Accepted}

// sendLocked builds, authorises and persists a local event with r.mu held.
// A local event cites all the room's forward extremities, so the state
// before it is the room's current state; one that the rules refuse is not
// stored: the client is told why.
func (s *Service) sendLocked(ctx context.Context, r *room, req SendRequest, hook buildHook) (*Event, error) {
	c, err := s.build(ctx, r, req, hook)
	if err != nil {
		return nil, err
	}
	if err := eventauth.Authorize(r.v().version, c.p, nil, s.authEventsFunc(ctx, c.p, c.roomID), s.ownKey); err != nil {
		return nil, mxerr.Forbidden("%s", authMessage(err))
	}
	return s.persist(ctx, r, c, accepted, r.current())
}

// current is the room's current state as a snapshot. r.mu is held.
func (r *room) current() stateSnapshot {
	v := r.v()
	return stateSnapshot{group: v.group, chainLen: v.chainLen, state: v.state}
}

// build makes, hashes and signs a local event citing the room's forward
// extremities. r.mu is held.
func (s *Service) build(ctx context.Context, r *room, req SendRequest, hook buildHook) (*candidate, error) {
	content, err := normaliseContent(req.Content)
	if err != nil {
		return nil, err
	}
	p := &pdu.PDU{
		Type:           req.Type,
		Sender:         id.UserID(req.Sender),
		RoomID:         id.RoomID(r.id),
		Content:        content,
		StateKey:       req.StateKey,
		OriginServerTS: cmp.Or(req.OriginTS, s.now().UnixMilli()),
		Depth:          r.depth + 1,
		PrevEvents:     make([]id.EventID, 0, len(r.extremities)),
		AuthEvents:     []id.EventID{},
	}
	for _, h := range r.extremities {
		p.PrevEvents = append(p.PrevEvents, id.EventID(h))
	}
	if req.Redacts != "" && !r.v().version.RedactsInContent() {
		target := id.EventID(req.Redacts)
		p.Redacts = &target
	}
	if hook != nil {
		hook(p)
	}
	for _, k := range p.AuthEventSelection(r.v().version) {
		if evID, ok := r.v().state[storage.StateKey{Type: k.Type, StateKey: k.StateKey}]; ok {
			p.AuthEvents = append(p.AuthEvents, id.EventID(evID))
		}
	}
	if err := p.FillContentHash(); err != nil {
		return nil, mxerr.BadJSON("Event content is not valid canonical JSON: %v", err)
	}
	if err := p.Sign(r.v().version, s.serverName, s.keyID, s.key); err != nil {
		return nil, mxerr.BadJSON("Cannot sign event: %v", err)
	}
	eventID, err := p.GetEventID(r.v().version)
	if err != nil {
		return nil, fmt.Errorf("event ID: %w", err)
	}
	p.InternalMeta.EventID = eventID
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(raw) > MaxPDUSize {
		return nil, mxerr.New("M_TOO_LARGE", "Event is larger than %d bytes", MaxPDUSize)
	}
	roomID := r.id
	if p.Type == "m.room.create" && r.v().version.RoomIDIsCreateEventID() {
		roomID = "!" + string(eventID)[1:]
	}
	return &candidate{p: p, eventID: string(eventID), roomID: roomID, raw: raw, req: req}, nil
}

// persist stores c with verdict v, before being the state before it, and
// brings the in-memory room up to date. r.mu is held.
func (s *Service) persist(ctx context.Context, r *room, c *candidate, v verdict, before stateSnapshot) (*Event, error) {
	p, req := c.p, c.req
	row := storage.Event{
		EventID: c.eventID, RoomID: c.roomID, Type: p.Type, StateKey: p.StateKey, Sender: string(p.Sender),
		Depth: p.Depth, OriginTS: p.OriginServerTS, StateBefore: before.group, PDU: c.raw,
		TxnDevice: req.TxnDevice, TxnID: req.TxnID,
	}
	if rel := gjson.GetBytes(p.Content, `m\.relates_to`); rel.IsObject() {
		row.RelType = rel.Get("rel_type").Str
		row.RelatesTo = rel.Get("event_id").Str
		if row.RelType == "m.thread" {
			row.ThreadRoot = row.RelatesTo
		}
		if row.RelType == "" {
			row.RelatesTo = ""
		}
	}
	preq := storage.PersistRequest{Event: row, Status: v.status,
		PrevEvents: eventIDStrings(p.PrevEvents), AuthEvents: eventIDStrings(p.AuthEvents)}
	switch v.status {
	case storage.Rejected:
		preq.RejectedReason = v.reason
		s.log.Info("rejected event", "room", c.roomID, "event", c.eventID, "reason", v.reason)
	case storage.SoftFailed:
		s.log.Info("soft-failed event", "room", c.roomID, "event", c.eventID, "reason", v.reason)
	}
	ok := v.status == storage.Accepted
	if ok && req.Redacts != "" {
		preq.Redacts = req.Redacts
	}
	// follows: the event extends the room's current state (every local
	// event, and remote ones citing exactly the forward extremities).
	follows := before.group == r.v().group && sameIDs(p.PrevEvents, r.extremities)
	after := before
	if ok {
		for _, x := range r.extremities {
			if slices.Contains(p.PrevEvents, id.EventID(x)) {
				preq.Extremities = append(preq.Extremities, x)
			}
		}
		if p.StateKey != nil {
			key := storage.StateKey{Type: p.Type, StateKey: *p.StateKey}
			after.state = make(storage.StateMap, len(before.state)+1)
			for k, v := range before.state {
				after.state[k] = v
			}
			after.state[key] = c.eventID
			preq.Event.Replaces = before.state[key]
			if before.group == 0 || before.chainLen >= maxChainLen {
				preq.NewGroup = &storage.NewStateGroup{ChainLen: 1, Entries: after.state}
			} else {
				preq.NewGroup = &storage.NewStateGroup{Prev: before.group, ChainLen: before.chainLen + 1, Entries: storage.StateMap{key: c.eventID}}
			}
			after.chainLen = preq.NewGroup.ChainLen
			if p.Type == "m.room.member" {
				preq.Membership = gjson.GetBytes(p.Content, "membership").Str
			}
		}
		if !follows {
			change, err := s.mergeCurrent(ctx, r, after.state)
			if err != nil {
				return nil, err
			}
			preq.Current = change
		}
	}
	if p.Type == "m.room.create" && ok {
		preq.NewRoom = &storage.Room{RoomID: c.roomID, RoomVersion: string(r.v().version), Creator: string(p.Sender), CreatedTS: p.OriginServerTS}
	}
	// The in-memory room moves on in the commit hook, before the event is
	// announced on the feed: whoever the feed wakes finds it there too.
	var ev *Event
	preq.OnCommit = func(pos, afterGroup int64) {
		ev = s.applyPersisted(ctx, r, c, v, preq, after, pos, afterGroup)
	}
	if _, _, err := s.db.PersistEvent(ctx, preq); err != nil {
		return nil, err
	}
	return ev, nil
}

// applyPersisted updates the in-memory room and caches for an event just
// committed, and returns the event. It runs in the commit hook, under the
// database's write lock and r.mu: nothing here may wait.
func (s *Service) applyPersisted(ctx context.Context, r *room, c *candidate, v verdict, preq storage.PersistRequest, after stateSnapshot, pos, afterGroup int64) *Event {
	p, req := c.p, c.req
	ok := v.status == storage.Accepted
	row := preq.Event
	row.StreamPos, row.StateAfter = pos, afterGroup
	row.RejectedReason, row.SoftFailed = preq.RejectedReason, v.status == storage.SoftFailed
	if v.status == storage.Rejected {
		p.InternalMeta.Rejected = true
	}
	ev := &Event{Event: row, PDU: p, Version: r.v().version}
	s.events.put(ev.EventID, ev)
	if !ok {
		return ev
	}
	r.extremities = slices.DeleteFunc(r.extremities, func(x string) bool { return slices.Contains(preq.Extremities, x) })
	r.extremities = append(r.extremities, c.eventID)
	r.depth = max(r.depth, p.Depth)
	if preq.NewGroup != nil {
		s.groups.put(afterGroup, after.state)
	}
	switch {
	case preq.Current != nil:
		s.applyCurrent(r, preq.Current, pos)
	case preq.NewGroup != nil:
		nv := *r.v()
		nv.group, nv.chainLen, nv.state = afterGroup, after.chainLen, after.state
		if preq.Membership != "" {
			nv.members = maps.Clone(nv.members)
			nv.members[*p.StateKey] = preq.Membership
		}
		r.view.Store(&nv)
		if preq.Membership != "" {
			s.noteMembership(*p.StateKey, storage.Membership{RoomID: c.roomID, Membership: preq.Membership, EventID: row.EventID, StreamPos: pos})
		}
	}
	if row.ThreadRoot != "" {
		s.addThreadRoot(ctx, row.ThreadRoot)
	}
	if req.Redacts != "" {
		s.events.remove(req.Redacts)
	}
	return ev
}

// mergeCurrent resolves the room's current state with the state after an
// event that forked from it, and returns the change to store. r.mu is held.
func (s *Service) mergeCurrent(ctx context.Context, r *room, after storage.StateMap) (*storage.CurrentStateChange, error) {
	resolved, err := s.resolve(ctx, r.v().version, []storage.StateMap{r.v().state, after})
	if err != nil {
		return nil, fmt.Errorf("resolve current state: %w", err)
	}
	change := &storage.CurrentStateChange{Group: &storage.NewStateGroup{ChainLen: 1, Entries: resolved}, Set: storage.StateMap{},
		Memberships: map[string]string{}}
	for k, v := range resolved {
		if r.v().state[k] != v {
			change.Set[k] = v
		}
	}
	for k := range r.v().state {
		if _, ok := resolved[k]; !ok {
			change.Removed = append(change.Removed, k)
		}
	}
	var memberIDs []string
	for k, v := range change.Set {
		if k.Type == "m.room.member" {
			memberIDs = append(memberIDs, v)
		}
	}
	evs, err := s.Events(ctx, memberIDs)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		change.Memberships[*ev.StateKey] = membershipOf(ev)
	}
	return change, nil
}

// applyCurrent brings the in-memory room to a stored current-state change.
func (s *Service) applyCurrent(r *room, change *storage.CurrentStateChange, pos int64) {
	nv := *r.v()
	nv.group, nv.chainLen, nv.state = change.GroupID, 1, change.Group.Entries
	nv.members = maps.Clone(nv.members)
	defer r.view.Store(&nv)
	s.groups.put(change.GroupID, change.Group.Entries)
	for k, v := range change.Set {
		if k.Type != "m.room.member" {
			continue
		}
		m := change.Memberships[k.StateKey]
		nv.members[k.StateKey] = m
		s.noteMembership(k.StateKey, storage.Membership{RoomID: r.id, Membership: m, EventID: v, StreamPos: pos})
	}
	for _, k := range change.Removed {
		if k.Type == "m.room.member" {
			delete(nv.members, k.StateKey)
			s.noteMembership(k.StateKey, storage.Membership{RoomID: r.id, Membership: "", StreamPos: pos})
		}
	}
}

func eventIDStrings(ids []id.EventID) []string {
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = string(x)
	}
	return out
}

// sameIDs reports whether a and b hold the same event IDs.
func sameIDs(a []id.EventID, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, id.EventID(x)) {
			return false
		}
	}
	return true
}
