package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axon-matrix/axon/internal/accountdata"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Room key backup (server-side storage of encrypted megolm sessions).

// BackupVersionInfo is a backup version as clients see it.
type BackupVersionInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int             `json:"count"`
	Etag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// BackupVersionRequest is the body of POST and PUT /room_keys/version.
type BackupVersionRequest struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   string          `json:"version"`
}

func (r *BackupVersionRequest) check() error {
	if r.Algorithm == "" {
		return mxerr.MissingParam("algorithm is required")
	}
	if _, err := parseObject(r.AuthData); err != nil {
		return mxerr.BadJSON("auth_data must be an object")
	}
	return nil
}

func noVersion(version string) error {
	if version == "" {
		return mxerr.NotFound("No current backup version")
	}
	return mxerr.NotFound("Unknown backup version %s", version)
}

// CreateBackup creates a new backup version, which becomes the current one.
func (s *Service) CreateBackup(ctx context.Context, user string, req BackupVersionRequest) (string, error) {
	if err := req.check(); err != nil {
		return "", err
	}
	v, err := s.db.CreateBackupVersion(ctx, user, req.Algorithm, req.AuthData)
	if err != nil {
		return "", fmt.Errorf("create backup: %w", err)
	}
	return v, nil
}

// Backup returns a backup version ("" for the current one).
func (s *Service) Backup(ctx context.Context, user, version string) (*BackupVersionInfo, error) {
	b, err := s.db.GetBackupVersion(ctx, user, version)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, noVersion(version)
	}
	if err != nil {
		return nil, fmt.Errorf("get backup: %w", err)
	}
	return &BackupVersionInfo{Algorithm: b.Algorithm, AuthData: b.AuthData, Count: b.Count, Etag: b.Etag, Version: b.Version}, nil
}

// UpdateBackup replaces a version's auth_data; the algorithm cannot change.
func (s *Service) UpdateBackup(ctx context.Context, user, version string, req BackupVersionRequest) error {
	if err := req.check(); err != nil {
		return err
	}
	if req.Version != "" && req.Version != version {
		return mxerr.InvalidParam("version in the body does not match the path")
	}
	cur, err := s.Backup(ctx, user, version)
	if err != nil {
		return err
	}
	if cur.Algorithm != req.Algorithm {
		return mxerr.InvalidParam("The algorithm of a backup version cannot change")
	}
	if err := s.db.UpdateBackupVersion(ctx, user, version, req.AuthData); errors.Is(err, storage.ErrNotFound) {
		return noVersion(version)
	} else if err != nil {
		return fmt.Errorf("update backup: %w", err)
	}
	return nil
}

// DeleteBackup deletes a version and its keys.
func (s *Service) DeleteBackup(ctx context.Context, user, version string) error {
	if err := s.db.DeleteBackupVersion(ctx, user, version); errors.Is(err, storage.ErrNotFound) {
		return noVersion(version)
	} else if err != nil {
		return fmt.Errorf("delete backup: %w", err)
	}
	return nil
}

// KeyBackupData is one backed-up session as clients send and receive it.
type KeyBackupData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// RoomKeyBackup is the sessions of one room.
type RoomKeyBackup struct {
	Sessions map[string]KeyBackupData `json:"sessions"`
}

// KeysBackup is the sessions of every room.
type KeysBackup struct {
	Rooms map[string]RoomKeyBackup `json:"rooms"`
}

// BackupCounts is the answer to a change of backed-up keys.
type BackupCounts struct {
	Etag  string `json:"etag"`
	Count int    `json:"count"`
}

// checkBackupRoom refuses what cannot be a room ID: keys may be backed up
// for rooms this server does not know, but not under garbage names.
func checkBackupRoom(roomID string) error {
	if !accountdata.ValidRoomID(roomID) {
		return mxerr.InvalidParam("%q is not a valid room ID", roomID)
	}
	return nil
}

// PutBackupKeys stores sessions into the current version; per session the
// server keeps the better of the stored and the uploaded copy.
func (s *Service) PutBackupKeys(ctx context.Context, user, version string, keys KeysBackup) (*BackupCounts, error) {
	if version == "" {
		return nil, mxerr.MissingParam("version is required")
	}
	var rows []storage.BackupKey
	for roomID, room := range keys.Rooms {
		if err := checkBackupRoom(roomID); err != nil {
			return nil, err
		}
		for sessionID, k := range room.Sessions {
			if k.FirstMessageIndex == nil || k.ForwardedCount == nil || k.IsVerified == nil {
				return nil, mxerr.MissingParam("first_message_index, forwarded_count and is_verified are required")
			}
			if _, err := parseObject(k.SessionData); err != nil {
				return nil, mxerr.BadJSON("session_data must be an object")
			}
			rows = append(rows, storage.BackupKey{RoomID: roomID, SessionID: sessionID, FirstMessageIndex: *k.FirstMessageIndex,
				ForwardedCount: *k.ForwardedCount, IsVerified: *k.IsVerified, SessionData: k.SessionData})
		}
	}
	etag, count, err := s.db.PutBackupKeys(ctx, user, version, rows)
	var wrong *storage.ErrWrongBackupVersion
	switch {
	case errors.As(err, &wrong):
		e := mxerr.New("M_WRONG_ROOM_KEYS_VERSION", "Backup version %s is not the current one", version).WithStatus(403)
		e.Extra = map[string]any{"current_version": wrong.Current}
		return nil, e
	case errors.Is(err, storage.ErrNotFound):
		return nil, noVersion(version)
	case err != nil:
		return nil, fmt.Errorf("put backup keys: %w", err)
	}
	return &BackupCounts{Etag: etag, Count: count}, nil
}

// BackupKeys returns the stored sessions of a version, of one room
// (roomID) or of one session (roomID and sessionID).
func (s *Service) BackupKeys(ctx context.Context, user, version, roomID, sessionID string) (*KeysBackup, error) {
	if version == "" {
		return nil, mxerr.MissingParam("version is required")
	}
	if roomID != "" {
		if err := checkBackupRoom(roomID); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.BackupKeys(ctx, user, version, roomID, sessionID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, noVersion(version)
	}
	if err != nil {
		return nil, fmt.Errorf("get backup keys: %w", err)
	}
	out := &KeysBackup{Rooms: map[string]RoomKeyBackup{}}
	for _, r := range rows {
		room, ok := out.Rooms[r.RoomID]
		if !ok {
			room = RoomKeyBackup{Sessions: map[string]KeyBackupData{}}
			out.Rooms[r.RoomID] = room
		}
		room.Sessions[r.SessionID] = KeyBackupData{FirstMessageIndex: &r.FirstMessageIndex, ForwardedCount: &r.ForwardedCount,
			IsVerified: &r.IsVerified, SessionData: r.SessionData}
	}
	return out, nil
}

// DeleteBackupKeys deletes sessions of a version (all, a room's, or one).
func (s *Service) DeleteBackupKeys(ctx context.Context, user, version, roomID, sessionID string) (*BackupCounts, error) {
	if version == "" {
		return nil, mxerr.MissingParam("version is required")
	}
	if roomID != "" {
		if err := checkBackupRoom(roomID); err != nil {
			return nil, err
		}
	}
	etag, count, err := s.db.DeleteBackupKeys(ctx, user, version, roomID, sessionID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, noVersion(version)
	}
	if err != nil {
		return nil, fmt.Errorf("delete backup keys: %w", err)
	}
	return &BackupCounts{Etag: etag, Count: count}, nil
}
