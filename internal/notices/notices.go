// Package notices sends server notices (the spec's server notices module):
// messages a server admin sends to one user, from a system account, into
// that user's server notices room. The admin API is Synapse's
// (POST/PUT /_synapse/admin/v1/send_server_notice), so existing tools
// work with it.
package notices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Tag is the room tag that identifies the server notices room to clients.
const Tag = "m.server_notice"

// TagSetter sets a room tag of a user (the account data service).
type TagSetter interface {
	SetTag(ctx context.Context, userID, roomID, tag string, body []byte) error
}

// Service sends server notices.
type Service struct {
	cfg        config.ServerNoticesSettings
	serverName string
	sender     string
	db         *storage.DB
	rooms      *rooms.Service
	tags       TagSetter
	log        *slog.Logger

	accounts *account.Service

	// off says why notices cannot be sent ("" when they can); set before
	// serving starts.
	off string
	// mu serialises creating the system account and finding or creating a
	// user's room, so that two notices sent at once do not make two rooms.
	mu          sync.Mutex
	senderReady bool
}

// New returns the service; Start must run before it is used.
func New(cfg config.ServerNoticesSettings, serverName string, db *storage.DB, rs *rooms.Service, tags TagSetter, log *slog.Logger) *Service {
	s := &Service{cfg: cfg, serverName: serverName, sender: "@" + cfg.Localpart + ":" + serverName, db: db, rooms: rs, tags: tags, log: log}
	if !cfg.Enabled {
		s.off = "Server notices are turned off on this server (server_notices.enabled)"
	}
	return s
}

// Sender is the system account notices come from.
func (s *Service) Sender() string { return s.sender }

// Start checks the system account at start-up. It is created with the
// first notice (no account appears until the feature is used), and
// Reserved keeps registration from taking its localpart meanwhile. An
// existing account that can log in is someone's login: notices are then
// turned off (with an error in the log) rather than sent from it, since
// its owner could read every user's notices room.
func (s *Service) Start(ctx context.Context, accounts *account.Service) error {
	s.accounts = accounts
	if s.off != "" {
		return nil
	}
	u, err := s.db.GetUser(ctx, s.sender)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("server notices: %w", err)
	case u.PasswordHash != "" || u.Deactivated:
		s.off = "Server notices are off: server_notices.localpart names an account that can log in or is deactivated"
		s.log.Error("server notices turned off: server_notices.localpart names an existing account that can log in (or is deactivated); choose another localpart", "user", s.sender)
	}
	return nil
}

// Reserved reports whether userID is the system account, which ordinary
// registration may not take while notices are on.
func (s *Service) Reserved(userID string) bool { return s.off == "" && userID == s.sender }

// ensureSender creates the system account on first use. The caller holds
// s.mu.
func (s *Service) ensureSender(ctx context.Context) error {
	if s.senderReady {
		return nil
	}
	_, err := s.db.GetUser(ctx, s.sender)
	if errors.Is(err, storage.ErrNotFound) {
		if _, err := s.accounts.CreateAccount(ctx, account.NewAccount{Localpart: s.cfg.Localpart, DisplayName: s.cfg.DisplayName}); err != nil {
			return fmt.Errorf("server notices: creating %s: %w", s.sender, err)
		}
		s.log.Info("created the server notices account", "user", s.sender)
	} else if err != nil {
		return err
	}
	s.senderReady = true
	return nil
}

// Notice is one notice to send.
type Notice struct {
	UserID   string          `json:"user_id"`
	Content  json.RawMessage `json:"content"`
	Type     string          `json:"type"`      // default m.room.message
	StateKey *string         `json:"state_key"` // set: a state event
}

// Caller is who asks, and the scope of their transaction IDs.
type Caller struct {
	UserID   string
	DeviceID string
	IsAdmin  bool
	TxnID    string // "" for POST, which is not idempotent
}

