// Package media is the media repository: uploads streamed to disk and stored
// once per distinct content (named by sha256), metadata in the database,
// downloads, thumbnails generated on demand and cached, quotas, purging, and
// URL previews.
//
// Layout under the media directory:
//
//	content/ab/abcdef...     the bytes of every distinct upload, by sha256
//	thumbnails/ab/abcdef.../ cached thumbnails of that content
//	tmp/                     uploads and thumbnails being written
package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/netguard"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/suspension"
)

// Config holds the settings of the service.
type Config struct {
	ServerName     string
	Dir            string
	MaxUploadBytes int64
	UserQuotaBytes int64 // 0: unlimited
	URLPreviews    bool
	FreezeLegacy   bool
	// Outbound is what URL previews may connect to (nil: public
	// addresses only).
	Outbound *netguard.Policy
}

// Remote fetches media that originates on other servers (federation's
// /_matrix/federation/v1/media/download). The service asks it for every
// server name that is not its own; without one, remote media is not found.
type Remote interface {
	Fetch(ctx context.Context, serverName, mediaID string) (*Content, error)
}

// Limits that are not configurable.
const (
	// PendingLifetime is how long a media ID from POST /create waits for its bytes.
	PendingLifetime = 24 * time.Hour
	// MaxPendingPerUser bounds unfinished asynchronous uploads per user.
	MaxPendingPerUser = 50
	// MaxWait bounds how long a download waits for a pending upload.
	MaxWait = 2 * time.Minute
	// DefaultWait is the wait when the client does not give timeout_ms.
	DefaultWait = 20 * time.Second
)

// Service is the media repository.
type Service struct {
	cfg    Config
	db     *storage.DB
	log    *slog.Logger
	remote Remote
	now    func() time.Time

	// refMu orders "put a file in the store and insert a row referring to it"
	// against "delete rows and remove the files nobody refers to", so a purge
	// never removes a file that a concurrent upload has just reused.
	refMu sync.Mutex

	waitMu  sync.Mutex
	waiters map[string]chan struct{} // pending media ID -> closed on upload

	thumbSem    chan struct{} // bounds concurrent thumbnail generation
	thumbMu     sync.Mutex
	thumbGen    map[string]*thumbCall // in-flight generations by cache path
	thumbLimits thumbLimits

	preview *previewer
}

// New creates the service and its directories. Leftover temporary files of
// an earlier run are removed.
func New(db *storage.DB, cfg Config, log *slog.Logger) (*Service, error) {
	for _, d := range []string{"content", "thumbnails", "tmp"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("media dir: %w", err)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(cfg.Dir, "tmp")); err == nil {
		for _, e := range ents {
			os.Remove(filepath.Join(cfg.Dir, "tmp", e.Name()))
		}
	}
	s := &Service{
		cfg: cfg, db: db, log: log, now: time.Now,
		waiters: map[string]chan struct{}{},
		// Thumbnailing is CPU-bound: one at a time per CPU. Each is bounded
		// in memory by MaxThumbnailBytes, so together they take at most
		// that many times the number of CPUs.
		thumbSem:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		thumbGen:    map[string]*thumbCall{},
		thumbLimits: defaultThumbLimits(),
	}
	s.preview = newPreviewer(cfg.Outbound)
	return s, nil
}

// SetRemote installs the fetcher of remote media (the federation seam).
func (s *Service) SetRemote(r Remote) { s.remote = r }

// MaxUploadBytes is the upload limit advertised in /media/config.
func (s *Service) MaxUploadBytes() int64 { return s.cfg.MaxUploadBytes }

// Content is media ready to be served. The caller closes File.
type Content struct {
	File        *os.File
	Size        int64
	ContentType string
	UploadName  string
	SHA256      string
	Created     time.Time
}

// Close closes the file.
func (c *Content) Close() error { return c.File.Close() }

var mediaIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// checkIDs validates the parts of an mxc:// URI before they are used
// anywhere (the spec's defence against path traversal: allow-list, not
// deny-list).
func checkIDs(serverName, mediaID string) error {
	if !validServerName(serverName) {
		return mxerr.InvalidParam("Invalid server name")
	}
	if !mediaIDRe.MatchString(mediaID) {
		return mxerr.InvalidParam("Invalid media ID")
	}
	return nil
}

