package alerts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Exit codes of `axon notify` (documented in docs/alerts.md).
const (
	ExitOK      = 0  // the server acknowledged every event
	ExitFailure = 1  // anything else
	ExitUsage   = 2  // bad command line
	ExitConfig  = 3  // configuration missing or invalid
	ExitAuth    = 4  // login failed or the token is no longer valid (alert kept in the spool)
	ExitRoom    = 5  // the room does not exist or the bot may not post there
	ExitCrypto  = 6  // the room is encrypted and this build cannot encrypt
	ExitSpooled = 75 // temporarily undelivered: kept in the spool (EX_TEMPFAIL)
)

// Error kinds beyond ErrConfig and ErrAuth.
var (
	ErrSpooled = errors.New("not delivered now; kept in the spool for the next run or `axon notify flush`")
	ErrRoom    = errors.New("room error")
)

// ExitCode maps an error from Notify or Flush onto the documented exit codes.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrSpooled):
		return ExitSpooled
	case errors.Is(err, ErrAuth):
		return ExitAuth
	case errors.Is(err, ErrConfig):
		return ExitConfig
	case errors.Is(err, ErrNoCrypto):
		return ExitCrypto
	case errors.Is(err, ErrRoom):
		return ExitRoom
	}
	return ExitFailure
}

// Result says what a run delivered.
type Result struct {
	EventIDs []id.EventID // of the new alert
	Flushed  int          // spooled alerts delivered before it
}

// notifier is one run: a client, the crypto machine if a room needs it.
type notifier struct {
	cfg       *Config
	cli       *mautrix.Client
	sess      *session
	crypto    roomCrypto
	rooms     map[string]id.RoomID
	encrypted map[id.RoomID]bool
	spool     *spool
}

// Notify delivers a, after any spooled alerts (oldest first). When the
// server cannot be reached within cfg.RetryFor, a is spooled and the
// error wraps ErrSpooled.
func Notify(ctx context.Context, cfg *Config, a Alert) (Result, error) {
	var res Result
	if err := a.Validate(); err != nil {
		return res, err
	}
	if a.Room == "" {
		a.Room = cfg.Room
	}
	if a.Room == "" {
		return res, fmt.Errorf("%w: no room (set room: in notify.yaml, AXON_NOTIFY_ROOM or --room)", ErrConfig)
	}
	if a.Hostname == "" {
		a.Hostname = cfg.Hostname
	}
	if a.File != "" {
		if st, err := os.Stat(a.File); err != nil || st.IsDir() {
			return res, fmt.Errorf("%w: --file %s: not a readable file", ErrConfig, a.File)
		}
		if a.FileName == "" {
			a.FileName = filepath.Base(a.File)
		}
	}
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	if a.TxnID == "" {
		a.TxnID = newTxnID(a.Created)
	}
	if err := cfg.needServer(); err != nil {
		return res, err
	}
	if err := ensureStateDir(cfg.StateDir); err != nil {
		return res, err
	}
	unlock, err := lockState(cfg.StateDir)
	if err != nil {
		return res, err
	}
	defer unlock()
	n := &notifier{cfg: cfg, spool: newSpool(cfg.StateDir), rooms: map[string]id.RoomID{}, encrypted: map[id.RoomID]bool{}}
	defer n.close()

	keep := func(cause error) (Result, error) {
		if _, err := n.spool.put(&a); err != nil {
			return res, fmt.Errorf("%w; and the spool failed too: %w", cause, err)
		}
		if errors.Is(cause, ErrAuth) {
			return res, fmt.Errorf("%w (the alert is kept in the spool: log in again, then `axon notify flush`)", cause)
		}
		return res, fmt.Errorf("%w: %w", ErrSpooled, cause)
	}
	if err := n.retry(ctx, func() error { return n.connect(ctx) }); err != nil {
		if temporary(err) || errors.Is(err, ErrAuth) {
			return keep(err)
		}
		return res, err
	}
	flushed, err := n.flush(ctx)
	res.Flushed = flushed
	if err != nil {
		if temporary(err) || errors.Is(err, ErrAuth) {
			return keep(err)
		}
		return res, err
	}
	err = n.retry(ctx, func() error {
		ids, err := n.deliver(ctx, &a, false)
		res.EventIDs = ids
		return err
	})
	if err != nil && (temporary(err) || errors.Is(err, ErrAuth)) {
		return keep(err)
	}
	return res, err
}

