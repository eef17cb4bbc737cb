package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// ToDevice is one PUT /sendToDevice request: messages[user][device] is the
// content for that device, device "*" meaning all of the user's devices.
type ToDevice struct {
	Sender, SenderDevice string
	TxnID, Type          string
	Messages             map[string]map[string]json.RawMessage
}

// SendToDevice queues the messages of td for the local devices they name,
// in one write that also records the transaction ID, so a retried request
// queues nothing twice. The whole request is checked before anything is
// queued: a bad entry changes nothing. It lives beside the keys because
// to-device messages are how E2EE keys travel between devices.
func (s *Service) SendToDevice(ctx context.Context, td ToDevice) error {
	if td.Messages == nil {
		return mxerr.MissingParam("messages is required")
	}
	users := make([]string, 0, len(td.Messages))
	for u := range td.Messages {
		users = append(users, u)
	}
	sort.Strings(users)
	suffix := ":" + s.serverName
	var targets []storage.ToDeviceTarget
	for _, user := range users {
		if !strings.HasPrefix(user, "@") || !strings.Contains(user, ":") {
			return mxerr.InvalidParam("%q is not a user ID", user)
		}
		compact := make(map[string][]byte, len(td.Messages[user]))
		for dev, content := range td.Messages[user] {
			var buf bytes.Buffer
			if c := bytes.TrimSpace(content); len(c) == 0 || c[0] != '{' || json.Compact(&buf, c) != nil {
				return mxerr.BadJSON("Message content for %s %s must be an object", user, dev)
			}
			compact[dev] = buf.Bytes()
		}
		if !strings.HasSuffix(user, suffix) {
			// Remote users need federation's to-device EDUs, which Axon
			// does not send yet: such messages are dropped.
			continue
		}
		devices, err := s.db.ListDevices(ctx, user)
		if err != nil {
			return fmt.Errorf("list devices of %s: %w", user, err)
		}
		known := make(map[string]bool, len(devices))
		for _, d := range devices {
			known[d.DeviceID] = true
		}
		for dev, content := range compact {
			if dev != "*" && !known[dev] {
				continue // unknown device: nothing could ever collect it
			}
			targets = append(targets, storage.ToDeviceTarget{UserID: user, DeviceID: dev, Content: content})
		}
	}
	// Queue even an empty set, so the transaction ID is recorded.
	if err := s.db.QueueToDevice(ctx, td.Sender, td.SenderDevice, td.TxnID, td.Type, targets); err != nil {
		return fmt.Errorf("queue to-device messages: %w", err)
	}
	// The change feed wakes the recipients' syncs and the application
	// services, which receive their users' to-device messages; targets
	// are grouped by user, as QueueToDevice wants them.
	return nil
}
