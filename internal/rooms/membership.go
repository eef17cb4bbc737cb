package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// ResolveRoom turns a room ID or alias into a room ID.
func (s *Service) ResolveRoom(ctx context.Context, roomIDOrAlias string) (string, error) {
	if len(roomIDOrAlias) > 0 && roomIDOrAlias[0] == '#' {
		roomID, _, err := s.db.ResolveAlias(ctx, roomIDOrAlias)
		if errors.Is(err, storage.ErrNotFound) && s.QueryUnknownAlias != nil && aliasServer(roomIDOrAlias) == s.serverName {
			created, qerr := s.QueryUnknownAlias(ctx, roomIDOrAlias)
			if qerr != nil {
				return "", qerr
			}
			if created {
				// An application service owning the alias has just made it.
				roomID, _, err = s.db.ResolveAlias(ctx, roomIDOrAlias)
			}
		}
		if errors.Is(err, storage.ErrNotFound) {
			return "", mxerr.NotFound("Room alias %s not found", roomIDOrAlias)
		}
		return roomID, err
	}
	if len(roomIDOrAlias) == 0 || roomIDOrAlias[0] != '!' {
		return "", mxerr.InvalidParam("Not a room ID or alias: %q", roomIDOrAlias)
	}
	return roomIDOrAlias, nil
}

// aliasServer is the server name of a room alias.
func aliasServer(alias string) string {
	_, server, _ := strings.Cut(alias, ":")
	return server
}

// Membership returns a user's current membership in a room ("" if none).
func (s *Service) Membership(ctx context.Context, roomID, userID string) (string, error) {
	ev, err := s.CurrentStateEvent(ctx, roomID, "m.room.member", userID)
	if err != nil || ev == nil {
		return "", err
	}
	return membershipOf(ev), nil
}

// It is read on every visibility check and formatted event, so it picks
// the one field instead of decoding the content.
func membershipOf(ev *Event) string {
	m := gjson.GetBytes(ev.PDU.Content, "membership")
	if m.Type != gjson.String {
		return ""
	}
	return m.Str
}

// MembershipOf returns the membership in a member event's content.
func MembershipOf(ev *Event) string { return membershipOf(ev) }

// MemberChange is a membership action on a room.
type MemberChange struct {
	RoomID   string
	Sender   string
	Target   string
	Reason   string
	IsDirect bool
	// TxnDevice/TxnID are unused for membership; kept zero.
}

func (s *Service) sendMember(ctx context.Context, roomID, sender, target, membership, reason string, extra map[string]any) (*Event, error) {
	content := map[string]any{"membership": membership}
	if membership == "join" || membership == "invite" || membership == "knock" {
		for k, v := range s.userProfileContent(ctx, target) {
			content[k] = v
		}
	}
	for k, v := range extra {
		content[k] = v
	}
	if reason != "" {
		content["reason"] = reason
	}
	return s.Send(ctx, SendRequest{RoomID: roomID, Sender: sender, Type: "m.room.member", StateKey: &target, Content: mustJSON(content),
		memberChecked: true})
}

// JoinRequest is a join through the join endpoints.
type JoinRequest struct {
	Room   string // ID or alias
	User   string
	Reason string
	// Content is the rest of the request body, whose keys go into the
	// member event (a per-room display name, custom keys), except those
	// serverSetMemberKey refuses.
	Content map[string]json.RawMessage
}

// serverSetMemberKey reports the member event keys a join request must not
// set: the server derives them (membership from the endpoint,
// join_authorised_via_users_server from the room's join rules, third-party
// invites from an invite event), or they are request parameters rather
// than content (reason is copied on its own, third_party_signed never is).
func serverSetMemberKey(k string) bool {
	switch k {
	case "membership", "join_authorised_via_users_server", "third_party_invite", "third_party_signed", "reason":
		return true
	}
	return false
}

// Join joins user to a room (by ID or alias). A repeated join is a no-op
// that returns the room ID, as clients expect.
func (s *Service) Join(ctx context.Context, req JoinRequest) (string, error) {
	roomID, err := s.ResolveRoom(ctx, req.Room)
	if err != nil {
		return "", err
	}
	user := req.User
	cur, err := s.Membership(ctx, roomID, user)
	if err != nil {
		return "", err
	}
	if cur == "join" {
		return roomID, nil
	}
	extra := map[string]any{}
	for k, v := range req.Content {
		if !serverSetMemberKey(k) {
			extra[k] = v
		}
	}
	if cur != "invite" {
		if via, err := s.restrictedAuthoriser(ctx, roomID, user); err != nil {
			return "", err
		} else if via != "" {
			extra["join_authorised_via_users_server"] = via
		}
	}
	if _, err := s.sendMember(ctx, roomID, user, user, "join", req.Reason, extra); err != nil {
		return "", err
	}
	return roomID, nil
}

