// Package directory is the room directory (aliases and the published room
// list) and the user directory.
package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service answers directory requests.
type Service struct {
	db         *storage.DB
	rooms      *rooms.Service
	serverName string
	log        *slog.Logger

	// AppServices, if set, reserves aliases for application services,
	// resolves unknown aliases in their namespaces and holds their
	// networks' room lists.
	AppServices AppServices
}

// AppServices is what the directory needs from application services;
// *appservice.Service implements it.
type AppServices interface {
	// CheckAliasOwner refuses (M_EXCLUSIVE) an alias reserved by another
	// service than asID ("" for ordinary users), or outside asID's
	// namespace. A service that passes manages the alias without being
	// in the room or having created it.
	CheckAliasOwner(alias, asID string) error
	// QueryAlias asks the services owning alias to create it; the error
	// is the client's when a service did not answer.
	QueryAlias(ctx context.Context, alias string) (bool, error)
	// NetworkRooms lists the rooms of a third-party instance, or of all.
	NetworkRooms(ctx context.Context, instanceID string, all bool) ([]string, error)
}

// New creates the service.
func New(db *storage.DB, rs *rooms.Service, serverName string, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{db: db, rooms: rs, serverName: serverName, log: log}
}

// Actor is the user making a request.
type Actor struct {
	UserID string
	Admin  bool
	// AppService is the application service acting (as UserID), if any.
	AppService string
}

// MaxAliasBytes is the spec's limit on a whole room alias.
const MaxAliasBytes = 255

// checkAlias validates an alias's grammar and reports whether it is ours.
func (s *Service) checkAlias(alias string) (local bool, err error) {
	if len(alias) > MaxAliasBytes || !utf8.ValidString(alias) || !strings.HasPrefix(alias, "#") {
		return false, mxerr.InvalidParam("Room alias invalid")
	}
	localpart, server, ok := strings.Cut(alias[1:], ":")
	if !ok || server == "" || strings.ContainsRune(localpart, 0) || strings.ContainsAny(server, "\x00/ ") {
		return false, mxerr.InvalidParam("Room alias invalid")
	}
	return server == s.serverName, nil
}

// ResolveAlias returns the room an alias maps to and servers that know it.
func (s *Service) ResolveAlias(ctx context.Context, alias string) (string, []string, error) {
	local, err := s.checkAlias(alias)
	if err != nil {
		return "", nil, err
	}
	if !local {
		// Remote aliases need a federation query, which is not wired yet.
		return "", nil, mxerr.NotFound("Room alias %s not found", alias)
	}
	roomID, _, err := s.db.ResolveAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) && s.AppServices != nil {
		created, qerr := s.AppServices.QueryAlias(ctx, alias)
		if qerr != nil {
			return "", nil, qerr
		}
		if created {
			// A service owning the namespace has just created it.
			roomID, _, err = s.db.ResolveAlias(ctx, alias)
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, mxerr.NotFound("Room alias %s not found", alias)
	}
	if err != nil {
		return "", nil, fmt.Errorf("resolve alias: %w", err)
	}
	servers, err := s.residentServers(ctx, roomID)
	if err != nil {
		return "", nil, err
	}
	return roomID, servers, nil
}

// residentServers lists the servers with joined members, ours first.
func (s *Service) residentServers(ctx context.Context, roomID string) ([]string, error) {
	members, err := s.db.RoomMembers(ctx, roomID, "join")
	if err != nil {
		return nil, fmt.Errorf("room members: %w", err)
	}
	seen := map[string]bool{s.serverName: true}
	var others []string
	for _, m := range members {
		if _, server, ok := strings.Cut(m, ":"); ok && !seen[server] {
			seen[server] = true
			others = append(others, server)
		}
	}
	sort.Strings(others)
	return append([]string{s.serverName}, others...), nil
}

// CreateAlias maps a new local alias to a room the actor is joined to.
func (s *Service) CreateAlias(ctx context.Context, a Actor, alias, roomID string) error {
	local, err := s.checkAlias(alias)
	if err != nil {
		return err
	}
	if !local {
		return mxerr.InvalidParam("Room alias must be on this server (%s)", s.serverName)
	}
	if !strings.HasPrefix(roomID, "!") {
		return mxerr.InvalidParam("room_id must be a room ID")
	}
	if s.AppServices != nil {
		if err := s.AppServices.CheckAliasOwner(alias, a.AppService); err != nil {
			return err
		}
	}
	if _, err := s.db.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room %s not found", roomID)
	} else if err != nil {
		return fmt.Errorf("get room: %w", err)
	}
	if !a.Admin && a.AppService == "" {
		ms, err := s.rooms.Membership(ctx, roomID, a.UserID)
		if err != nil {
			return err
		}
		if ms != "join" {
			return mxerr.Forbidden("You must be in the room to create an alias for it")
		}
	}
	err = s.db.CreateAlias(ctx, alias, roomID, a.UserID)
	if errors.Is(err, storage.ErrExists) {
		return mxerr.Unknown("Room alias %s already exists", alias).WithStatus(http.StatusConflict)
	}
	if err != nil {
		return fmt.Errorf("create alias: %w", err)
	}
	return nil
}

