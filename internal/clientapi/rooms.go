package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/axon-matrix/axon/internal/filter"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
	"github.com/axon-matrix/axon/internal/threepid"
)

func viewer(r *http.Request) rooms.Viewer {
	c := httpapi.CallerOf(r)
	return rooms.Viewer{UserID: c.UserID, DeviceID: c.DeviceID}
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Visibility                string                     `json:"visibility"`
		RoomAliasName             string                     `json:"room_alias_name"`
		Name                      *string                    `json:"name"`
		Topic                     *string                    `json:"topic"`
		Invite                    []string                   `json:"invite"`
		RoomVersion               string                     `json:"room_version"`
		CreationContent           map[string]json.RawMessage `json:"creation_content"`
		InitialState              []rooms.StateEvent         `json:"initial_state"`
		Preset                    string                     `json:"preset"`
		IsDirect                  bool                       `json:"is_direct"`
		PowerLevelContentOverride map[string]json.RawMessage `json:"power_level_content_override"`
		Invite3PID                []rooms.ThirdPartyInvite   `json:"invite_3pid"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.RoomAliasName != "" && a.AppServices != nil {
		// An alias in an application service's exclusive namespace is
		// that service's to create, here as through PUT /directory/room.
		alias := "#" + body.RoomAliasName + ":" + a.Cfg.ServerName
		if err := a.AppServices.CheckAliasOwner(alias, httpapi.CallerOf(r).AppService); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	roomID, err := a.Rooms.CreateRoom(r.Context(), rooms.CreateRequest{
		Creator: httpapi.CallerOf(r).UserID, Visibility: body.Visibility, RoomAliasName: body.RoomAliasName,
		Name: body.Name, Topic: body.Topic, Invite: body.Invite, RoomVersion: body.RoomVersion,
		CreationContent: body.CreationContent, InitialState: body.InitialState, Preset: body.Preset,
		IsDirect: body.IsDirect, PowerLevelContentOverride: body.PowerLevelContentOverride, Invite3PID: body.Invite3PID,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

type reasonBody struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason"`
}

func decodeReason(r *http.Request, needUser bool) (reasonBody, error) {
	var b reasonBody
	if err := httpapi.DecodeJSON(r, &b); err != nil {
		return b, err
	}
	if needUser && b.UserID == "" {
		return b, mxerr.MissingParam("user_id is required")
	}
	return b, nil
}