func validServerName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return !strings.Contains(s, "..")
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func newMediaID() string {
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// MXC formats a local media ID as an mxc:// URI.
func (s *Service) MXC(mediaID string) string { return "mxc://" + s.cfg.ServerName + "/" + mediaID }

// Upload is one upload request.
type Upload struct {
	UserID      string
	ContentType string // as the client claimed it; "" means application/octet-stream
	FileName    string
	Length      int64 // Content-Length, -1 when unknown
	Body        io.Reader
}

// Upload stores new media and returns its mxc:// URI.
func (s *Service) Upload(ctx context.Context, up Upload) (string, error) {
	// Suspended accounts may not upload (spec: "Account suspension" leaves
	// the list to servers; an upload is the start of posting content, which
	// suspension is meant to stop).
	if err := suspension.Refuse(ctx, s.db, up.UserID); err != nil {
		return "", err
	}
	mediaID := newMediaID()
	m, tmp, err := s.receive(ctx, up)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	m.MediaID = mediaID
	if err := s.commit(ctx, m, tmp, func() error { return s.db.InsertMedia(ctx, *m) }); err != nil {
		return "", err
	}
	return s.MXC(mediaID), nil
}

// Create reserves a media ID for an asynchronous upload.
func (s *Service) Create(ctx context.Context, userID string) (mxc string, expires time.Time, err error) {
	if err := suspension.Refuse(ctx, s.db, userID); err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	expires = now.Add(PendingLifetime)
	mediaID := newMediaID()
	err = s.db.CreatePendingMedia(ctx, storage.Media{MediaID: mediaID, UserID: userID, CreatedTS: now.UnixMilli(), ExpiresTS: expires.UnixMilli()},
		now.UnixMilli(), MaxPendingPerUser)
	if errors.Is(err, storage.ErrLimit) {
		e := mxerr.New("M_LIMIT_EXCEEDED", "Too many unfinished uploads")
		e.Extra = map[string]any{"retry_after_ms": 60000}
		return "", time.Time{}, e
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create media: %w", err)
	}
	return s.MXC(mediaID), expires, nil
}

// UploadTo supplies the bytes of a media ID reserved with Create.
func (s *Service) UploadTo(ctx context.Context, serverName, mediaID string, up Upload) error {
	if err := checkIDs(serverName, mediaID); err != nil {
		return err
	}
	if serverName != s.cfg.ServerName {
		return mxerr.NotFound("Unknown media ID")
	}
	// Fail before reading the body when the answer is already known.
	if err := suspension.Refuse(ctx, s.db, up.UserID); err != nil {
		return err
	}
	cur, err := s.db.GetMedia(ctx, mediaID)
	if err := pendingError(cur, err, up.UserID, s.now()); err != nil {
		return err
	}
	m, tmp, err := s.receive(ctx, up)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	m.MediaID = mediaID
	err = s.commit(ctx, m, tmp, func() error {
		err := s.db.CompletePendingMedia(ctx, *m, s.now().UnixMilli())
		return pendingError(nil, err, up.UserID, s.now())
	})
	if err != nil {
		return err
	}
	s.waitMu.Lock()
	if ch, ok := s.waiters[mediaID]; ok {
		close(ch)
		delete(s.waiters, mediaID)
	}
	s.waitMu.Unlock()
	return nil
}

// pendingError maps the state of a reservation to the spec's errors.
func pendingError(cur *storage.Media, err error, userID string, now time.Time) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return mxerr.NotFound("Unknown media ID")
	case errors.Is(err, storage.ErrForbidden):
		return mxerr.Forbidden("This media ID was created by another user")
	case errors.Is(err, storage.ErrExists):
		return mxerr.New("M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded").WithStatus(409)
	case err != nil:
		return fmt.Errorf("media: %w", err)
	case cur == nil:
		return nil
	case cur.UserID != userID:
		return mxerr.Forbidden("This media ID was created by another user")
	case !cur.Pending():
		return mxerr.New("M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded").WithStatus(409)
	case cur.ExpiresTS < now.UnixMilli():
		return mxerr.NotFound("Unknown media ID")
	}
	return nil
}

// receive streams the body into a temporary file while hashing it, and
// checks size, quota and content type. It returns the row to insert and the
// temporary file, which commit moves into the store.
func (s *Service) receive(ctx context.Context, up Upload) (*storage.Media, string, error) {
	return s.receiveLimited(ctx, up, s.cfg.MaxUploadBytes)
}

