package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/axon-matrix/axon/internal/rooms"
)

// FollowUpgrades makes a user's push rules for a room follow it into its
// replacement: when a local user joins a room whose m.room.create names a
// predecessor they are joined to, their rules for the old room are copied
// to the new one (what other servers do; the spec's upgrade section is
// silent). This covers /upgrade, where the upgrader joins the new room as
// its creator and the others join later, and upgrades made by hand with
// createRoom's predecessor.
func (r *Rules) FollowUpgrades(rs *rooms.Service, log *slog.Logger) {
	rs.Subscribe(func(ev *rooms.Event) {
		if ev.Type != "m.room.member" || ev.StateKey == nil || *ev.StateKey != ev.Sender ||
			rooms.MembershipOf(ev) != "join" || !strings.HasSuffix(ev.Sender, ":"+rs.ServerName()) {
			return
		}
		ctx := context.Background()
		if ev.Replaces != "" {
			// A profile change of a member is not a join.
			if prev, err := rs.Event(ctx, ev.Replaces); err == nil && rooms.MembershipOf(prev) == "join" {
				return
			}
		}
		create, err := rs.CurrentStateEvent(ctx, ev.RoomID, "m.room.create", "")
		if err != nil || create == nil {
			return
		}
		var c struct {
			Predecessor *struct {
				RoomID string `json:"room_id"`
			} `json:"predecessor"`
		}
		if json.Unmarshal(create.PDU.Content, &c) != nil || c.Predecessor == nil || c.Predecessor.RoomID == "" {
			return
		}
		// Anyone may name any room as the predecessor of a room they
		// create: only a member of the old room has rules worth carrying.
		if m, err := rs.Membership(ctx, c.Predecessor.RoomID, ev.Sender); err != nil || m != "join" {
			return
		}
		if err := r.CopyRoomRules(ctx, ev.Sender, c.Predecessor.RoomID, ev.RoomID); err != nil {
			log.Warn("copying push rules to an upgraded room", "user", ev.Sender, "room", ev.RoomID, "err", err)
		}
	})
}

// CopyRoomRules gives newRoom a copy of each of the user's own rules for
// oldRoom: the room rule named after it, and override and underride rules
// whose conditions match its room_id (their IDs must name the room, so the
// copy gets an ID of its own). Each copy goes right after its original, and
// a rule the new room already has is left alone.
func (r *Rules) CopyRoomRules(ctx context.Context, user, oldRoom, newRoom string) error {
	copies := func(rs *Ruleset) bool {
		changed := false
		for _, kind := range []string{"override", "room", "underride"} {
			list := rs.kind(kind)
			for i := 0; i < len(*list); i++ {
				nr, ok := copyForRoom((*list)[i], kind, oldRoom, newRoom)
				if !ok || hasRule(*list, nr.RuleID) {
					continue
				}
				*list = append((*list)[:i+1:i+1], append([]Rule{nr}, (*list)[i+1:]...)...)
				i++
				changed = true
			}
		}
		return changed
	}
	// Most joins have nothing to copy: look before writing.
	current, err := r.Get(ctx, user)
	if err != nil {
		return err
	}
	if !copies(current.clone()) {
		return nil
	}
	return r.update(ctx, user, func(rs *Ruleset) error {
		copies(rs)
		return nil
	})
}

// copyForRoom returns rule rewritten for newRoom, if it is a user rule
// about oldRoom.
func copyForRoom(rule Rule, kind, oldRoom, newRoom string) (Rule, bool) {
	if rule.Default {
		return Rule{}, false
	}
	if kind == "room" {
		if rule.RuleID != oldRoom {
			return Rule{}, false
		}
		rule.RuleID = newRoom
		return rule, true
	}
	if !strings.Contains(rule.RuleID, oldRoom) {
		return Rule{}, false
	}
	conds := make([]Condition, len(rule.Conditions))
	matched := false
	for i, c := range rule.Conditions {
		if c.Kind == "event_match" && c.Key == "room_id" && c.Pattern != nil && *c.Pattern == oldRoom {
			c.Pattern = &newRoom
			matched = true
		}
		conds[i] = c
	}
	if !matched {
		return Rule{}, false
	}
	rule.Conditions = conds
	rule.RuleID = strings.ReplaceAll(rule.RuleID, oldRoom, newRoom)
	return rule, true
}

func hasRule(list []Rule, ruleID string) bool {
	for _, x := range list {
		if x.RuleID == ruleID {
			return true
		}
	}
	return false
}
