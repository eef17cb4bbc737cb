package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/suspension"
)

// Profile fields Axon stores.
const (
	FieldDisplayName = "displayname"
	FieldAvatarURL   = "avatar_url"
)

// Limits on profile values, as Synapse's, and the spec's bound on the
// whole profile.
const (
	maxDisplayNameLen = 256
	maxAvatarURLLen   = 1000
	maxProfileKeyLen  = 255
	maxProfileBytes   = 64 * 1024
)

// FieldTimeZone is the spec's time zone field (an IANA zone name).
const FieldTimeZone = "m.tz"

// profileKeyRE is the grammar of profile field names (GET/PUT
// /profile/{userId}/{keyName}).
var profileKeyRE = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

// Profile is a user's global profile; empty strings are unset fields.
type Profile struct {
	DisplayName string
	AvatarURL   string
	// Custom holds the other fields (m.tz, namespaced ones) as JSON.
	Custom map[string]json.RawMessage
}

// Fields returns the profile as the JSON object of GET /profile/{userId}.
func (p *Profile) Fields() map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(p.Custom)+2)
	for k, v := range p.Custom {
		out[k] = v
	}
	if p.DisplayName != "" {
		out[FieldDisplayName] = mustJSON(p.DisplayName)
	}
	if p.AvatarURL != "" {
		out[FieldAvatarURL] = mustJSON(p.AvatarURL)
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings are passed
	}
	return b
}

// GetProfile returns a local user's profile, or M_NOT_FOUND for unknown
// users (remote profiles are not fetched over federation).
func (s *Service) GetProfile(ctx context.Context, userID string) (*Profile, error) {
	if !strings.HasPrefix(userID, "@") || !strings.Contains(userID, ":") {
		return nil, mxerr.InvalidParam("Invalid user ID %q", userID)
	}
	if !s.IsLocal(userID) {
		return nil, mxerr.NotFound("Profile not found")
	}
	u, err := s.db.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) && s.QueryUnknownUser != nil {
		created, qerr := s.QueryUnknownUser(ctx, userID)
		if qerr != nil {
			return nil, qerr
		}
		if created {
			u, err = s.db.GetUser(ctx, userID)
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Profile not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get profile: %w", err)
	}
	custom, err := s.db.ProfileFields(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("get profile fields: %w", err)
	}
	return &Profile{DisplayName: u.DisplayName, AvatarURL: u.AvatarURL, Custom: custom}, nil
}

// GetProfileField returns one field, or M_NOT_FOUND when it is unset or
// the user unknown.
func (s *Service) GetProfileField(ctx context.Context, userID, key string) (json.RawMessage, error) {
	if err := checkProfileKey(key); err != nil {
		return nil, err
	}
	p, err := s.GetProfile(ctx, userID)
	if err != nil {
		return nil, err
	}
	v, ok := p.Fields()[key]
	if !ok {
		return nil, mxerr.NotFound("Profile field not found")
	}
	return v, nil
}

func checkProfileKey(key string) error {
	if len(key) > maxProfileKeyLen {
		return mxerr.New("M_KEY_TOO_LARGE", "Profile key may not be longer than %d bytes", maxProfileKeyLen)
	}
	if !profileKeyRE.MatchString(key) {
		return mxerr.InvalidParam("Invalid profile key %q", key)
	}
	return nil
}

// SetProfileField sets (value, a JSON value, non-nil) or removes (value
// nil) a profile field of target on behalf of caller. A new display name
// or avatar is announced in every room target has joined; other fields
// live only in the profile.
func (s *Service) SetProfileField(ctx context.Context, rm Rooms, caller, target, key string, value json.RawMessage) error {
	if err := checkProfileKey(key); err != nil {
		return err
	}
	if caller != target {
		return mxerr.Forbidden("You may only change your own profile")
	}
	if err := suspension.Refuse(ctx, s.db, caller); err != nil {
		return err
	}
	var str *string
	if value != nil {
		// displayname, avatar_url and m.tz are strings; null is refused
		// for every field (the spec lets servers), DELETE removes one.
		var v any
		if err := json.Unmarshal(value, &v); err != nil {
			return mxerr.BadJSON("Invalid JSON value for %s", key)
		}
		if v == nil {
			return mxerr.InvalidParam("%s may not be null; DELETE removes a field", key)
		}
		if key == FieldDisplayName || key == FieldAvatarURL || key == FieldTimeZone {
			sv, ok := v.(string)
			if !ok {
				return mxerr.InvalidParam("%s must be a string", key)
			}
			str = &sv
		}
	}
	var displayName, avatarURL *string
	switch key {
	case FieldDisplayName:
		if str != nil && len(*str) > maxDisplayNameLen {
			return mxerr.InvalidParam("displayname may not be longer than %d bytes", maxDisplayNameLen)
		}
		displayName = orEmpty(str)
	case FieldAvatarURL:
		if str != nil && len(*str) > maxAvatarURLLen {
			return mxerr.InvalidParam("avatar_url may not be longer than %d bytes", maxAvatarURLLen)
		}
		if str != nil && *str != "" && !strings.HasPrefix(*str, "mxc://") {
			return mxerr.InvalidParam("avatar_url must be an mxc:// URI")
		}
		avatarURL = orEmpty(str)
	default:
		return s.setCustomField(ctx, target, key, value)
	}
	if _, err := s.GetProfile(ctx, target); err != nil {
		return err
	}
	if err := s.db.SetProfile(ctx, target, displayName, avatarURL); err != nil {
		return fmt.Errorf("set profile: %w", err)
	}
	if rm != nil {
		// The profile is stored; the announcements must not stop halfway
		// because the client hung up.
		s.propagateProfile(context.WithoutCancel(ctx), rm, target, displayName, avatarURL)
	}
	return nil
}