// Send delivers a notice to its user and returns the event ID: into their
// server notices room, created (and tagged m.server_notice) on the first
// notice, after inviting them back if they left it. A repeated TxnID of
// the same caller returns the first event.
func (s *Service) Send(ctx context.Context, c Caller, n Notice) (string, error) {
	if !c.IsAdmin {
		return "", mxerr.Forbidden("Only server admins may send server notices")
	}
	if s.off != "" {
		return "", mxerr.New("M_UNKNOWN", "%s", s.off).WithStatus(400)
	}
	if n.UserID == "" {
		return "", mxerr.MissingParam("user_id is required")
	}
	if len(n.Content) == 0 || string(n.Content) == "null" {
		return "", mxerr.MissingParam("content is required")
	}
	if n.Type == "" {
		n.Type = "m.room.message"
	}
	if !strings.HasSuffix(n.UserID, ":"+s.serverName) {
		return "", mxerr.InvalidParam("Server notices can only be sent to local users")
	}
	if n.UserID == s.sender {
		return "", mxerr.InvalidParam("The server notices account cannot be sent notices")
	}
	u, err := s.db.GetUser(ctx, n.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.NotFound("Unknown user %s", n.UserID)
	}
	if err != nil {
		return "", err
	}
	if u.Deactivated {
		return "", mxerr.InvalidParam("%s is deactivated", n.UserID)
	}
	roomID, err := s.roomFor(ctx, n.UserID)
	if err != nil {
		return "", err
	}
	req := rooms.SendRequest{RoomID: roomID, Sender: s.sender, Type: n.Type, StateKey: n.StateKey, Content: n.Content}
	if c.TxnID != "" {
		// Transaction IDs are the admin's, scoped to their device as the
		// client API's are; the sender has no devices to collide with.
		req.TxnDevice, req.TxnID = "server-notice:"+c.UserID+"/"+c.DeviceID, c.TxnID
	}
	ev, err := s.rooms.Send(ctx, req)
	if err != nil {
		return "", err
	}
	return ev.EventID, nil
}

// roomFor returns the user's server notices room with the user joined or
// invited: the one recorded for them while the system account is still
// in it, else a new one.
func (s *Service) roomFor(ctx context.Context, user string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureSender(ctx); err != nil {
		return "", err
	}
	roomID, err := s.db.ServerNoticeRoom(ctx, user)
	if err != nil {
		return "", err
	}
	if roomID != "" {
		if m, err := s.rooms.Membership(ctx, roomID, s.sender); err != nil || m != "join" {
			roomID = ""
		}
	}
	if roomID == "" {
		if roomID, err = s.createRoom(ctx, user); err != nil {
			return "", err
		}
	}
	m, err := s.rooms.Membership(ctx, roomID, user)
	if err != nil {
		return "", err
	}
	switch m {
	case "join", "invite":
	case "ban":
		return "", mxerr.Forbidden("%s is banned from their server notices room", user)
	default:
		if err := s.rooms.Invite(ctx, roomID, s.sender, user, "", false); err != nil {
			return "", fmt.Errorf("invite to server notices room: %w", err)
		}
	}
	return roomID, nil
}

// createRoom makes a user's server notices room: private, named, the user
// below the power to send or invite (users_default -10; the sender is its
// creator), tagged m.server_notice for the user, and recorded.
func (s *Service) createRoom(ctx context.Context, user string) (string, error) {
	name := s.cfg.RoomName
	roomID, err := s.rooms.CreateRoom(ctx, rooms.CreateRequest{
		Creator: s.sender, Preset: "private_chat", Name: &name,
		PowerLevelContentOverride: map[string]json.RawMessage{"users_default": json.RawMessage("-10")},
	})
	if err != nil {
		return "", fmt.Errorf("create server notices room: %w", err)
	}
	if err := s.db.SetServerNoticeRoom(ctx, user, roomID); err != nil {
		return "", err
	}
	if err := s.tags.SetTag(ctx, user, roomID, Tag, []byte(`{}`)); err != nil {
		return "", fmt.Errorf("tag server notices room: %w", err)
	}
	s.log.Info("created server notices room", "user", user, "room", roomID)
	return roomID, nil
}