// restrictedAuthoriser picks a local member able to invite, when the room is
// restricted and the user is joined to one of the allowed rooms.
func (s *Service) restrictedAuthoriser(ctx context.Context, roomID, user string) (string, error) {
	jr, err := s.CurrentStateEvent(ctx, roomID, "m.room.join_rules", "")
	if err != nil || jr == nil {
		return "", err
	}
	var c event.JoinRulesEventContent
	if err := json.Unmarshal(jr.PDU.Content, &c); err != nil {
		return "", nil
	}
	if c.JoinRule != event.JoinRuleRestricted && c.JoinRule != event.JoinRuleKnockRestricted {
		return "", nil
	}
	allowed := false
	for _, a := range c.Allow {
		if a.Type != event.JoinRuleAllowRoomMembership {
			continue
		}
		if m, err := s.Membership(ctx, string(a.RoomID), user); err == nil && m == "join" {
			allowed = true
			break
		}
	}
	if !allowed {
		return "", nil
	}
	members, err := s.db.RoomMembers(ctx, roomID, "join")
	if err != nil {
		return "", err
	}
	pl, err := s.PowerLevels(ctx, roomID)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if id.UserID(m).Homeserver() == s.serverName && pl.UserLevel(m) >= pl.Invite {
			return m, nil
		}
	}
	return "", nil
}

// Invite invites target to a room.
func (s *Service) Invite(ctx context.Context, roomID, sender, target, reason string, isDirect bool) error {
	if err := s.checkInviteTarget(ctx, target); err != nil {
		return err
	}
	cur, err := s.Membership(ctx, roomID, target)
	if err != nil {
		return err
	}
	if cur == "invite" {
		return nil
	}
	if cur == "join" {
		return mxerr.Forbidden("%s is already in the room", target)
	}
	if cur == "ban" {
		return mxerr.Forbidden("%s is banned from the room", target)
	}
	extra := map[string]any{}
	if isDirect {
		extra["is_direct"] = true
	}
	_, err = s.sendMember(ctx, roomID, sender, target, "invite", reason, extra)
	return err
}

// checkInviteTarget refuses invites to users who cannot receive one: a
// malformed ID, an unknown or deactivated local user, a remote user.
func (s *Service) checkInviteTarget(ctx context.Context, target string) error {
	if _, _, err := id.UserID(target).Parse(); err != nil {
		return mxerr.InvalidParam("Invalid user ID %q", target)
	}
	if id.UserID(target).Homeserver() == s.serverName {
		u, err := s.db.GetUser(ctx, target)
		if errors.Is(err, storage.ErrNotFound) && s.QueryUnknownUser != nil {
			created, qerr := s.QueryUnknownUser(ctx, target)
			if qerr != nil {
				return qerr
			}
			if created {
				// An application service owning the name has just created it.
				u, err = s.db.GetUser(ctx, target)
			}
		}
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
			return mxerr.NotFound("User %s does not exist", target)
		} else if err != nil {
			return err
		}
	} else {
		return mxerr.Forbidden("Inviting users of other servers needs federation, which this server does not run yet")
	}
	return nil
}

// Leave leaves (or rejects an invite to, or retracts a knock on) a room.
func (s *Service) Leave(ctx context.Context, roomID, user, reason string) error {
	cur, err := s.Membership(ctx, roomID, user)
	if err != nil {
		return err
	}
	if cur == "leave" || cur == "" || cur == "ban" {
		if cur == "" {
			return mxerr.Forbidden("You are not in this room")
		}
		return nil
	}
	if err := s.checkNoticeInviteRejection(ctx, roomID, user, cur); err != nil {
		return err
	}
	_, err = s.sendMember(ctx, roomID, user, user, "leave", reason, nil)
	return err
}

// Kick removes another user.
func (s *Service) Kick(ctx context.Context, roomID, sender, target, reason string) error {
	cur, err := s.Membership(ctx, roomID, target)
	if err != nil {
		return err
	}
	if cur != "join" && cur != "invite" && cur != "knock" {
		return mxerr.Forbidden("%s is not in the room", target)
	}
	_, err = s.sendMember(ctx, roomID, sender, target, "leave", reason, nil)
	return err
}

// Ban bans a user.
func (s *Service) Ban(ctx context.Context, roomID, sender, target, reason string) error {
	if _, _, err := id.UserID(target).Parse(); err != nil {
		return mxerr.InvalidParam("Invalid user ID %q", target)
	}
	_, err := s.sendMember(ctx, roomID, sender, target, "ban", reason, nil)
	return err
}

// Unban lifts a ban.
func (s *Service) Unban(ctx context.Context, roomID, sender, target, reason string) error {
	cur, err := s.Membership(ctx, roomID, target)
	if err != nil {
		return err
	}
	if cur != "ban" {
		return mxerr.Forbidden("%s is not banned", target)
	}
	_, err = s.sendMember(ctx, roomID, sender, target, "leave", reason, nil)
	return err
}