// Flush delivers the spooled alerts, oldest first, and returns how many.
func Flush(ctx context.Context, cfg *Config) (int, error) {
	if err := cfg.needServer(); err != nil {
		return 0, err
	}
	if err := ensureStateDir(cfg.StateDir); err != nil {
		return 0, err
	}
	unlock, err := lockState(cfg.StateDir)
	if err != nil {
		return 0, err
	}
	defer unlock()
	n := &notifier{cfg: cfg, spool: newSpool(cfg.StateDir), rooms: map[string]id.RoomID{}, encrypted: map[id.RoomID]bool{}}
	defer n.close()
	if err := n.retry(ctx, func() error { return n.connect(ctx) }); err != nil {
		if temporary(err) {
			return 0, fmt.Errorf("%w: %w", ErrSpooled, err)
		}
		return 0, err
	}
	count, err := n.flush(ctx)
	if err != nil && temporary(err) {
		err = fmt.Errorf("%w: %w", ErrSpooled, err)
	}
	return count, err
}

// Spooled returns how many alerts wait in the spool.
func Spooled(cfg *Config) (int, error) {
	l, err := newSpool(cfg.StateDir).list()
	return len(l), err
}

func (n *notifier) close() {
	if n.crypto != nil {
		_ = n.crypto.Close()
	}
}

func (n *notifier) connect(ctx context.Context) error {
	if n.cli != nil {
		return nil
	}
	cli, s, err := connect(ctx, n.cfg)
	if err != nil {
		return err
	}
	n.cli, n.sess = cli, s
	return nil
}

