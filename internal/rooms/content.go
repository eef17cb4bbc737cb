package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// maxIDBytes is the spec's size limit on an event's type and state key.
const maxIDBytes = 255

// checkTypeAndKey applies the spec's size limits to an event's type and
// state key; the type must also be printable UTF-8, since every client
// shows or matches it.
func checkTypeAndKey(req SendRequest) error {
	if req.Type == "" || len(req.Type) > maxIDBytes || !utf8.ValidString(req.Type) || strings.ContainsFunc(req.Type, unicode.IsControl) {
		return mxerr.InvalidParam("Event types must be 1 to %d bytes of printable UTF-8", maxIDBytes)
	}
	if req.StateKey != nil && len(*req.StateKey) > maxIDBytes {
		return mxerr.InvalidParam("State keys must be at most %d bytes", maxIDBytes)
	}
	return nil
}

// stateFields are the typed fields of the spec's state events (a.b is
// field b of object a, a.* every value of the map a, a[] every item of
// the array a): clients read them as the spec types them, so a number for
// a room name or a string for the list of server ACLs would break every
// client showing the room. Power levels are checked here too, before the
// authorisation rules: those refuse a wrongly typed level as a forbidden
// change (403), where the request is malformed (400). Membership and the
// create event are left to the authorisation rules. Values outside the
// spec's enums are allowed, since later versions add to them.
var stateFields = map[string]map[string]string{
	"m.room.name": {"name": "string"},
	// m.topic is left alone: clients built before spec v1.15 send it as
	// the array that MSC3765 first proposed, and their topics must work.
	"m.room.topic":              {"topic": "string"},
	"m.room.avatar":             {"url": "string", "info": "object", "info.w": "number", "info.h": "number", "info.size": "number", "info.mimetype": "string", "info.thumbnail_url": "string", "info.thumbnail_info": "object"},
	"m.room.join_rules":         {"join_rule": "string", "allow": "array", "allow[]": "object"},
	"m.room.history_visibility": {"history_visibility": "string"},
	"m.room.guest_access":       {"guest_access": "string"},
	"m.room.canonical_alias":    {"alias": "string", "alt_aliases": "array", "alt_aliases[]": "string"},
	"m.room.encryption":         {"algorithm": "string", "rotation_period_ms": "number", "rotation_period_msgs": "number"},
	"m.room.server_acl":         {"allow": "array", "allow[]": "string", "deny": "array", "deny[]": "string", "allow_ip_literals": "boolean"},
	"m.room.tombstone":          {"replacement_room": "string", "body": "string"},
	"m.room.pinned_events":      {"pinned": "array", "pinned[]": "string"},
	"m.room.third_party_invite": {"display_name": "string", "key_validity_url": "string", "public_key": "string", "public_keys": "array", "public_keys[]": "object"},
	"m.room.policy":             {"via": "string", "public_keys": "object", "public_keys.*": "string"},
	"m.room.image_pack":         {"images": "object", "images.*": "object", "pack": "object", "pack.display_name": "string", "pack.avatar_url": "string", "pack.attribution": "string", "pack.usage": "array"},
	"m.space.child":             {"via": "array", "via[]": "string", "order": "string", "suggested": "boolean"},
	"m.space.parent":            {"via": "array", "via[]": "string", "canonical": "boolean"},
	"m.room.power_levels": {
		"ban": "integer", "invite": "integer", "kick": "integer", "redact": "integer",
		"events": "object", "events.*": "integer", "events_default": "integer", "state_default": "integer",
		"users": "object", "users.*": "integer", "users_default": "integer",
		"notifications": "object", "notifications.*": "integer",
	},
	"m.policy.rule.user":   policyRuleFields,
	"m.policy.rule.room":   policyRuleFields,
	"m.policy.rule.server": policyRuleFields,
}

var policyRuleFields = map[string]string{"entity": "string", "reason": "string", "recommendation": "string"}

