package push

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// NotifyPath is the only path a push gateway URL may have.
const NotifyPath = "/_matrix/push/v1/notify"

// PusherRequest is the body of POST /pushers/set.
type PusherRequest struct {
	Kind              *string         `json:"kind"`
	AppID             string          `json:"app_id"`
	PushKey           string          `json:"pushkey"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
	Append            bool            `json:"append"`
	// KindSet tells an explicit "kind": null (delete) from a missing kind.
	KindSet bool `json:"-"`
}

// PusherJSON is a pusher as GET /pushers shows it.
type PusherJSON struct {
	PushKey           string          `json:"pushkey"`
	Kind              string          `json:"kind"`
	AppID             string          `json:"app_id"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
}

// pusherData is the part of a pusher's data the server reads.
type pusherData struct {
	URL    string `json:"url"`
	Format string `json:"format"`
}

// Pushers returns the user's pushers.
func (s *Service) Pushers(ctx context.Context, user string) ([]PusherJSON, error) {
	ps, err := s.db.Pushers(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("pushers: %w", err)
	}
	out := make([]PusherJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, PusherJSON{PushKey: p.PushKey, Kind: p.Kind, AppID: p.AppID, AppDisplayName: p.AppDisplayName,
			DeviceDisplayName: p.DeviceDisplayName, ProfileTag: p.ProfileTag, Lang: p.Lang, Data: json.RawMessage(p.Data)})
	}
	return out, nil
}

// SetPusher validates and applies a POST /pushers/set for user's device.
func (s *Service) SetPusher(ctx context.Context, user, deviceID string, req PusherRequest) error {
	if !req.KindSet {
		return mxerr.MissingParam("Missing parameter: kind")
	}
	var missing []string
	if req.AppID == "" {
		missing = append(missing, "app_id")
	}
	if req.PushKey == "" {
		missing = append(missing, "pushkey")
	}
	if req.Kind == nil {
		if len(missing) > 0 {
			return mxerr.MissingParam("Missing parameters: %s", strings.Join(missing, ", "))
		}
		if _, err := s.db.DeletePusher(ctx, user, req.AppID, req.PushKey); err != nil {
			return fmt.Errorf("delete pusher: %w", err)
		}
		s.reloadUser(ctx, user)
		return nil
	}
	if req.AppDisplayName == "" {
		missing = append(missing, "app_display_name")
	}
	if req.DeviceDisplayName == "" {
		missing = append(missing, "device_display_name")
	}
	if req.Lang == "" {
		missing = append(missing, "lang")
	}
	if len(req.Data) == 0 || string(req.Data) == "null" {
		missing = append(missing, "data")
	}
	if len(missing) > 0 {
		return mxerr.MissingParam("Missing parameters: %s", strings.Join(missing, ", "))
	}
	if len(req.AppID) > 64 {
		return mxerr.InvalidParam("app_id must be at most 64 characters")
	}
	if len(req.PushKey) > 512 {
		return mxerr.InvalidParam("pushkey must be at most 512 bytes")
	}
	if *req.Kind != "http" {
		return mxerr.InvalidParam("Unsupported pusher kind %q: this server delivers http pushers only", *req.Kind)
	}
	var data map[string]any
	if err := json.Unmarshal(req.Data, &data); err != nil || data == nil {
		return mxerr.BadJSON("data must be an object")
	}
	var d pusherData
	_ = json.Unmarshal(req.Data, &d)
	if _, ok := data["url"].(string); !ok {
		return mxerr.MissingParam("data.url is required for http pushers")
	}
	if f, ok := data["format"]; ok && f != "event_id_only" {
		return mxerr.InvalidParam("Unknown data.format %v: the only format is event_id_only", f)
	}
	if err := s.checkURL(d.URL); err != nil {
		return err
	}
	compact, _ := json.Marshal(data)
	p := storage.Pusher{UserID: user, AppID: req.AppID, PushKey: req.PushKey, Kind: *req.Kind,
		AppDisplayName: req.AppDisplayName, DeviceDisplayName: req.DeviceDisplayName, ProfileTag: req.ProfileTag,
		Lang: req.Lang, Data: string(compact), DeviceID: deviceID, CreatedTS: s.now().UnixMilli()}
	if err := s.db.SetPusher(ctx, p, req.Append); err != nil {
		return fmt.Errorf("set pusher: %w", err)
	}
	s.reloadAll(ctx)
	return nil
}

// DevicesDeleted removes the pushers of the user's devices that are gone
// (logged out or deleted): a phone that signed out must stop getting pushes.
func (s *Service) DevicesDeleted(ctx context.Context, user string) {
	if err := s.db.DeleteOrphanPushers(ctx, user); err != nil {
		s.log.Error("push: remove pushers of deleted devices", "user", user, "err", err)
		return
	}
	s.reloadUser(ctx, user)
}

// checkURL enforces the spec's gateway URL shape and refuses addresses
// inside the server's own network unless configured otherwise.
func (s *Service) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return mxerr.InvalidParam("data.url is not a valid URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && s.cfg.AllowHTTP:
	default:
		return mxerr.InvalidParam("data.url must be an https:// URL (the server's admin can allow http:// with push.allow_http)")
	}
	if u.Path != NotifyPath || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return mxerr.InvalidParam("data.url must be https://<gateway>%s", NotifyPath)
	}
	// Checked again on the resolved address of every connection (see
	// SetRootCAs); this catches literal addresses at registration, with
	// an error the client can show.
	if !s.outbound.AllowsHost(u.Hostname()) {
		return mxerr.InvalidParam("data.url points to a private or loopback address (the server's admin can allow " +
			"such gateways with push.allow_private_addresses, or their networks with outbound.allowed_networks)")
	}
	return nil
}
