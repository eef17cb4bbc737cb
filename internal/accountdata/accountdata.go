// Package accountdata stores per-user configuration: global and per-room
// account data, room tags (kept as the m.tag room account data event) and
// the server-managed types clients may read but not write.
package accountdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/mxid"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service reads and writes account data. Its writes reach syncs and
// caches through the storage change feed.
type Service struct {
	db *storage.DB
}

// New creates the service.
func New(db *storage.DB) *Service {
	return &Service{db: db}
}

// serverManaged are the types the server maintains itself: the spec has
// clients read them as usual but refuses writes with 405 M_BAD_JSON.
var serverManaged = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// MaxTagBytes is the spec's limit on a tag name.
const MaxTagBytes = 255

// ValidRoomID reports whether s looks like a room ID (see mxid.RoomID).
func ValidRoomID(s string) bool { return mxid.RoomID(s) }

// checkTag refuses tag names the spec does not allow (1 to MaxTagBytes
// bytes) and ones no client could show: control characters, invalid UTF-8.
func checkTag(tag string) error {
	if tag == "" || len(tag) > MaxTagBytes || !printable(tag) {
		return mxerr.InvalidParam("Tag names must be 1 to %d bytes of printable UTF-8", MaxTagBytes)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func checkRoom(roomID string) error {
	if roomID != "" && !ValidRoomID(roomID) {
		return mxerr.InvalidParam("%q is not a valid room ID", roomID)
	}
	return nil
}

// Get returns one entry's content; roomID "" is global account data.
func (s *Service) Get(ctx context.Context, userID, roomID, typ string) (json.RawMessage, error) {
	if err := checkRoom(roomID); err != nil {
		return nil, err
	}
	c, err := s.db.GetAccountData(ctx, userID, roomID, typ)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Account data not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get account data: %w", err)
	}
	return c, nil
}

// checkWritable refuses what clients may not write: bad room IDs, types
// that could not be event types, and the server-managed types.
func checkWritable(roomID, typ string) error {
	if err := checkRoom(roomID); err != nil {
		return err
	}
	// Entries reach clients as events in /sync, so their types follow the
	// spec's limit on event types.
	if typ == "" || len(typ) > 255 || !printable(typ) {
		return mxerr.InvalidParam("Account data types must be 1 to 255 bytes of printable UTF-8")
	}
	if serverManaged[typ] {
		return mxerr.BadJSON("Cannot set %s through this API", typ).WithStatus(http.StatusMethodNotAllowed)
	}
	return nil
}

// Put stores an entry a client sent. content must be a JSON object; an
// empty one deletes the entry, as MSC3391 has it, which is also what
// clients meant by it before deletion existed.
func (s *Service) Put(ctx context.Context, userID, roomID, typ string, content []byte) error {
	if err := checkWritable(roomID, typ); err != nil {
		return err
	}
	compact, err := compactObject(content)
	if err != nil {
		return err
	}
	if string(compact) == storage.DeletedAccountData {
		return s.delete(ctx, userID, roomID, typ)
	}
	return s.PutManaged(ctx, userID, roomID, typ, compact)
}

// Delete removes an entry a client set (MSC3391). Its syncs then carry
// the type once with empty content, and reads answer 404. Deleting an
// absent entry succeeds and changes nothing.
func (s *Service) Delete(ctx context.Context, userID, roomID, typ string) error {
	if err := checkWritable(roomID, typ); err != nil {
		return err
	}
	return s.delete(ctx, userID, roomID, typ)
}

// delete is Delete without the checks.
func (s *Service) delete(ctx context.Context, userID, roomID, typ string) error {
	_, err := s.Update(ctx, userID, roomID, typ, func(old []byte) ([]byte, bool, error) {
		return []byte(storage.DeletedAccountData), old != nil, nil
	})
	return err
}

// PutManaged stores an entry without the client-side restrictions; the
// server uses it for the types it manages.
func (s *Service) PutManaged(ctx context.Context, userID, roomID, typ string, content []byte) error {
	if err := s.db.PutAccountData(ctx, userID, roomID, typ, content); err != nil {
		return fmt.Errorf("put account data: %w", err)
	}
	return nil
}

// Update replaces an entry with what fn makes of the old content (nil when
// absent), atomically; fn reports whether to write. It reports whether
// something was written (the change feed announces it).
func (s *Service) Update(ctx context.Context, userID, roomID, typ string,
	fn func(old []byte) ([]byte, bool, error)) (bool, error) {
	written, err := s.db.UpdateAccountData(ctx, userID, roomID, typ, fn)
	if err != nil {
		if _, ok := mxerr.As(err); ok {
			return false, err
		}
		return false, fmt.Errorf("update account data: %w", err)
	}
	return written, nil
}

// compactObject checks that b is a JSON object and returns it compacted.
func compactObject(b []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if !json.Valid(trimmed) {
		return nil, mxerr.New("M_NOT_JSON", "Content not JSON")
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, mxerr.BadJSON("Content must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, mxerr.New("M_NOT_JSON", "Content not JSON")
	}
	return buf.Bytes(), nil
}

// tagContent is the m.tag event content.
type tagContent struct {
	Tags map[string]json.RawMessage `json:"tags"`
}

func parseTags(old []byte) map[string]json.RawMessage {
	var c tagContent
	if old != nil {
		// A malformed stored m.tag (it is client-writable through the
		// account data API) is treated as no tags rather than an error.
		_ = json.Unmarshal(old, &c)
	}
	if c.Tags == nil {
		c.Tags = map[string]json.RawMessage{}
	}
	return c.Tags
}

// Tags returns the user's tags on a room (empty when none).
func (s *Service) Tags(ctx context.Context, userID, roomID string) (map[string]json.RawMessage, error) {
	if err := checkRoom(roomID); err != nil {
		return nil, err
	}
	c, err := s.db.GetAccountData(ctx, userID, roomID, "m.tag")
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("get tags: %w", err)
	}
	return parseTags(c), nil
}

// SetTag adds or replaces a tag; body is the tag object (e.g. {"order":0.5}).
func (s *Service) SetTag(ctx context.Context, userID, roomID, tag string, body []byte) error {
	if err := checkRoom(roomID); err != nil {
		return err
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	compact, err := compactObject(body)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(compact, &fields); err != nil {
		return mxerr.BadJSON("Tag must be a JSON object")
	}
	if raw, ok := fields["order"]; ok {
		var order float64
		if err := json.Unmarshal(raw, &order); err != nil || math.IsNaN(order) {
			return mxerr.InvalidParam("Tag order must be a number")
		}
		if order < 0 || order > 1 {
			return mxerr.InvalidParam("Tag order must be between 0 and 1")
		}
	}
	_, err = s.Update(ctx, userID, roomID, "m.tag", func(old []byte) ([]byte, bool, error) {
		tags := parseTags(old)
		tags[tag] = compact
		b, err := json.Marshal(tagContent{Tags: tags})
		return b, true, err
	})
	return err
}

// DeleteTag removes a tag; removing an absent tag succeeds.
func (s *Service) DeleteTag(ctx context.Context, userID, roomID, tag string) error {
	if err := checkRoom(roomID); err != nil {
		return err
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	_, err := s.Update(ctx, userID, roomID, "m.tag", func(old []byte) ([]byte, bool, error) {
		tags := parseTags(old)
		if _, ok := tags[tag]; !ok {
			return nil, false, nil
		}
		delete(tags, tag)
		b, err := json.Marshal(tagContent{Tags: tags})
		return b, true, err
	})
	return err
}
