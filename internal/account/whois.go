package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// WhoisConnection is one connection of a session: the last address and
// time the device was seen at. Axon does not record user agents.
type WhoisConnection struct {
	IP       string `json:"ip,omitempty"`
	LastSeen int64  `json:"last_seen,omitempty"`
}

// WhoisSession is one login of a device; a device holds one at a time.
type WhoisSession struct {
	Connections []WhoisConnection `json:"connections"`
}

// WhoisDevice is a device's sessions.
type WhoisDevice struct {
	Sessions []WhoisSession `json:"sessions"`
}

// WhoisInfo is the answer of GET /admin/whois/{userId}.
type WhoisInfo struct {
	UserID  string                 `json:"user_id"`
	Devices map[string]WhoisDevice `json:"devices"`
}

// Whois describes a local user's devices and where they were last seen.
// Only server admins and the user themself may ask; that is checked before
// the user is looked up, so the answer reveals nothing to others.
func (s *Service) Whois(ctx context.Context, caller string, callerIsAdmin bool, target string) (*WhoisInfo, error) {
	if caller != target && !callerIsAdmin {
		return nil, mxerr.Forbidden("Only server admins may look up other users")
	}
	u, err := s.db.GetUser(ctx, target)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("User not found")
	}
	if err != nil {
		return nil, fmt.Errorf("whois: %w", err)
	}
	ds, err := s.db.ListDevices(ctx, u.UserID)
	if err != nil {
		return nil, fmt.Errorf("whois: %w", err)
	}
	info := &WhoisInfo{UserID: u.UserID, Devices: make(map[string]WhoisDevice, len(ds))}
	for _, d := range ds {
		conns := []WhoisConnection{}
		if d.LastSeenTS != 0 || d.LastSeenIP != "" {
			conns = append(conns, WhoisConnection{IP: d.LastSeenIP, LastSeen: d.LastSeenTS})
		}
		info.Devices[d.DeviceID] = WhoisDevice{Sessions: []WhoisSession{{Connections: conns}}}
	}
	return info, nil
}