// checkStateContent refuses state event content whose known fields have
// the wrong JSON type (M_BAD_JSON).
func checkStateContent(typ string, content []byte) error {
	fields, ok := stateFields[typ]
	if !ok {
		return nil
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(content, &c); err != nil {
		return nil // not an object: normaliseContent says so
	}
	for name, want := range fields {
		if m, ok := strings.CutSuffix(name, ".*"); ok {
			var obj map[string]json.RawMessage
			if json.Unmarshal(c[m], &obj) != nil {
				continue
			}
			for k, v := range obj {
				if got := jsonType(v); !typeMatches(want, got, v) {
					return mxerr.BadJSON("%s: %s.%s must be of type %s, not %s", typ, m, k, want, got)
				}
			}
			continue
		}
		if a, ok := strings.CutSuffix(name, "[]"); ok {
			var items []json.RawMessage
			if json.Unmarshal(c[a], &items) != nil {
				continue
			}
			for _, v := range items {
				if got := jsonType(v); !typeMatches(want, got, v) {
					return mxerr.BadJSON("%s: the items of %s must be of type %s, not %s", typ, a, want, got)
				}
			}
			continue
		}
		v, ok := c[name]
		if !ok {
			// A field of an object field. Field names may hold dots
			// themselves, so the longest prefix that is a field wins.
			parent, sub := "", ""
			for p := range fields {
				if strings.HasPrefix(name, p+".") && len(p) > len(parent) {
					parent, sub = p, name[len(p)+1:]
				}
			}
			var obj map[string]json.RawMessage
			if parent == "" || json.Unmarshal(c[parent], &obj) != nil {
				continue
			}
			if v, ok = obj[sub]; !ok {
				continue
			}
		}
		// null stands for unset, as clients clearing a field send it.
		if got := jsonType(v); !typeMatches(want, got, v) && got != "null" {
			return mxerr.BadJSON("%s: %s must be of type %s, not %s", typ, name, want, got)
		}
	}
	return nil
}

// typeMatches reports whether a value of JSON type got (its text v) is of
// the field type want: a JSON type, or "integer" for a number without
// fraction or exponent. Strings of digits, which room versions before 10
// took as power levels, are refused: every version this server creates
// and joins (10 and later) requires integers.
func typeMatches(want, got string, v json.RawMessage) bool {
	if want != "integer" {
		return got == want
	}
	return got == "number" && !strings.ContainsAny(string(v), ".eE")
}

func jsonType(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "null":
		return "null"
	case strings.HasPrefix(s, `"`):
		return "string"
	case strings.HasPrefix(s, "{"):
		return "object"
	case strings.HasPrefix(s, "["):
		return "array"
	case s == "true" || s == "false":
		return "boolean"
	}
	return "number"
}

// checkCanonicalAlias applies the spec's rules to the aliases an
// m.room.canonical_alias event adds: each must be an alias (M_INVALID_PARAM)
// and, if it is one of this server's, point to the room (M_BAD_ALIAS).
// Aliases already in the room's current event are left alone, so that
// removing one is possible after another was deleted from the directory.
func (s *Service) checkCanonicalAlias(ctx context.Context, roomID string, content []byte) error {
	added, err := canonicalAliases(content)
	if err != nil {
		return nil // the type check has answered
	}
	cur, err := s.CurrentStateEvent(ctx, roomID, "m.room.canonical_alias", "")
	if err != nil {
		return err
	}
	if cur != nil {
		old, _ := canonicalAliases(cur.PDU.Content)
		for a := range old {
			delete(added, a)
		}
	}
	for a := range added {
		local, domain, ok := strings.Cut(strings.TrimPrefix(a, "#"), ":")
		if !strings.HasPrefix(a, "#") || !ok || local == "" || domain == "" {
			return mxerr.InvalidParam("%q is not a room alias", a)
		}
		if domain != s.serverName {
			continue // other servers' aliases would need a federation query
		}
		target, _, err := s.db.ResolveAlias(ctx, a)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && target != roomID) {
			return mxerr.New("M_BAD_ALIAS", "The alias %q does not point to this room", a)
		}
		if err != nil {
			return fmt.Errorf("resolve alias: %w", err)
		}
	}
	return nil
}

func canonicalAliases(content []byte) (map[string]bool, error) {
	var c struct {
		Alias      string   `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if c.Alias != "" {
		out[c.Alias] = true
	}
	for _, a := range c.AltAliases {
		out[a] = true
	}
	return out, nil
}
