package rooms

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// MaxPDUSize is the spec's limit on a whole event in canonical JSON.
const MaxPDUSize = 65536

// maxChainLen bounds state group delta chains, so reading the state at any
// event touches at most this many groups.
const maxChainLen = 32

// SendRequest is a request to add an event to a room.
type SendRequest struct {
	RoomID    string
	Sender    string
	Type      string
	StateKey  *string
	Content   []byte
	Redacts   string // target of an m.room.redaction
	TxnDevice string
	TxnID     string
	// OriginTS, if not 0, is the event's origin_server_ts instead of now:
	// application services date bridged messages (the ts parameter).
	// It does not change where the event goes in the room.
	OriginTS int64
	// memberChecked marks a member event built by the membership
	// endpoints, which have made their own checks (see memberstate.go).
	memberChecked bool
}

// Send builds, signs, authorises and persists an event. With a transaction
// ID it is idempotent: a repeat returns the event sent the first time.
func (s *Service) Send(ctx context.Context, req SendRequest) (*Event, error) {
	if req.TxnID != "" {
		if ev, err := s.byTxn(ctx, req); err != nil || ev != nil {
			return ev, err
		}
	}
	if err := s.checkSuspended(ctx, req); err != nil {
		return nil, err
	}
	if req.Type == "m.room.member" && req.StateKey != nil && !req.memberChecked {
		if err := s.checkMemberState(ctx, &req); err != nil {
			return nil, err
		}
	}
	if err := s.checkInvitePermission(ctx, req); err != nil {
		return nil, err
	}
	if req.Type == "m.room.redaction" && req.Redacts == "" && req.StateKey == nil {
		if err := s.redactionFromSend(ctx, &req); err != nil {
			return nil, err
		}
	}
	if err := checkTypeAndKey(req); err != nil {
		return nil, err
	}
	if req.StateKey != nil {
		if err := checkStateContent(req.Type, req.Content); err != nil {
			return nil, err
		}
		if req.Type == "m.room.create" {
			return nil, mxerr.BadJSON("A room has one m.room.create event, made with the room; upgrade the room to change it")
		}
		if err := s.checkPowerLevelsCreators(ctx, req); err != nil {
			return nil, err
		}
		if req.Type == "m.room.canonical_alias" && *req.StateKey == "" {
			if err := s.checkCanonicalAlias(ctx, req.RoomID, req.Content); err != nil {
				return nil, err
			}
		}
	}
	r, err := s.lockRoom(ctx, req.RoomID)
	if err != nil {
		return nil, err
	}
	if prev := s.identicalState(ctx, r, req); prev != nil {
		r.mu.Unlock()
		return prev, nil
	}
	ev, err := s.sendLocked(ctx, r, req, nil)
	r.mu.Unlock()
	if errors.Is(err, storage.ErrDuplicateTxn) {
		return s.byTxn(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	s.publish(ev)
	return ev, nil
}

// identicalState returns the current state event that req would only
// repeat (same type, state key, sender and content), so that setting state
// twice is idempotent as clients expect, instead of adding an event that
// changes nothing. r.mu is held.
func (s *Service) identicalState(ctx context.Context, r *room, req SendRequest) *Event {
	if req.StateKey == nil {
		return nil
	}
	prevID := r.state[storage.StateKey{Type: req.Type, StateKey: *req.StateKey}]
	if prevID == "" {
		return nil
	}
	prev, err := s.Event(ctx, prevID)
	if err != nil || prev.Sender != req.Sender {
		return nil
	}
	want, err := canonicaljson.CanonicalJSON(req.Content)
	if err != nil {
		return nil
	}
	have, err := canonicaljson.CanonicalJSON(prev.PDU.Content)
	if err != nil || !bytes.Equal(want, have) {
		return nil
	}
	return prev
}

func (s *Service) byTxn(ctx context.Context, req SendRequest) (*Event, error) {
	row, err := s.db.EventByTxn(ctx, req.Sender, req.TxnDevice, req.TxnID, req.RoomID, req.Type)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up transaction: %w", err)
	}
	return s.wrap(ctx, row)
}

// buildHook lets room creation adjust a PDU (e.g. the create event has no
// room ID in v12) before it is hashed and signed.
type buildHook func(p *pdu.PDU)

// sendLocked does the work of Send with r.mu held.
func (s *Service) sendLocked(ctx context.Context, r *room, req SendRequest, hook buildHook) (*Event, error) {
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
		PrevEvents:     make([]id.EventID, 0, len(r.heads)),
		AuthEvents:     []id.EventID{},
	}
	for _, h := range r.heads {
		p.PrevEvents = append(p.PrevEvents, id.EventID(h))
	}
	if req.Redacts != "" && !r.version.RedactsInContent() {
		target := id.EventID(req.Redacts)
		p.Redacts = &target
	}
	if hook != nil {
		hook(p)
	}
	for _, k := range p.AuthEventSelection(r.version) {
		if evID, ok := r.state[storage.StateKey{Type: k.Type, StateKey: k.StateKey}]; ok {
			p.AuthEvents = append(p.AuthEvents, id.EventID(evID))
		}
	}
	if err := p.FillContentHash(); err != nil {
		return nil, mxerr.BadJSON("Event content is not valid canonical JSON: %v", err)
	}
	if err := p.Sign(r.version, s.serverName, s.keyID, s.key); err != nil {
		return nil, mxerr.BadJSON("Cannot sign event: %v", err)
	}
	eventID, err := p.GetEventID(r.version)
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
	if p.Type == "m.room.create" && r.version.RoomIDIsCreateEventID() {
		roomID = "!" + string(eventID)[1:]
	}
	if err := eventauth.Authorize(r.version, p, nil, s.authEventsFunc(ctx, p, roomID), s.ownKey); err != nil {
		return nil, mxerr.Forbidden("%s", authMessage(err))
	}

	row := storage.Event{
		EventID: string(eventID), RoomID: roomID, Type: p.Type, StateKey: p.StateKey, Sender: req.Sender,
		Depth: p.Depth, OriginTS: p.OriginServerTS, StateBefore: r.group, PDU: raw,
		TxnDevice: req.TxnDevice, TxnID: req.TxnID,
	}
	if rel := gjson.GetBytes(content, `m\.relates_to`); rel.IsObject() {
		row.RelType = rel.Get("rel_type").Str
		row.RelatesTo = rel.Get("event_id").Str
		if row.RelType == "m.thread" {
			row.ThreadRoot = row.RelatesTo
		}
		if row.RelType == "" {
			row.RelatesTo = ""
		}
	}
	preq := storage.PersistRequest{Event: row}
	if req.Redacts != "" {
		preq.Redacts = req.Redacts
	}
	var newState storage.StateMap
	if p.StateKey != nil {
		key := storage.StateKey{Type: p.Type, StateKey: *p.StateKey}
		newState = make(storage.StateMap, len(r.state)+1)
		for k, v := range r.state {
			newState[k] = v
		}
		newState[key] = string(eventID)
		preq.Event.Replaces = r.state[key]
		if r.group == 0 || r.chainLen >= maxChainLen {
			preq.NewGroup = &storage.NewStateGroup{ChainLen: 1, Entries: newState}
		} else {
			preq.NewGroup = &storage.NewStateGroup{Prev: r.group, ChainLen: r.chainLen + 1, Entries: storage.StateMap{key: string(eventID)}}
		}
		if p.Type == "m.room.member" {
			preq.Membership = gjson.GetBytes(content, "membership").Str
		}
	}
	if p.Type == "m.room.create" {
		preq.NewRoom = &storage.Room{RoomID: roomID, RoomVersion: string(r.version), Creator: req.Sender, CreatedTS: p.OriginServerTS}
	}
	pos, after, err := s.db.PersistEvent(ctx, preq)
	if err != nil {
		return nil, err
	}
	row = preq.Event
	row.StreamPos, row.StateAfter = pos, after
	ev := &Event{Event: row, PDU: p, Version: r.version}
	r.heads = []string{string(eventID)}
	r.depth = p.Depth
	if preq.NewGroup != nil {
		r.group = after
		r.chainLen = preq.NewGroup.ChainLen
		r.state = newState
		s.groups.put(after, newState)
		if preq.Membership != "" {
			r.members[*p.StateKey] = preq.Membership
			s.noteMembership(*p.StateKey, storage.Membership{RoomID: roomID, Membership: preq.Membership, EventID: row.EventID, StreamPos: pos})
		}
	}
	s.events.put(ev.EventID, ev)
	if row.ThreadRoot != "" {
		s.addThreadRoot(ctx, row.ThreadRoot)
	}
	if req.Redacts != "" {
		s.events.remove(req.Redacts)
	}
	return ev, nil
}