// DeleteAlias removes a local alias. Its creator, server admins and users
// who may change the room's canonical alias may do so. The alias is also
// taken out of the room's m.room.canonical_alias when the actor may send
// it; the deletion stands either way.
func (s *Service) DeleteAlias(ctx context.Context, a Actor, alias string) error {
	local, err := s.checkAlias(alias)
	if err != nil {
		return err
	}
	if !local {
		return mxerr.InvalidParam("Room alias must be on this server (%s)", s.serverName)
	}
	if s.AppServices != nil && !a.Admin {
		if err := s.AppServices.CheckAliasOwner(alias, a.AppService); err != nil {
			return err
		}
	}
	roomID, creator, err := s.db.ResolveAlias(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room alias %s not found", alias)
	}
	if err != nil {
		return fmt.Errorf("resolve alias: %w", err)
	}
	if creator != a.UserID && !a.Admin && a.AppService == "" {
		ok, err := s.canChangeCanonicalAlias(ctx, roomID, a.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return mxerr.Forbidden("You may not delete this alias")
		}
	}
	if err := s.db.DeleteAlias(ctx, alias); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room alias %s not found", alias)
	} else if err != nil {
		return fmt.Errorf("delete alias: %w", err)
	}
	s.dropFromCanonical(ctx, a.UserID, roomID, alias)
	return nil
}

// canChangeCanonicalAlias: joined, with the power to send m.room.canonical_alias.
func (s *Service) canChangeCanonicalAlias(ctx context.Context, roomID, userID string) (bool, error) {
	ms, err := s.rooms.Membership(ctx, roomID, userID)
	if err != nil {
		return false, err
	}
	if ms != "join" {
		return false, nil
	}
	pl, err := s.rooms.PowerLevels(ctx, roomID)
	if err != nil {
		return false, err
	}
	return pl.UserLevel(userID) >= pl.EventLevel("m.room.canonical_alias", true), nil
}

func (s *Service) dropFromCanonical(ctx context.Context, userID, roomID, alias string) {
	ev, err := s.rooms.CurrentStateEvent(ctx, roomID, "m.room.canonical_alias", "")
	if err != nil || ev == nil {
		return
	}
	var content map[string]any
	if json.Unmarshal(ev.PDU.Content, &content) != nil {
		return
	}
	changed := false
	if content["alias"] == alias {
		delete(content, "alias")
		changed = true
	}
	if alts, ok := content["alt_aliases"].([]any); ok {
		kept := make([]any, 0, len(alts))
		for _, v := range alts {
			if v == alias {
				changed = true
				continue
			}
			kept = append(kept, v)
		}
		content["alt_aliases"] = kept
	}
	if !changed {
		return
	}
	b, err := json.Marshal(content)
	if err != nil {
		return
	}
	empty := ""
	if _, err := s.rooms.Send(ctx, rooms.SendRequest{RoomID: roomID, Sender: userID, Type: "m.room.canonical_alias", StateKey: &empty, Content: b}); err != nil {
		s.log.Info("alias deleted but canonical alias left unchanged", "room", roomID, "alias", alias, "err", err)
	}
}

// LocalAliases lists a room's aliases on this server, for its joined
// members (and anyone when the room is world-readable).
func (s *Service) LocalAliases(ctx context.Context, a Actor, roomID string) ([]string, error) {
	if !a.Admin {
		ok, err := s.rooms.CanReadRoom(ctx, roomID, a.UserID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, mxerr.Forbidden("You are not a member of the room")
		}
	} else if _, err := s.rooms.RoomVersion(ctx, roomID); err != nil {
		return nil, err
	}
	aliases, err := s.db.RoomAliases(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("room aliases: %w", err)
	}
	if aliases == nil {
		aliases = []string{}
	}
	return aliases, nil
}

// Visibility is a room's visibility in the published room directory.
func (s *Service) Visibility(ctx context.Context, roomID string) (string, error) {
	r, err := s.db.GetRoom(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.NotFound("Room not found")
	}
	if err != nil {
		return "", fmt.Errorf("get room: %w", err)
	}
	if r.Published {
		return "public", nil
	}
	return "private", nil
}

// SetVisibility publishes or unpublishes a room. Like Synapse, it needs a
// joined member with the power to change the canonical alias, or an admin.
func (s *Service) SetVisibility(ctx context.Context, a Actor, roomID, visibility string) error {
	if visibility != "public" && visibility != "private" {
		return mxerr.InvalidParam("visibility must be public or private")
	}
	if _, err := s.db.GetRoom(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room not found")
	} else if err != nil {
		return fmt.Errorf("get room: %w", err)
	}
	if !a.Admin {
		ok, err := s.canChangeCanonicalAlias(ctx, roomID, a.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return mxerr.Forbidden("You may not change this room's directory visibility")
		}
	}
	if err := s.db.SetRoomPublished(ctx, roomID, visibility == "public"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("set visibility: %w", err)
	}
	return nil
}
