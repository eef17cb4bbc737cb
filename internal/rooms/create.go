package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/suspension"
)

// StateEvent is a state event given by a client in createRoom.
type StateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CreateRequest is createRoom's input, already decoded.
type CreateRequest struct {
	Creator                   string
	Visibility                string
	RoomAliasName             string
	Name                      *string
	Topic                     *string
	Invite                    []string
	RoomVersion               string
	CreationContent           map[string]json.RawMessage
	InitialState              []StateEvent
	Preset                    string
	IsDirect                  bool
	PowerLevelContentOverride map[string]json.RawMessage
	// Invite3PID are invite_3pid's invites by email or phone number.
	Invite3PID []ThirdPartyInvite
	// copiedState marks InitialState copied from a room being upgraded,
	// which is taken as it is: the old room may hold content this server
	// would refuse from a client today.
	copiedState bool
}

// ThirdPartyInvite is an invite of whoever an identity server says owns a
// third-party identifier.
type ThirdPartyInvite struct {
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
	Medium        string `json:"medium"`
	Address       string `json:"address"`
}

// CreateRoom creates a room with the event sequence the spec prescribes.
func (s *Service) CreateRoom(ctx context.Context, req CreateRequest) (string, error) {
	if err := suspension.Refuse(ctx, s.db, req.Creator); err != nil {
		return "", err
	}
	if len(req.Invite3PID) > 0 {
		// Such invites need an identity server to look the address up and
		// sign the invite; creating the room without them would drop the
		// invites silently.
		return "", mxerr.New("M_SERVER_NOT_TRUSTED", "This server trusts no identity server, so it cannot invite by email or phone number")
	}
	version := s.defaultVersion
	if req.RoomVersion != "" {
		version = id.RoomVersion(req.RoomVersion)
		if !IsSupported(version) {
			return "", mxerr.New("M_UNSUPPORTED_ROOM_VERSION", "Room version %q is not supported", req.RoomVersion)
		}
	}
	preset := req.Preset
	if preset == "" {
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	}
	if preset != "private_chat" && preset != "public_chat" && preset != "trusted_private_chat" {
		return "", mxerr.BadJSON("Unknown preset %q", preset)
	}
	if req.Visibility != "" && req.Visibility != "public" && req.Visibility != "private" {
		return "", mxerr.BadJSON("visibility must be public or private")
	}
	// Checked before anything is written: a refusal must leave no room.
	for _, st := range req.InitialState {
		if err := checkStateContent(st.Type, st.Content); err != nil && !req.copiedState {
			return "", err
		}
	}
	if len(req.PowerLevelContentOverride) > 0 && !req.copiedState {
		override, _ := json.Marshal(req.PowerLevelContentOverride)
		if err := checkStateContent("m.room.power_levels", override); err != nil {
			return "", err
		}
	}
	for _, inv := range req.Invite {
		if _, _, err := id.UserID(inv).Parse(); err != nil {
			return "", mxerr.InvalidParam("Invalid user ID in invite: %q", inv)
		}
	}
	// additional lists the v12 creators besides the room's creator: those
	// the client named, and the invitees of a trusted private chat.
	var additional []string
	if version.PrivilegedRoomCreators() && !req.copiedState {
		extra, err := parseAdditionalCreators(req.CreationContent["additional_creators"])
		if err != nil {
			return "", err
		}
		creators := map[string]bool{req.Creator: true}
		for _, c := range extra {
			creators[c] = true
		}
		additional = extra
		if preset == "trusted_private_chat" {
			for _, inv := range req.Invite {
				if !creators[inv] {
					additional = append(additional, inv)
				}
				creators[inv] = true
			}
		}
		if users, ok := req.PowerLevelContentOverride["users"]; ok {
			if err := checkCreatorsNotListed(mustJSON(map[string]json.RawMessage{"users": users}), creators); err != nil {
				return "", err
			}
		}
	}
	if err := s.queryUnknownInvitees(ctx, req.Invite); err != nil {
		return "", err
	}
	var alias string
	if req.RoomAliasName != "" {
		if strings.ContainsAny(req.RoomAliasName, ":# \t\n") {
			return "", mxerr.New("M_INVALID_PARAM", "room_alias_name may not contain ':', '#' or whitespace")
		}
		alias = "#" + req.RoomAliasName + ":" + s.serverName
		if _, _, err := s.db.ResolveAlias(ctx, alias); err == nil {
			return "", mxerr.New("M_ROOM_IN_USE", "Room alias already taken")
		}
	}

	creator := s.userProfileContent(ctx, req.Creator)
	create := map[string]any{}
	for k, v := range req.CreationContent {
		create[k] = v
	}
	create["room_version"] = string(version)
	if version.CreatorInContent() {
		create["creator"] = req.Creator
	} else {
		delete(create, "creator")
	}
	if len(additional) > 0 {
		create["additional_creators"] = additional
	}

	r := &room{loaded: true}
	r.view.Store(&roomView{version: version, creator: req.Creator, state: storage.StateMap{}, members: map[string]string{}})
	if !version.RoomIDIsCreateEventID() {
		r.id = "!" + randomID(18) + ":" + s.serverName
	}
	// Nobody else can see the room before it is registered below; the
	// lock is for the writes that follow.
	if err := s.writer.lock(ctx, r); err != nil {
		return "", err
	}
	ts := s.createTS()
	hook := func(p *pdu.PDU) {
		p.OriginServerTS = ts
		if version.RoomIDIsCreateEventID() {
			p.RoomID = ""
		}
	}
	createEv, err := s.sendLocked(ctx, r, SendRequest{Sender: req.Creator, Type: "m.room.create", StateKey: ptr(""), Content: mustJSON(create)}, hook)
	if err != nil {
		s.writer.unlock(r)
		return "", err
	}
	r.id = createEv.RoomID
	s.mu.Lock()
	s.roomsByID[r.id] = r
	s.versions.Store(r.id, version)
	s.mu.Unlock()
	sent := []*Event{createEv}
	defer func() {
		s.writer.unlock(r)
		for _, ev := range sent {
			s.publish(ev)
		}
	}()
	send := func(typ, stateKey string, content any) error {
		ev, err := s.sendLocked(ctx, r, SendRequest{RoomID: r.id, Sender: req.Creator, Type: typ, StateKey: &stateKey, Content: mustJSON(content)}, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		sent = append(sent, ev)
		return nil
	}

	creator["membership"] = "join"
	if err := send("m.room.member", req.Creator, creator); err != nil {
		return "", err
	}

	pl := defaultPowerLevels(version, req.Creator)
	if preset == "trusted_private_chat" && !version.PrivilegedRoomCreators() {
		users := pl["users"].(map[string]any)
		for _, inv := range req.Invite {
			users[inv] = 100
		}
	}
	for k, v := range req.PowerLevelContentOverride {
		pl[k] = v
	}
	if err := send("m.room.power_levels", "", pl); err != nil {
		return "", err
	}
	if alias != "" {
		if err := send("m.room.canonical_alias", "", map[string]any{"alias": alias}); err != nil {
			return "", err
		}
	}

	initial := map[storage.StateKey]json.RawMessage{}
	var order []storage.StateKey
	set := func(typ, key string, content json.RawMessage) {
		k := storage.StateKey{Type: typ, StateKey: key}
		if _, ok := initial[k]; !ok {
			order = append(order, k)
		}
		initial[k] = content
	}
	switch preset {
	case "public_chat":
		set("m.room.join_rules", "", mustJSON(map[string]any{"join_rule": "public"}))
		set("m.room.history_visibility", "", mustJSON(map[string]any{"history_visibility": "shared"}))
		set("m.room.guest_access", "", mustJSON(map[string]any{"guest_access": "forbidden"}))
	default:
		set("m.room.join_rules", "", mustJSON(map[string]any{"join_rule": "invite"}))
		set("m.room.history_visibility", "", mustJSON(map[string]any{"history_visibility": "shared"}))
		set("m.room.guest_access", "", mustJSON(map[string]any{"guest_access": "can_join"}))
	}
	for _, st := range req.InitialState {
		if st.Type == "" {
			return "", mxerr.BadJSON("initial_state event without type")
		}
		if st.Type == "m.room.create" || st.Type == "m.room.member" || st.Type == "m.room.power_levels" {
			return "", mxerr.BadJSON("initial_state may not contain %s", st.Type)
		}
		set(st.Type, st.StateKey, st.Content)
	}
	if req.Name != nil {
		set("m.room.name", "", mustJSON(map[string]any{"name": *req.Name}))
	}
	if req.Topic != nil {
		set("m.room.topic", "", mustJSON(map[string]any{
			"topic":   *req.Topic,
			"m.topic": map[string]any{"m.text": []map[string]any{{"mimetype": "text/plain", "body": *req.Topic}}},
		}))
	}
	for _, k := range order {
		if err := send(k.Type, k.StateKey, initial[k]); err != nil {
			return "", err
		}
	}
	for _, inv := range req.Invite {
		// An invitee who blocks invites is left out; the room is still
		// created (spec: invite permission).
		if id.UserID(inv).Homeserver() == s.serverName {
			blocked, err := s.InvitesBlocked(ctx, inv)
			if err != nil {
				return "", err
			}
			if blocked {
				continue
			}
		}
		content := s.userProfileContent(ctx, inv)
		content["membership"] = "invite"
		if req.IsDirect {
			content["is_direct"] = true
		}
		if err := send("m.room.member", inv, content); err != nil {
			return "", err
		}
	}
	if alias != "" {
		if err := s.db.CreateAlias(ctx, alias, r.id, req.Creator); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return "", mxerr.New("M_ROOM_IN_USE", "Room alias already taken")
			}
			return "", err
		}
	}
	if req.Visibility == "public" {
		if err := s.db.SetRoomPublished(ctx, r.id, true); err != nil {
			return "", err
		}
	}
	return r.id, nil
}