func (s *Service) receiveLimited(ctx context.Context, up Upload, limit int64) (*storage.Media, string, error) {
	claimed, err := normaliseType(up.ContentType)
	if err != nil {
		return nil, "", err
	}
	if up.Length > limit {
		return nil, "", tooLarge(limit)
	}
	var used int64
	if s.cfg.UserQuotaBytes > 0 && up.UserID != "" {
		if used, err = s.db.MediaUsage(ctx, up.UserID); err != nil {
			return nil, "", fmt.Errorf("media usage: %w", err)
		}
		if used+max(up.Length, 0) > s.cfg.UserQuotaBytes {
			return nil, "", overQuota()
		}
	}
	tmp, err := s.writeTemp(ctx, up.Body, limit)
	if err != nil {
		return nil, "", err
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(tmp.path)
		}
	}()
	if tmp.size == 0 {
		return nil, "", mxerr.InvalidParam("Empty upload")
	}
	if s.cfg.UserQuotaBytes > 0 && up.UserID != "" && used+tmp.size > s.cfg.UserQuotaBytes {
		return nil, "", overQuota()
	}
	ctype, err := checkType(claimed, tmp.head)
	if err != nil {
		return nil, "", err
	}
	keep = true
	return &storage.Media{
		UserID: up.UserID, SHA256: tmp.sha256, Size: tmp.size, ContentType: ctype,
		UploadName: cleanFileName(up.FileName), CreatedTS: s.now().UnixMilli(),
		AuthenticatedOnly: s.cfg.FreezeLegacy,
	}, tmp.path, nil
}

func tooLarge(limit int64) error {
	return mxerr.New("M_TOO_LARGE", "Upload larger than the limit of %d bytes", limit)
}

func overQuota() error {
	return mxerr.Forbidden("Upload would exceed your media quota")
}

// commit moves the received file into the store (unless identical content
// is there already) and runs insert, under refMu.
func (s *Service) commit(ctx context.Context, m *storage.Media, tmpPath string, insert func() error) error {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	final := s.contentPath(m.SHA256)
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return fmt.Errorf("media store: %w", err)
		}
		if err := os.Rename(tmpPath, final); err != nil {
			return fmt.Errorf("media store: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("media store: %w", err)
	}
	if err := insert(); err != nil {
		// Under refMu nobody else can be adding a reference right now.
		if ref, rerr := s.db.MediaReferenced(ctx, m.SHA256); rerr == nil && !ref {
			os.Remove(final)
		}
		return err
	}
	// A purge in another process may have removed the existing file while
	// the row was being inserted; the received copy is still in tmp.
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		os.MkdirAll(filepath.Dir(final), 0o700)
		if err := os.Rename(tmpPath, final); err != nil {
			return fmt.Errorf("media store: %w", err)
		}
	}
	return nil
}

func (s *Service) contentPath(sha string) string {
	return filepath.Join(s.cfg.Dir, "content", sha[:2], sha)
}

func (s *Service) thumbDir(sha string) string {
	return filepath.Join(s.cfg.Dir, "thumbnails", sha[:2], sha)
}

// normaliseType parses the client's Content-Type.
func normaliseType(ct string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return "application/octet-stream", nil
	}
	base, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(base, "/") {
		return "", mxerr.InvalidParam("Invalid Content-Type %q", ct)
	}
	if cs, ok := params["charset"]; ok && strings.HasPrefix(base, "text/") {
		return mime.FormatMediaType(base, map[string]string{"charset": cs}), nil
	}
	return base, nil
}

// cleanFileName keeps the last path element of a client-supplied name and
// drops control characters; the name is only ever shown in
// Content-Disposition, never used as a path.
func cleanFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if name == "." || name == ".." {
		return ""
	}
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// Options says how a download or thumbnail was asked for.
type Options struct {
	Legacy bool          // through the unauthenticated /_matrix/media paths
	Wait   time.Duration // how long to wait for a pending upload
}

// Download opens a media ID's content.
func (s *Service) Download(ctx context.Context, serverName, mediaID string, opt Options) (*Content, error) {
	if err := checkIDs(serverName, mediaID); err != nil {
		return nil, err
	}
	if serverName != s.cfg.ServerName {
		if s.remote == nil || opt.Legacy {
			return nil, mxerr.NotFound("Media not found")
		}
		return s.remote.Fetch(ctx, serverName, mediaID)
	}
	m, err := s.lookup(ctx, mediaID, opt)
	if err != nil {
		return nil, err
	}
	return s.openContent(m)
}

func (s *Service) openContent(m *storage.Media) (*Content, error) {
	f, err := os.Open(s.contentPath(m.SHA256))
	if errors.Is(err, os.ErrNotExist) {
		return nil, mxerr.NotFound("Media not found")
	}
	if err != nil {
		return nil, fmt.Errorf("open media: %w", err)
	}
	return &Content{File: f, Size: m.Size, ContentType: m.ContentType, UploadName: m.UploadName, SHA256: m.SHA256, Created: time.UnixMilli(m.CreatedTS)}, nil
}