// Knock asks to join a knockable room.
func (s *Service) Knock(ctx context.Context, roomIDOrAlias, user, reason string) (string, error) {
	roomID, err := s.ResolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return "", err
	}
	_, err = s.sendMember(ctx, roomID, user, user, "knock", reason, nil)
	return roomID, err
}

// Levels is the parsed power levels of a room, with creators resolved.
type Levels struct {
	content  event.PowerLevelsEventContent
	creators map[string]bool
	Invite   int
	Redact   int
}

// UserLevel is a user's power; creators of v12 rooms outrank everyone.
func (l *Levels) UserLevel(user string) int {
	if l.creators[user] {
		return math.MaxInt
	}
	return l.content.GetUserLevel(id.UserID(user))
}

// EventLevel is the power needed to send an event type.
func (l *Levels) EventLevel(typ string, state bool) int {
	class := event.MessageEventType
	if state {
		class = event.StateEventType
	}
	return l.content.GetEventLevel(event.Type{Type: typ, Class: class})
}

// NotificationLevel is the power needed for a notification key such as "room".
func (l *Levels) NotificationLevel(key string) int {
	if key == "room" {
		return l.content.Notifications.Room()
	}
	return 50
}

// PowerLevels returns the room's current power levels.
func (s *Service) PowerLevels(ctx context.Context, roomID string) (*Levels, error) {
	v, err := s.readRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	plID := v.state[storage.StateKey{Type: "m.room.power_levels"}]
	createID := v.state[storage.StateKey{Type: "m.room.create"}]
	version, creator := v.version, v.creator
	l := &Levels{creators: map[string]bool{}}
	if plID != "" {
		ev, err := s.Event(ctx, plID)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(ev.PDU.Content, &l.content); err != nil {
			return nil, err
		}
	} else {
		// Without power levels the creator has 100 and everyone else 0.
		l.content.Users = map[id.UserID]int{id.UserID(creator): 100}
	}
	if version.PrivilegedRoomCreators() {
		l.creators[creator] = true
		if createID != "" {
			if ev, err := s.Event(ctx, createID); err == nil {
				var c struct {
					Additional []string `json:"additional_creators"`
				}
				json.Unmarshal(ev.PDU.Content, &c)
				for _, a := range c.Additional {
					l.creators[a] = true
				}
			}
		}
	}
	l.Invite = l.content.Invite()
	l.Redact = l.content.Redact()
	return l, nil
}

// checkRedact allows sender to redact target: their own event, or anyone's
// with the room's redact power.
func (s *Service) checkRedact(ctx context.Context, roomID, sender, target string) error {
	ev, err := s.Event(ctx, target)
	if err != nil || ev.RoomID != roomID {
		return mxerr.NotFound("Event not found")
	}
	if ev.Sender != sender {
		pl, err := s.PowerLevels(ctx, roomID)
		if err != nil {
			return err
		}
		if pl.UserLevel(sender) < pl.Redact {
			return mxerr.Forbidden("You may not redact other users' events")
		}
	}
	return nil
}

// redactionFromSend turns an m.room.redaction sent with PUT /send (spec
// v1.18: allowed in every room version) into a redaction like Redact's:
// the target from content.redacts, checked the same way, and in rooms
// before v11 moved to the event's top level.
func (s *Service) redactionFromSend(ctx context.Context, req *SendRequest) error {
	var content map[string]json.RawMessage
	if err := json.Unmarshal(req.Content, &content); err != nil {
		return mxerr.BadJSON("Content is not a JSON object")
	}
	var target string
	if err := json.Unmarshal(content["redacts"], &target); err != nil || target == "" {
		return mxerr.BadJSON("m.room.redaction needs redacts: the ID of the event to redact")
	}
	if err := s.checkRedact(ctx, req.RoomID, req.Sender, target); err != nil {
		return err
	}
	version, err := s.RoomVersion(ctx, req.RoomID)
	if err != nil {
		return err
	}
	if !version.RedactsInContent() {
		delete(content, "redacts")
		req.Content = mustJSON(content)
	}
	req.Redacts = target
	return nil
}

// Redact redacts an event: allowed for its sender and for users with the
// room's redact power.
func (s *Service) Redact(ctx context.Context, roomID, sender, target, reason, txnDevice, txnID string) (*Event, error) {
	if err := s.checkRedact(ctx, roomID, sender, target); err != nil {
		return nil, err
	}
	version, err := s.RoomVersion(ctx, roomID)
	if err != nil {
		return nil, err
	}
	content := map[string]any{}
	if reason != "" {
		content["reason"] = reason
	}
	if version.RedactsInContent() {
		content["redacts"] = target
	}
	return s.Send(ctx, SendRequest{RoomID: roomID, Sender: sender, Type: "m.room.redaction", Content: mustJSON(content),
		Redacts: target, TxnDevice: txnDevice, TxnID: txnID})
}
