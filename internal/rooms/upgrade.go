package rooms

import (
	"context"
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/suspension"
)

// transferredState is the state an upgrade copies to the new room (the
// spec's recommended list; membership other than bans is never copied).
var transferredState = []string{
	"m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.guest_access", "m.room.history_visibility", "m.room.join_rules",
}

// UpgradeRequest is POST /rooms/{roomId}/upgrade.
type UpgradeRequest struct {
	RoomID             string
	Sender             string
	NewVersion         string
	AdditionalCreators []string
}

// Upgrade replaces a room with a new one of another version: copies its
// transferable state, power levels and bans, moves local aliases, tombstones
// the old room and restricts speaking in it. It returns the new room ID.
func (s *Service) Upgrade(ctx context.Context, req UpgradeRequest) (string, error) {
	if err := suspension.Refuse(ctx, s.db, req.Sender); err != nil {
		return "", err
	}
	newVersion := id.RoomVersion(req.NewVersion)
	if !IsSupported(newVersion) {
		return "", mxerr.New("M_UNSUPPORTED_ROOM_VERSION", "Room version %q is not supported", req.NewVersion)
	}
	for _, c := range req.AdditionalCreators {
		if _, _, err := id.UserID(c).Parse(); err != nil {
			return "", mxerr.InvalidParam("Invalid user ID in additional_creators: %q", c)
		}
	}
	pl, err := s.PowerLevels(ctx, req.RoomID)
	if err != nil {
		return "", err
	}
	if m, err := s.Membership(ctx, req.RoomID, req.Sender); err != nil {
		return "", err
	} else if m != "join" {
		return "", mxerr.Forbidden("You are not in this room")
	}
	if pl.UserLevel(req.Sender) < pl.EventLevel("m.room.tombstone", true) {
		return "", mxerr.Forbidden("You may not upgrade this room")
	}
	state, err := s.CurrentState(ctx, req.RoomID)
	if err != nil {
		return "", err
	}
	content := func(typ, key string) json.RawMessage {
		evID, ok := state[storage.StateKey{Type: typ, StateKey: key}]
		if !ok {
			return nil
		}
		ev, err := s.Event(ctx, evID)
		if err != nil {
			return nil
		}
		return json.RawMessage(ev.PDU.Content)
	}

	creation := map[string]json.RawMessage{}
	var old struct {
		Type     *string `json:"type"`
		Federate *bool   `json:"m.federate"`
	}
	json.Unmarshal(content("m.room.create", ""), &old)
	if old.Type != nil {
		creation["type"] = mustJSON(*old.Type)
	}
	if old.Federate != nil {
		creation["m.federate"] = mustJSON(*old.Federate)
	}
	predecessor := map[string]any{"room_id": req.RoomID}
	if !newVersion.RoomIDIsCreateEventID() {
		r, err := s.lockRoom(ctx, req.RoomID)
		if err != nil {
			return "", err
		}
		if len(r.extremities) > 0 {
			predecessor["event_id"] = r.extremities[0]
		}
		s.writer.unlock(r)
	}
	creation["predecessor"] = mustJSON(predecessor)
	if len(req.AdditionalCreators) > 0 && newVersion.PrivilegedRoomCreators() {
		creation["additional_creators"] = mustJSON(req.AdditionalCreators)
	}

	var initial []StateEvent
	for _, typ := range transferredState {
		if c := content(typ, ""); c != nil {
			initial = append(initial, StateEvent{Type: typ, Content: c})
		}
	}
	aliases, err := s.db.RoomAliases(ctx, req.RoomID)
	if err != nil {
		return "", err
	}
	if c := content("m.room.canonical_alias", ""); c != nil {
		initial = append(initial, StateEvent{Type: "m.room.canonical_alias", Content: c})
	}

	override, err := upgradedPowerLevels(content("m.room.power_levels", ""), req.Sender, newVersion, req.AdditionalCreators, pl.UserLevel(req.Sender))
	if err != nil {
		return "", err
	}
	newRoom, err := s.CreateRoom(ctx, CreateRequest{
		Creator: req.Sender, Preset: "private_chat", RoomVersion: string(newVersion),
		CreationContent: creation, InitialState: initial, PowerLevelContentOverride: override, copiedState: true,
	})
	if err != nil {
		return "", fmt.Errorf("create replacement room: %w", err)
	}

	// Bans carry over: a banned user should not simply rejoin the new room.
	members, err := s.MembersByMembership(ctx, req.RoomID)
	if err != nil {
		return "", err
	}
	for _, banned := range members["ban"] {
		if _, err := s.sendMember(ctx, newRoom, req.Sender, banned, "ban", "Banned in the previous room", nil); err != nil {
			s.log.Warn("upgrade: copying ban", "room", newRoom, "user", banned, "err", err)
		}
	}
	for _, a := range aliases {
		if err := s.db.MoveAlias(ctx, a, newRoom); err != nil {
			return "", err
		}
	}
	if published, err := s.db.IsRoomPublished(ctx, req.RoomID); err == nil && published {
		s.db.SetRoomPublished(ctx, newRoom, true)
		s.db.SetRoomPublished(ctx, req.RoomID, false)
	}
	empty := ""
	if len(aliases) > 0 {
		if _, err := s.Send(ctx, SendRequest{RoomID: req.RoomID, Sender: req.Sender, Type: "m.room.canonical_alias", StateKey: &empty, Content: []byte(`{}`)}); err != nil {
			s.log.Warn("upgrade: clearing old canonical alias", "room", req.RoomID, "err", err)
		}
	}
	if _, err := s.Send(ctx, SendRequest{RoomID: req.RoomID, Sender: req.Sender, Type: "m.room.tombstone", StateKey: &empty,
		Content: mustJSON(map[string]string{"body": "This room has been replaced", "replacement_room": newRoom})}); err != nil {
		return "", fmt.Errorf("tombstone: %w", err)
	}
	s.restrictOldRoom(ctx, req.RoomID, req.Sender, content("m.room.power_levels", ""))
	return newRoom, nil
}