// lookup finds a local media row, waiting for a pending upload.
func (s *Service) lookup(ctx context.Context, mediaID string, opt Options) (*storage.Media, error) {
	wait := min(opt.Wait, MaxWait)
	var deadline <-chan time.Time
	for {
		m, err := s.db.GetMedia(ctx, mediaID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, mxerr.NotFound("Media not found")
		}
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		if opt.Legacy && m.AuthenticatedOnly {
			// Frozen: only the authenticated endpoints serve it.
			return nil, mxerr.NotFound("Media not found")
		}
		if !m.Pending() {
			return m, nil
		}
		if m.ExpiresTS < s.now().UnixMilli() {
			return nil, mxerr.NotFound("Media not found")
		}
		if deadline == nil {
			if wait <= 0 {
				return nil, notYetUploaded()
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		s.waitMu.Lock()
		ch, ok := s.waiters[mediaID]
		if !ok {
			ch = make(chan struct{})
			s.waiters[mediaID] = ch
		}
		s.waitMu.Unlock()
		// Re-read after registering: the upload may have finished between
		// the query above and the registration.
		if m, err := s.db.GetMedia(ctx, mediaID); err == nil && !m.Pending() {
			continue
		}
		select {
		case <-ch:
		case <-deadline:
			return nil, notYetUploaded()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func notYetUploaded() error {
	return mxerr.New("M_NOT_YET_UPLOADED", "Media has not been uploaded yet").WithStatus(504)
}

// orphanMinAge is how old an unreferenced file must be before a purge
// removes it.
const orphanMinAge = time.Hour

// strayFiles lists content files modified before cutoff that no media row
// refers to.
func (s *Service) strayFiles(ctx context.Context, cutoff time.Time) ([]string, error) {
	var out []string
	root := filepath.Join(s.cfg.Dir, "content")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		sha := d.Name()
		if len(sha) != 64 || filepath.Base(filepath.Dir(p)) != sha[:2] {
			return nil
		}
		if fi, err := d.Info(); err != nil || !fi.ModTime().Before(cutoff) {
			return nil
		}
		ref, err := s.db.MediaReferenced(ctx, sha)
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if !ref {
			out = append(out, sha)
		}
		return nil
	})
	return out, err
}

// PurgeFilter selects media for Purge; see storage.MediaFilter.
type PurgeFilter = storage.MediaFilter

// dirSize is the total size of the files directly in dir.
func dirSize(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// PurgeResult counts what Purge removed.
type PurgeResult struct {
	Media      int64 // media IDs deleted
	Bytes      int64 // their total size (before de-duplication)
	Files      int   // content files removed from disk
	FreedBytes int64 // bytes of those files and their thumbnails
}

// Purge deletes the selected media and the files no remaining media uses.
func (s *Service) Purge(ctx context.Context, f PurgeFilter) (PurgeResult, error) {
	return s.purge(ctx, f, false)
}

// PurgePreview reports what Purge would delete and free, changing nothing.
func (s *Service) PurgePreview(ctx context.Context, f PurgeFilter) (PurgeResult, error) {
	return s.purge(ctx, f, true)
}

func (s *Service) purge(ctx context.Context, f PurgeFilter, dryRun bool) (PurgeResult, error) {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	var res PurgeResult
	n, bytes, orphans, err := s.db.DeleteMedia(ctx, f, s.now().UnixMilli(), dryRun)
	if err != nil {
		return res, fmt.Errorf("purge media: %w", err)
	}
	res.Media, res.Bytes = n, bytes
	// Files no row refers to can also be left by a crash between storing a
	// file and inserting its row; sweep those too, once they are old
	// enough not to belong to an upload in progress in a running server.
	stray, err := s.strayFiles(ctx, s.now().Add(-orphanMinAge))
	if err != nil {
		return res, err
	}
	for _, sha := range append(orphans, stray...) {
		// `axon media purge` runs in its own process, beside a server whose
		// uploads refMu does not order: re-check just before removing, so
		// that only a very narrow race with an identical upload remains.
		// (A dry run's orphans are still referenced: its delete was
		// rolled back.)
		if !dryRun {
			if ref, err := s.db.MediaReferenced(ctx, sha); err != nil || ref {
				continue
			}
		}
		p := s.contentPath(sha)
		fi, statErr := os.Stat(p)
		if statErr == nil {
			res.FreedBytes += fi.Size()
		}
		if dryRun {
			if statErr == nil {
				res.Files++
			}
			res.FreedBytes += dirSize(s.thumbDir(sha))
			continue
		}
		if err := os.Remove(p); err == nil {
			res.Files++
		} else if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("purge: removing media file", "sha256", sha, "err", err)
		}
		td := s.thumbDir(sha)
		if ents, err := os.ReadDir(td); err == nil {
			for _, e := range ents {
				if fi, err := e.Info(); err == nil {
					res.FreedBytes += fi.Size()
				}
			}
		}
		os.RemoveAll(td)
	}
	return res, nil
}