// setCustomField stores or removes a field other than displayname and
// avatar_url, keeping the whole profile within the spec's 64 KiB.
func (s *Service) setCustomField(ctx context.Context, target, key string, value json.RawMessage) error {
	if _, err := s.GetProfile(ctx, target); err != nil {
		return err
	}
	if value == nil {
		if err := s.db.DeleteProfileField(ctx, target, key); err != nil {
			return fmt.Errorf("delete profile field: %w", err)
		}
		return nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, value); err != nil {
		return mxerr.BadJSON("Invalid JSON value for %s", key)
	}
	err := s.db.SetProfileField(ctx, target, key, compact.Bytes(), maxProfileBytes)
	if errors.Is(err, storage.ErrLimit) {
		return mxerr.New("M_PROFILE_TOO_LARGE", "The profile would exceed %d bytes", maxProfileBytes)
	}
	if err != nil {
		return fmt.Errorf("set profile field: %w", err)
	}
	return nil
}

func orEmpty(v *string) *string {
	if v == nil {
		e := ""
		return &e
	}
	return v
}

// propagateProfile sends a new join event with the changed fields into
// every room the user has joined, keeping the rest of the current member
// content. A failure in one room is logged and does not stop the others:
// the profile itself has changed.
func (s *Service) propagateProfile(ctx context.Context, rm Rooms, userID string, displayName, avatarURL *string) {
	ms, err := s.db.UserMemberships(ctx, userID)
	if err != nil {
		s.log.Error("listing rooms for profile update", "user", userID, "err", err)
		return
	}
	for _, m := range ms {
		if m.Membership != "join" {
			continue
		}
		if err := s.updateMemberEvent(ctx, rm, m.RoomID, userID, displayName, avatarURL); err != nil {
			s.log.Warn("updating profile in room", "user", userID, "room", m.RoomID, "err", err)
		}
	}
}

func (s *Service) updateMemberEvent(ctx context.Context, rm Rooms, roomID, userID string, displayName, avatarURL *string) error {
	cur, err := rm.CurrentStateEvent(ctx, roomID, "m.room.member", userID)
	if err != nil {
		return err
	}
	content := map[string]any{}
	if cur != nil && cur.PDU != nil && len(cur.PDU.Content) > 0 {
		if err := json.Unmarshal(cur.PDU.Content, &content); err != nil {
			return fmt.Errorf("member content: %w", err)
		}
	}
	if m, _ := content["membership"].(string); m != "join" {
		return nil // left meanwhile
	}
	changed := false
	set := func(key string, v *string) {
		if v == nil {
			return
		}
		old, had := content[key]
		if *v == "" {
			if had {
				delete(content, key)
				changed = true
			}
			return
		}
		if !had || old != *v {
			content[key] = *v
			changed = true
		}
	}
	set(FieldDisplayName, displayName)
	set(FieldAvatarURL, avatarURL)
	// Per-event fields of the previous membership change do not carry over.
	for _, k := range []string{"reason", "join_authorised_via_users_server"} {
		if _, ok := content[k]; ok {
			delete(content, k)
		}
	}
	if !changed {
		return nil
	}
	body, err := json.Marshal(content)
	if err != nil {
		return err
	}
	sk := userID
	_, err = rm.Send(ctx, rooms.SendRequest{RoomID: roomID, Sender: userID, Type: "m.room.member", StateKey: &sk, Content: body})
	return err
}