func defaultPowerLevels(version id.RoomVersion, creator string) map[string]any {
	users := map[string]any{}
	if !version.PrivilegedRoomCreators() {
		users[creator] = 100
	}
	events := map[string]any{
		"m.room.name":               50,
		"m.room.power_levels":       100,
		"m.room.history_visibility": 100,
		"m.room.canonical_alias":    50,
		"m.room.avatar":             50,
		"m.room.tombstone":          100,
		"m.room.server_acl":         100,
		"m.room.encryption":         100,
	}
	if version.PrivilegedRoomCreators() {
		events["m.room.tombstone"] = 150
	}
	return map[string]any{
		"users": users, "users_default": 0, "events": events, "events_default": 0, "state_default": 50,
		"ban": 50, "kick": 50, "redact": 50, "invite": 0, "notifications": map[string]any{"room": 50},
	}
}

// userProfileContent returns a member event content skeleton with the
// user's current profile.
func (s *Service) userProfileContent(ctx context.Context, userID string) map[string]any {
	out := map[string]any{}
	if u, err := s.db.GetUser(ctx, userID); err == nil {
		if u.DisplayName != "" {
			out["displayname"] = u.DisplayName
		}
		if u.AvatarURL != "" {
			out["avatar_url"] = u.AvatarURL
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("marshal of server-built value: %w", err))
	}
	return b
}

// queryUnknownInvitees gives the application services owning unknown
// local invitees the chance to create them before the room is, as an
// invite on its own does; a service that does not answer fails the
// request before anything is created.
func (s *Service) queryUnknownInvitees(ctx context.Context, invite []string) error {
	if s.QueryUnknownUser == nil {
		return nil
	}
	for _, inv := range invite {
		if id.UserID(inv).Homeserver() != s.serverName {
			continue
		}
		if _, err := s.db.GetUser(ctx, inv); !errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if _, err := s.QueryUnknownUser(ctx, inv); err != nil {
			return err
		}
	}
	return nil
}
