package clientapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request) {
	caller := httpapi.CallerOf(r)
	var body struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := httpapi.DecodeJSON(r, &body); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if body.Messages == nil {
		httpapi.WriteError(w, r, mxerr.MissingParam("messages is required"))
		return
	}
	ctx := r.Context()
	suffix := ":" + a.Cfg.ServerName
	var targets []storage.ToDeviceTarget
	var wake []string
	users := make([]string, 0, len(body.Messages))
	for u := range body.Messages {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, user := range users {
		if !strings.HasPrefix(user, "@") || !strings.Contains(user, ":") {
			httpapi.WriteError(w, r, mxerr.InvalidParam("%q is not a user ID", user))
			return
		}
		for dev, content := range body.Messages[user] {
			if c := bytes.TrimSpace(content); len(c) == 0 || c[0] != '{' {
				httpapi.WriteError(w, r, mxerr.BadJSON("Message content for %s %s must be an object", user, dev))
				return
			}
		}
		if !strings.HasSuffix(user, suffix) {
			// Remote users need federation's to-device EDUs, not wired yet.
			a.Log.Debug("dropping to-device message for remote user", "user", user, "type", r.PathValue("eventType"))
			continue
		}
		devices, err := a.DB.ListDevices(ctx, user)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		known := make(map[string]bool, len(devices))
		for _, d := range devices {
			known[d.DeviceID] = true
		}
		queued := false
		for dev, content := range body.Messages[user] {
			if dev != "*" && !known[dev] {
				continue // unknown device: nothing could ever collect it
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, content); err != nil {
				httpapi.WriteError(w, r, mxerr.BadJSON("Message content is not valid JSON"))
				return
			}
			targets = append(targets, storage.ToDeviceTarget{UserID: user, DeviceID: dev, Content: buf.Bytes()})
			queued = true
		}
		if queued {
			wake = append(wake, user)
		}
	}
	// Queue even an empty set, so the transaction ID is recorded.
	if err := a.DB.QueueToDevice(ctx, caller.UserID, caller.DeviceID, r.PathValue("txnId"), r.PathValue("eventType"), targets); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	a.Sync.Notifier.Wake(wake...)
	a.AppServices.Kick() // services receive their users' to-device messages
	httpapi.WriteJSON(w, http.StatusOK, struct{}{})
}