func (a *API) joinRoom(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("roomIdOrAlias")
	if target == "" {
		target = r.PathValue("roomId")
	}
	var b struct {
		Reason string `json:"reason"`
		// third_party_signed accepts an invite by email or phone number,
		// which this server never issues (it trusts no identity server),
		// so there is nothing for it to match; it is decoded so that a
		// malformed one is refused.
		ThirdPartySigned *struct {
			Sender     string                       `json:"sender"`
			MXID       string                       `json:"mxid"`
			Token      string                       `json:"token"`
			Signatures map[string]map[string]string `json:"signatures"`
		} `json:"third_party_signed"`
	}
	raw, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// The body's other keys go into the member event (as other servers
	// do, and sytest expects); the service drops the ones it sets itself.
	var content map[string]json.RawMessage
	if err := httpapi.DecodeBytes(raw, &b); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := httpapi.DecodeBytes(raw, &content); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	join := a.Rooms.Join
	if httpapi.CallerOf(r).IsGuest {
		join = a.Rooms.GuestJoin
	}
	roomID, err := join(r.Context(), rooms.JoinRequest{Room: target, User: httpapi.CallerOf(r).UserID, Reason: b.Reason, Content: content})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

func (a *API) knockRoom(w http.ResponseWriter, r *http.Request) {
	b, err := decodeReason(r, false)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	roomID, err := a.Rooms.Knock(r.Context(), r.PathValue("roomIdOrAlias"), httpapi.CallerOf(r).UserID, b.Reason)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

// memberAction runs a membership change that takes {user_id, reason}.
func (a *API) memberAction(w http.ResponseWriter, r *http.Request, needUser bool,
	do func(ctx context.Context, roomID, sender string, b reasonBody) error) {
	b, err := decodeReason(r, needUser)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if err := do(r.Context(), r.PathValue("roomId"), httpapi.CallerOf(r).UserID, b); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) inviteUser(w http.ResponseWriter, r *http.Request) {
	var b struct {
		reasonBody
		IDServer      string `json:"id_server"`
		IDAccessToken string `json:"id_access_token"`
		Medium        string `json:"medium"`
		Address       string `json:"address"`
	}
	if err := httpapi.DecodeJSON(r, &b); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var err error
	switch {
	case b.UserID != "":
		err = a.Rooms.Invite(r.Context(), r.PathValue("roomId"), httpapi.CallerOf(r).UserID, b.UserID, b.Reason, false)
	case b.IDServer != "" || b.Medium != "" || b.Address != "":
		err = a.Threepids.Invite(r.Context(), threepid.InviteRequest{IDServer: b.IDServer, IDAccessToken: b.IDAccessToken,
			Medium: b.Medium, Address: b.Address})
	default:
		err = mxerr.MissingParam("user_id is required")
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) leaveRoom(w http.ResponseWriter, r *http.Request) {
	a.memberAction(w, r, false, func(ctx context.Context, roomID, sender string, b reasonBody) error {
		return a.Rooms.Leave(ctx, roomID, sender, b.Reason)
	})
}

func (a *API) kickUser(w http.ResponseWriter, r *http.Request) {
	a.memberAction(w, r, true, func(ctx context.Context, roomID, sender string, b reasonBody) error {
		return a.Rooms.Kick(ctx, roomID, sender, b.UserID, b.Reason)
	})
}

func (a *API) banUser(w http.ResponseWriter, r *http.Request) {
	a.memberAction(w, r, true, func(ctx context.Context, roomID, sender string, b reasonBody) error {
		return a.Rooms.Ban(ctx, roomID, sender, b.UserID, b.Reason)
	})
}

func (a *API) unbanUser(w http.ResponseWriter, r *http.Request) {
	a.memberAction(w, r, true, func(ctx context.Context, roomID, sender string, b reasonBody) error {
		return a.Rooms.Unban(ctx, roomID, sender, b.UserID, b.Reason)
	})
}

func (a *API) forgetRoom(w http.ResponseWriter, r *http.Request) {
	if err := a.Rooms.Forget(r.Context(), r.PathValue("roomId"), httpapi.CallerOf(r).UserID); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request) {
	ids, err := a.Rooms.JoinedRooms(r.Context(), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"joined_rooms": ids})
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request) {
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c := httpapi.CallerOf(r)
	ts, err := massagedTS(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ev, err := a.Rooms.Send(r.Context(), rooms.SendRequest{
		RoomID: r.PathValue("roomId"), Sender: c.UserID, Type: r.PathValue("eventType"), Content: body,
		TxnDevice: c.DeviceID, TxnID: r.PathValue("txnId"), OriginTS: ts,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"event_id": ev.EventID})
}

func (a *API) putState(w http.ResponseWriter, r *http.Request) {
	body, err := httpapi.ReadJSON(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	stateKey := r.PathValue("stateKey")
	ts, err := massagedTS(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ev, err := a.Rooms.Send(r.Context(), rooms.SendRequest{
		RoomID: r.PathValue("roomId"), Sender: httpapi.CallerOf(r).UserID, Type: r.PathValue("eventType"),
		StateKey: &stateKey, Content: body, OriginTS: ts,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"event_id": ev.EventID})
}

func (a *API) getAllState(w http.ResponseWriter, r *http.Request) {
	roomID := r.PathValue("roomId")
	state, _, err := a.Rooms.ReadableState(r.Context(), roomID, httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ids := make([]string, 0, len(state))
	for _, v := range state {
		ids = append(ids, v)
	}
	evs, err := a.Rooms.Events(r.Context(), ids)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].StreamPos < evs[j].StreamPos })
	httpapi.WriteJSON(w, http.StatusOK, a.Rooms.FormatAll(r.Context(), evs, viewer(r), rooms.FormatOpts{NoAggregations: true}))
}

func (a *API) getState(w http.ResponseWriter, r *http.Request) {
	roomID := r.PathValue("roomId")
	format := r.URL.Query().Get("format")
	if format != "" && format != "content" && format != "event" {
		httpapi.WriteError(w, r, mxerr.InvalidParam("format must be content or event"))
		return
	}
	state, _, err := a.Rooms.ReadableState(r.Context(), roomID, httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	evID, ok := state[storage.StateKey{Type: r.PathValue("eventType"), StateKey: r.PathValue("stateKey")}]
	if !ok {
		httpapi.WriteError(w, r, mxerr.NotFound("Event not found"))
		return
	}
	ev, err := a.Rooms.Event(r.Context(), evID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ce := a.Rooms.Format(r.Context(), ev, viewer(r), rooms.FormatOpts{NoAggregations: true})
	if format == "event" {
		httpapi.WriteJSON(w, http.StatusOK, ce)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ce.Content)
}

func (a *API) redactEvent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c := httpapi.CallerOf(r)
	ev, err := a.Rooms.Redact(r.Context(), r.PathValue("roomId"), c.UserID, r.PathValue("eventId"), body.Reason, c.DeviceID, r.PathValue("txnId"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"event_id": ev.EventID})
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := a.Rooms.VisibleEvent(r.Context(), r.PathValue("roomId"), r.PathValue("eventId"), httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.Rooms.Format(r.Context(), ev, viewer(r), rooms.FormatOpts{}))
}

func (a *API) getMembers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.MembersRequest{RoomID: r.PathValue("roomId"), User: httpapi.CallerOf(r).UserID,
		Membership: q.Get("membership"), NotMembership: q.Get("not_membership")}
	var err error
	if req.At, err = optionalPosition(q.Get("at")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	evs, err := a.Rooms.Members(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"chunk": a.Rooms.FormatAll(r.Context(), evs, viewer(r), rooms.FormatOpts{NoAggregations: true})})
}

func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	roomID := r.PathValue("roomId")
	ok, err := a.Rooms.CanReadRoom(ctx, roomID, httpapi.CallerOf(r).UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if !ok {
		httpapi.WriteError(w, r, mxerr.Forbidden("You are not in this room"))
		return
	}
	state, err := a.Rooms.CurrentState(ctx, roomID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	evs, err := a.Rooms.MemberEvents(ctx, state)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	joined := map[string]any{}
	for _, ev := range evs {
		var c struct {
			Membership  string  `json:"membership"`
			DisplayName *string `json:"displayname"`
			AvatarURL   *string `json:"avatar_url"`
		}
		json.Unmarshal(ev.PDU.Content, &c)
		if c.Membership == "join" {
			joined[*ev.StateKey] = map[string]any{"display_name": c.DisplayName, "avatar_url": c.AvatarURL}
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"joined": joined})
}

func parseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, mxerr.InvalidParam("limit must be a non-negative integer")
	}
	if n > max {
		n = max
	}
	return n, nil
}

func (a *API) getMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.MessagesRequest{RoomID: r.PathValue("roomId"), User: httpapi.CallerOf(r).UserID, Backward: true}
	switch q.Get("dir") {
	case "", "b":
	case "f":
		req.Backward = false
	default:
		httpapi.WriteError(w, r, mxerr.InvalidParam("dir must be b or f"))
		return
	}
	var err error
	if req.Limit, err = parseLimit(q.Get("limit"), 10, 1000); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if fs := q.Get("filter"); fs != "" {
		if req.Filter, err = filter.ParseRoomEventFilter([]byte(fs)); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	if f := q.Get("from"); f != "" {
		tok, err := sync.ParseToken(f)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		req.From = &tok.Pos
	}
	if t := q.Get("to"); t != "" {
		tok, err := sync.ParseToken(t)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		req.To = tok.Pos
	}
	page, err := a.Rooms.Messages(r.Context(), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v := viewer(r)
	resp := map[string]any{
		"start": sync.Token{Pos: page.Start}.String(),
		"chunk": a.Rooms.FormatAll(r.Context(), page.Events, v, rooms.FormatOpts{}),
	}
	if page.HasEnd {
		resp["end"] = sync.Token{Pos: page.End}.String()
	}
	if page.Members != nil {
		resp["state"] = a.Rooms.FormatAll(r.Context(), page.Members, v, rooms.FormatOpts{NoAggregations: true})
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) getContext(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.URL.Query().Get("limit"), 10, 100)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var f *filter.RoomEventFilter
	if fs := r.URL.Query().Get("filter"); fs != "" {
		if f, err = filter.ParseRoomEventFilter([]byte(fs)); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	ctx := r.Context()
	c, err := a.Rooms.Context(ctx, r.PathValue("roomId"), r.PathValue("eventId"), httpapi.CallerOf(r).UserID, limit, f)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v := viewer(r)
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"event":         a.Rooms.Format(ctx, c.Event, v, rooms.FormatOpts{}),
		"events_before": a.Rooms.FormatAll(ctx, c.Before, v, rooms.FormatOpts{}),
		"events_after":  a.Rooms.FormatAll(ctx, c.After, v, rooms.FormatOpts{}),
		"start":         sync.Token{Pos: c.Start}.String(),
		"end":           sync.Token{Pos: c.End}.String(),
		"state":         a.Rooms.FormatAll(ctx, c.State, v, rooms.FormatOpts{NoAggregations: true}),
	})
}

func (a *API) upgradeRoom(w http.ResponseWriter, r *http.Request) {
	var body struct {
		NewVersion         string   `json:"new_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.NewVersion == "" {
		httpapi.WriteError(w, r, mxerr.MissingParam("new_version is required"))
		return
	}
	newRoom, err := a.Rooms.Upgrade(r.Context(), rooms.UpgradeRequest{
		RoomID: r.PathValue("roomId"), Sender: httpapi.CallerOf(r).UserID, NewVersion: body.NewVersion, AdditionalCreators: body.AdditionalCreators,
	})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"replacement_room": newRoom})
}
