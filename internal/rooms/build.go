package rooms

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"time"

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
		s.writer.unlock(r)
		return prev, nil
	}
	ev, err := s.sendLocked(ctx, r, req, nil)
	s.writer.unlock(r)
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
	prevID := r.v().state[storage.StateKey{Type: req.Type, StateKey: *req.StateKey}]
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