// upgradedPowerLevels copies the old power levels for the new room. The
// upgrader keeps enough power to set up the new room; creators of a v12+
// room may not appear in its users map at all.
func upgradedPowerLevels(old json.RawMessage, upgrader string, v id.RoomVersion, extraCreators []string, level int) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if old != nil {
		if err := json.Unmarshal(old, &out); err != nil {
			return nil, fmt.Errorf("old power levels: %w", err)
		}
	}
	users := map[string]json.RawMessage{}
	if u, ok := out["users"]; ok {
		json.Unmarshal(u, &users)
	}
	if v.PrivilegedRoomCreators() {
		delete(users, upgrader)
		for _, c := range extraCreators {
			delete(users, c)
		}
	} else {
		if level > maxCanonicalInt {
			// A creator of a v12+ room outranks any number; below v12 the
			// top level any action of the old room needed is enough (and
			// 2^53 is no canonical JSON integer: the create failed).
			level = highestLevel(out)
		}
		users[upgrader] = mustJSON(max(level, 100))
	}
	out["users"] = mustJSON(users)
	return out, nil
}

// maxCanonicalInt is the largest integer canonical JSON allows.
const maxCanonicalInt = 1<<53 - 1

// highestLevel is the highest power level a power levels content names:
// of its users, its events and its actions and defaults.
func highestLevel(pl map[string]json.RawMessage) int {
	high := 0
	consider := func(raw json.RawMessage) {
		var n int
		if json.Unmarshal(raw, &n) == nil && n <= maxCanonicalInt {
			high = max(high, n)
		}
	}
	for k, raw := range pl {
		switch k {
		case "users", "events", "notifications":
			var m map[string]json.RawMessage
			json.Unmarshal(raw, &m)
			for _, v := range m {
				consider(v)
			}
		default:
			consider(raw)
		}
	}
	return high
}

// restrictOldRoom raises events_default and invite in the old room so it
// is effectively read-only; failing to do so does not undo the upgrade.
func (s *Service) restrictOldRoom(ctx context.Context, roomID, sender string, old json.RawMessage) {
	plc := map[string]json.RawMessage{}
	if old != nil {
		json.Unmarshal(old, &plc)
	}
	usersDefault := 0
	if raw, ok := plc["users_default"]; ok {
		json.Unmarshal(raw, &usersDefault)
	}
	restricted := max(50, usersDefault+1)
	plc["events_default"] = mustJSON(restricted)
	plc["invite"] = mustJSON(restricted)
	empty := ""
	if _, err := s.Send(ctx, SendRequest{RoomID: roomID, Sender: sender, Type: "m.room.power_levels", StateKey: &empty, Content: mustJSON(plc)}); err != nil {
		s.log.Warn("upgrade: restricting old room", "room", roomID, "err", err)
	}
}