// retry runs f until it succeeds, fails permanently, or cfg.RetryFor is
// spent, with exponential backoff from 200 ms up to 2 s.
func (n *notifier) retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(n.cfg.RetryFor)
	delay := 200 * time.Millisecond
	for {
		err := f()
		if err == nil || !temporary(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// flush delivers spooled alerts oldest first; it stops at the first
// temporary failure so that order is kept.
func (n *notifier) flush(ctx context.Context) (int, error) {
	entries, err := n.spool.list()
	if err != nil {
		return 0, err
	}
	count := 0
	for _, e := range entries {
		if _, err := n.deliver(ctx, &e.alert, true); err != nil {
			if temporary(err) || errors.Is(err, ErrAuth) {
				return count, err
			}
			// It will never go through (room gone, no crypto): set it aside
			// rather than blocking every later alert behind it.
			_ = os.Rename(e.path, e.path+".failed")
			fmt.Fprintf(os.Stderr, "axon notify: spooled alert %s set aside (%s.failed): %v\n", e.alert.TxnID, e.path, err)
			continue
		}
		if err := n.spool.remove(e); err != nil {
			return count, err
		}
		count++
	}
	return count, nil
}

func (n *notifier) resolveRoom(ctx context.Context, room string) (id.RoomID, error) {
	if r, ok := n.rooms[room]; ok {
		return r, nil
	}
	var roomID id.RoomID
	switch {
	case strings.HasPrefix(room, "!"):
		roomID = id.RoomID(room)
	case strings.HasPrefix(room, "#"):
		resp, err := n.cli.ResolveAlias(ctx, id.RoomAlias(room))
		if err != nil {
			if errors.Is(err, mautrix.MNotFound) {
				return "", fmt.Errorf("%w: no room has the alias %s", ErrRoom, room)
			}
			return "", classify(err)
		}
		roomID = resp.RoomID
	default:
		return "", fmt.Errorf("%w: room %q: want a room ID (!...) or alias (#...)", ErrConfig, room)
	}
	n.rooms[room] = roomID
	return roomID, nil
}

// isEncrypted asks the server for the room's m.room.encryption state.
func (n *notifier) isEncrypted(ctx context.Context, roomID id.RoomID, room string) (bool, error) {
	if enc, ok := n.encrypted[roomID]; ok {
		return enc, nil
	}
	var content event.EncryptionEventContent
	err := n.cli.StateEvent(ctx, roomID, event.StateEncryption, "", &content)
	if errors.Is(err, mautrix.MForbidden) {
		// Not in the room yet (e.g. only invited): join and ask again.
		if _, jerr := n.cli.JoinRoom(ctx, room, nil); jerr != nil {
			if errors.Is(jerr, mautrix.MForbidden) || errors.Is(jerr, mautrix.MNotFound) {
				return false, fmt.Errorf("%w: %s: the bot is not in the room and cannot join it: %w", ErrRoom, room, jerr)
			}
			return false, classify(jerr)
		}
		err = n.cli.StateEvent(ctx, roomID, event.StateEncryption, "", &content)
	}
	var enc bool
	switch {
	case err == nil:
		enc = content.Algorithm != ""
	case errors.Is(err, mautrix.MNotFound):
		enc = false
	default:
		return false, classify(err)
	}
	n.encrypted[roomID] = enc
	return enc, nil
}

func (n *notifier) openCrypto(ctx context.Context) (roomCrypto, error) {
	if n.crypto != nil {
		return n.crypto, nil
	}
	key, err := base64.RawStdEncoding.DecodeString(n.sess.PickleKey)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: session has no usable pickle key; run `axon notify login` again", ErrConfig)
	}
	c, err := openCrypto(ctx, n.cli, n.cfg.StateDir, key)
	if err != nil {
		return nil, err
	}
	if err := c.CatchUp(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	n.crypto = c
	return c, nil
}

// deliver sends one alert (text, then attachment) with its fixed
// transaction IDs and returns the event IDs.
func (n *notifier) deliver(ctx context.Context, a *Alert, delayed bool) ([]id.EventID, error) {
	room := a.Room
	if room == "" {
		room = n.cfg.Room
	}
	roomID, err := n.resolveRoom(ctx, room)
	if err != nil {
		return nil, err
	}
	enc, err := n.isEncrypted(ctx, roomID, room)
	if err != nil {
		return nil, err
	}
	var mentions []id.UserID
	for _, m := range n.cfg.Mentions {
		mentions = append(mentions, id.UserID(m))
	}
	var ids []id.EventID
	if strings.TrimSpace(a.Message) != "" || a.Title != "" || a.File == "" {
		c := a.Content(mentions, delayed)
		evID, err := n.send(ctx, roomID, enc, c, a.TxnID)
		if err != nil {
			return ids, err
		}
		ids = append(ids, evID)
	}
	if a.File != "" {
		c, err := n.fileContent(ctx, a, enc)
		if err != nil {
			return ids, err
		}
		evID, err := n.send(ctx, roomID, enc, c, a.TxnID+"-file")
		if err != nil {
			return ids, err
		}
		ids = append(ids, evID)
	}
	return ids, nil
}

func (n *notifier) send(ctx context.Context, roomID id.RoomID, enc bool, c *event.MessageEventContent, txnID string) (id.EventID, error) {
	evType := event.EventMessage
	var content any = c
	if enc {
		cr, err := n.openCrypto(ctx)
		if err != nil {
			return "", err
		}
		encrypted, err := cr.Encrypt(ctx, roomID, event.EventMessage, c)
		if err != nil {
			return "", classify(err)
		}
		evType, content = event.EventEncrypted, encrypted
	}
	resp, err := n.cli.SendMessageEvent(ctx, roomID, evType, content, mautrix.ReqSendEvent{TransactionID: txnID})
	if err != nil {
		if errors.Is(err, mautrix.MForbidden) {
			return "", fmt.Errorf("%w: %s: %w", ErrRoom, roomID, err)
		}
		return "", classify(err)
	}
	return resp.EventID, nil
}

// fileContent uploads the attachment (encrypted with a fresh key in
// encrypted rooms) and builds its m.file/m.image content.
func (n *notifier) fileContent(ctx context.Context, a *Alert, enc bool) (*event.MessageEventContent, error) {
	data, err := os.ReadFile(a.File)
	if err != nil {
		return nil, fmt.Errorf("%w: attachment: %w", ErrConfig, err)
	}
	name := a.FileName
	if name == "" {
		name = filepath.Base(a.File)
	}
	mimeType := mime.TypeByExtension(filepath.Ext(name))
	if mimeType == "" {
		mimeType = http.DetectContentType(data)
	}
	c := &event.MessageEventContent{MsgType: event.MsgFile, Body: name, FileName: name,
		Info: &event.FileInfo{MimeType: mimeType, Size: len(data)}}
	if strings.HasPrefix(mimeType, "image/") {
		c.MsgType = event.MsgImage
	}
	if !a.NoHostname && a.Hostname != "" {
		c.Body = a.Hostname + ": " + name
	}
	upload, uploadType := data, mimeType
	var ef *attachment.EncryptedFile
	if enc {
		ef = attachment.NewEncryptedFile()
		upload, uploadType = ef.Encrypt(data), "application/octet-stream"
	}
	resp, err := n.cli.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: upload, ContentType: uploadType, FileName: name})
	if err != nil {
		return nil, classify(err)
	}
	if enc {
		c.File = &event.EncryptedFileInfo{EncryptedFile: *ef, URL: resp.ContentURI.CUString()}
	} else {
		c.URL = resp.ContentURI.CUString()
	}
	return c, nil
}