// normaliseContent checks the content is a JSON object and returns it compacted.
func normaliseContent(b []byte) (jsontext.Value, error) {
	if len(b) == 0 {
		return jsontext.Value("{}"), nil
	}
	v := jsontext.Value(append([]byte(nil), b...))
	if !v.IsValid() {
		return nil, mxerr.New("M_NOT_JSON", "Content is not valid JSON")
	}
	if err := v.Compact(); err != nil {
		return nil, mxerr.New("M_NOT_JSON", "Content is not valid JSON")
	}
	if v.Kind() != '{' {
		return nil, mxerr.BadJSON("Content must be a JSON object")
	}
	return v, nil
}

// authEventsFunc resolves event IDs for the auth checker. The create event
// of a v12 room being created is not stored yet, so it is served from p.
func (s *Service) authEventsFunc(ctx context.Context, p *pdu.PDU, roomID string) eventauth.GetEventsFunc {
	return func(ids []id.EventID) ([]*pdu.PDU, error) {
		strs := make([]string, len(ids))
		for i, x := range ids {
			strs[i] = string(x)
		}
		evs, err := s.Events(ctx, strs)
		if err != nil {
			return nil, err
		}
		byID := make(map[string]*pdu.PDU, len(evs))
		for _, ev := range evs {
			byID[ev.EventID] = ev.PDU
		}
		out := make([]*pdu.PDU, len(ids))
		for i, x := range ids {
			out[i] = byID[string(x)]
		}
		return out, nil
	}
}

// ownKey serves this server's verify key to signature checks (restricted joins).
func (s *Service) ownKey(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	if serverName != s.serverName || keyID != s.keyID {
		return "", time.Time{}, fmt.Errorf("unknown key %s of %s", keyID, serverName)
	}
	pub := s.key.Public().(ed25519.PublicKey)
	return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(24 * time.Hour), nil
}

// authMessage turns an auth rule failure into a message for the client.
func authMessage(err error) string {
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) {
		return afe.Message
	}
	return err.Error()
}
