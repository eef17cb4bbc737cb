package alerts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// BotConfig is `axon bot`'s configuration file.
type BotConfig struct {
	Config `yaml:",inline"`
	// Rooms the bot joins and listens to (IDs or aliases).
	Rooms []string `yaml:"rooms"`
	// Allow lists the user IDs whose commands are accepted; everyone else is ignored.
	Allow []string `yaml:"allow"`
	// RequireVerified ignores commands from devices their owner has not
	// cross-signed (and all commands in unencrypted rooms).
	RequireVerified bool `yaml:"require_verified"`
	// RatePerMinute bounds the commands one user may run per minute (default 10).
	RatePerMinute int `yaml:"rate_per_minute"`
	// MaxAge: commands older than this when seen are not run (default 2m),
	// so a bot that was down does not run a backlog of stale commands.
	MaxAge time.Duration `yaml:"max_age"`
	// Commands maps a command name to a fixed executable.
	Commands map[string]*Command `yaml:"commands"`
}

// Command is one allowed command. The user's words are never given to a
// shell: they become separate argv entries, and only if Args allows them.
type Command struct {
	Exec        string        `yaml:"exec"`        // absolute path of the executable
	Args        []string      `yaml:"args"`        // fixed arguments, always passed first
	AllowArgs   int           `yaml:"allow_args"`  // how many user arguments may follow (default 0)
	ArgPattern  string        `yaml:"arg_pattern"` // each user argument must match (default ^[A-Za-z0-9_.:@/-]+$)
	Timeout     time.Duration `yaml:"timeout"`     // default 30s; the process is killed after it
	MaxOutput   int           `yaml:"max_output"`  // bytes of output kept (default 4000)
	Description string        `yaml:"description"`

	argRE *regexp.Regexp
}

var defaultArgPattern = `^[A-Za-z0-9_.:@/=+-]+$`

// LoadBotConfig reads a bot configuration file; AXON_NOTIFY_* variables
// override the connection settings as for notify.
func LoadBotConfig(path string, getenv func(string) string) (*BotConfig, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: axon bot needs --config FILE", ErrConfig)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	bc := &BotConfig{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(bc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	// Reuse notify's defaults and environment handling for the connection.
	conn, err := LoadConfig(os.DevNull, getenv)
	if err != nil {
		return nil, err
	}
	mergeConn(&bc.Config, conn)
	if bc.StateDir == conn.StateDir && getenv("AXON_NOTIFY_STATE_DIR") == "" {
		// A bot keeps its own device: never share notify's state directory.
		bc.StateDir = filepath.Join(filepath.Dir(conn.StateDir), "bot")
	}
	if err := bc.validate(); err != nil {
		return nil, err
	}
	return bc, nil
}

// mergeConn fills unset connection fields of dst from src (env + defaults),
// with env winning over the file as for notify.
func mergeConn(dst, src *Config) {
	set := func(d *string, s string, envWins bool) {
		if *d == "" || (envWins && s != "") {
			*d = s
		}
	}
	set(&dst.Homeserver, src.Homeserver, true)
	set(&dst.User, src.User, true)
	set(&dst.PasswordFile, src.PasswordFile, true)
	set(&dst.Token, src.Token, true)
	set(&dst.StateDir, src.StateDir, false)
	set(&dst.Hostname, src.Hostname, false)
	if dst.DeviceName == "" {
		dst.DeviceName = "axon bot on " + dst.Hostname
	}
	if dst.RetryFor == 0 {
		dst.RetryFor = src.RetryFor
	}
	dst.Homeserver = strings.TrimRight(dst.Homeserver, "/")
}

func (bc *BotConfig) validate() error {
	if len(bc.Rooms) == 0 {
		return fmt.Errorf("%w: bot: no rooms", ErrConfig)
	}
	if len(bc.Allow) == 0 {
		return fmt.Errorf("%w: bot: empty allow list (nobody could use it)", ErrConfig)
	}
	for _, u := range bc.Allow {
		if _, _, err := id.UserID(u).Parse(); err != nil {
			return fmt.Errorf("%w: bot: allow: %q is not a user ID", ErrConfig, u)
		}
	}
	if bc.RatePerMinute == 0 {
		bc.RatePerMinute = 10
	}
	if bc.MaxAge == 0 {
		bc.MaxAge = 2 * time.Minute
	}
	for name, c := range bc.Commands {
		if builtins[name] {
			return fmt.Errorf("%w: bot: command %q is a built-in", ErrConfig, name)
		}
		if c == nil || !filepath.IsAbs(c.Exec) {
			return fmt.Errorf("%w: bot: command %q: exec must be an absolute path", ErrConfig, name)
		}
		if c.Timeout == 0 {
			c.Timeout = 30 * time.Second
		}
		if c.MaxOutput == 0 {
			c.MaxOutput = 4000
		}
		p := c.ArgPattern
		if p == "" {
			p = defaultArgPattern
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("%w: bot: command %q: arg_pattern: %w", ErrConfig, name, err)
		}
		c.argRE = re
	}
	return nil
}

var builtins = map[string]bool{"help": true, "ping": true, "uptime": true, "status": true}

// Bot is a running `axon bot`.
type Bot struct {
	cfg     *BotConfig
	cli     *mautrix.Client
	sess    *session
	crypto  roomCrypto
	log     *slog.Logger
	started time.Time
	rooms   map[id.RoomID]bool
	sem     chan struct{}

	mu        sync.Mutex
	mark      botMark
	rate      map[id.UserID][]time.Time
	handled   int
	encrypted map[id.RoomID]bool
	wg        sync.WaitGroup
}

// botMark is the last handled command, persisted so that a restart never
// runs a command twice.
type botMark struct {
	EventID id.EventID `json:"event_id"`
	TS      int64      `json:"ts"`
	Seen    []string   `json:"seen"` // IDs handled at TS (same-millisecond events)
}

// NewBot connects (logging in from the configured token or password file
// on first use) and prepares the crypto machine when this build has one.
func NewBot(ctx context.Context, cfg *BotConfig, log *slog.Logger) (*Bot, error) {
	if err := ensureStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	cli, s, err := connect(ctx, &cfg.Config)
	if err != nil {
		return nil, err
	}
	b := &Bot{cfg: cfg, cli: cli, sess: s, log: log, started: time.Now(), rooms: map[id.RoomID]bool{},
		sem: make(chan struct{}, 4), rate: map[id.UserID][]time.Time{}, encrypted: map[id.RoomID]bool{}}
	b.loadMark()
	if cryptoSupported {
		key, err := base64.RawStdEncoding.DecodeString(s.PickleKey)
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("%w: session has no usable pickle key; log in again", ErrConfig)
		}
		if b.crypto, err = openCrypto(ctx, cli, cfg.StateDir, key); err != nil {
			if errors.Is(err, ErrConfig) || errors.Is(err, ErrAuth) {
				return nil, err
			}
			// Plain rooms still work; encrypted ones are reported as they come.
			log.Warn("end-to-end encryption unavailable", "err", err)
			b.crypto = nil
		}
	}
	cli.Store = &fileSyncStore{path: filepath.Join(cfg.StateDir, "sync.json")}
	return b, nil
}

// Close releases the crypto store.
func (b *Bot) Close() error {
	b.wg.Wait()
	if b.crypto != nil {
		return b.crypto.Close()
	}
	return nil
}

// Client returns the bot's Matrix client.
func (b *Bot) Client() *mautrix.Client { return b.cli }

// Run joins the configured rooms and handles commands until ctx ends.
func (b *Bot) Run(ctx context.Context) error {
	for _, r := range b.cfg.Rooms {
		resp, err := b.cli.JoinRoom(ctx, r, nil)
		if err != nil {
			return fmt.Errorf("join %s: %w", r, classify(err))
		}
		b.rooms[resp.RoomID] = true
	}
	syncer := mautrix.NewDefaultSyncer()
	if b.crypto != nil {
		b.crypto.Attach(syncer)
	}
	syncer.OnEventType(event.StateMember, func(ctx context.Context, evt *event.Event) {
		// Accept invites only to configured rooms.
		if evt.GetStateKey() == b.cli.UserID.String() && evt.Content.AsMember().Membership == event.MembershipInvite && b.rooms[evt.RoomID] {
			_, _ = b.cli.JoinRoomByID(ctx, evt.RoomID)
		}
	})
	syncer.OnEventType(event.StateEncryption, func(_ context.Context, evt *event.Event) {
		b.mu.Lock()
		b.encrypted[evt.RoomID] = true
		b.mu.Unlock()
	})
	syncer.OnEventType(event.EventMessage, b.onMessage)
	syncer.OnEventType(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		if !b.rooms[evt.RoomID] || evt.Sender == b.cli.UserID || !b.allowed(evt.Sender) ||
			time.Since(time.UnixMilli(evt.Timestamp)) > b.cfg.MaxAge {
			return // never decrypt what would be ignored anyway (old history, strangers)
		}
		if b.crypto == nil {
			b.log.Warn("encrypted command, but this build has no encryption", "room", evt.RoomID)
			return
		}
		dec, err := b.crypto.Decrypt(ctx, evt, 0)
		if err == nil {
			if dec.Type == event.EventMessage {
				b.onMessage(ctx, dec)
			}
			return
		}
		// The room key may still be on its way: wait for it off the sync loop.
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			dec, err := b.crypto.Decrypt(ctx, evt, 10*time.Second)
			if err != nil {
				b.log.Warn("cannot decrypt", "event", evt.ID, "err", err)
				return
			}
			if dec.Type == event.EventMessage {
				b.onMessage(ctx, dec)
			}
		}()
	})
	b.cli.Syncer = syncer
	err := b.cli.SyncWithContext(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return classify(err)
}

func (b *Bot) allowed(u id.UserID) bool { return slices.Contains(b.cfg.Allow, u.String()) }

func (b *Bot) onMessage(ctx context.Context, evt *event.Event) {
	if !b.rooms[evt.RoomID] || evt.Sender == b.cli.UserID {
		return
	}
	msg := evt.Content.AsMessage()
	body := strings.TrimSpace(msg.Body)
	if !strings.HasPrefix(body, "!") || msg.RelatesTo.GetReplaceID() != "" {
		return
	}
	fields := strings.Fields(body)
	target := strings.ToLower(strings.TrimPrefix(fields[0], "!"))
	if target != "all" && target != strings.ToLower(b.cfg.Hostname) {
		return // addressed to another machine
	}
	if !b.allowed(evt.Sender) {
		b.log.Info("ignored command from a user not on the allow list", "sender", evt.Sender)
		return
	}
	if time.Since(time.UnixMilli(evt.Timestamp)) > b.cfg.MaxAge {
		b.log.Info("ignored stale command", "event", evt.ID)
		return
	}
	if !b.claim(evt) {
		return
	}
	if b.cfg.RequireVerified {
		ok := false
		if evt.Mautrix.WasEncrypted && evt.Mautrix.TrustSource != nil && b.crypto != nil {
			var err error
			ok, err = b.crypto.DeviceVerified(ctx, evt.Sender, evt.Mautrix.TrustSource.DeviceID)
			if err != nil {
				b.log.Warn("device check failed", "err", err)
			}
		}
		if !ok {
			b.log.Info("ignored command from an unverified device", "sender", evt.Sender)
			return
		}
	}
	if len(fields) < 2 {
		fields = append(fields, "help")
	}
	name, args := fields[1], fields[2:]
	if !b.takeRate(evt.Sender) {
		b.reply(ctx, evt, "rate limit: too many commands, try again in a minute", "")
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		text, code := b.execute(ctx, name, args)
		b.reply(ctx, evt, text, code)
	}()
}

// claim records evt as handled before it runs; it refuses events at or
// before the persisted mark (a replay after restart or a re-delivery).
func (b *Bot) claim(evt *event.Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if evt.Timestamp < b.mark.TS || (evt.Timestamp == b.mark.TS && slices.Contains(b.mark.Seen, evt.ID.String())) {
		return false
	}
	if evt.Timestamp < b.started.Add(-b.cfg.MaxAge).UnixMilli() {
		return false
	}
	if evt.Timestamp > b.mark.TS {
		b.mark.Seen = nil
	}
	b.mark.TS, b.mark.EventID = evt.Timestamp, evt.ID
	b.mark.Seen = append(b.mark.Seen, evt.ID.String())
	b.handled++
	data, _ := json.Marshal(&b.mark)
	path := filepath.Join(b.cfg.StateDir, "last-command.json")
	if err := os.WriteFile(path+".tmp", data, 0o600); err == nil {
		_ = os.Rename(path+".tmp", path)
	}
	return true
}

func (b *Bot) loadMark() {
	data, err := os.ReadFile(filepath.Join(b.cfg.StateDir, "last-command.json"))
	if err == nil {
		_ = json.Unmarshal(data, &b.mark)
	}
}

func (b *Bot) takeRate(u id.UserID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	recent := b.rate[u][:0]
	for _, t := range b.rate[u] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	if len(recent) >= b.cfg.RatePerMinute {
		b.rate[u] = recent
		return false
	}
	b.rate[u] = append(recent, now)
	return true
}

// execute runs a built-in or configured command and returns the reply
// text and, for command output, the code block content.
func (b *Bot) execute(ctx context.Context, name string, args []string) (string, string) {
	host := b.cfg.Hostname
	switch name {
	case "help":
		names := make([]string, 0, len(b.cfg.Commands))
		for n, c := range b.cfg.Commands {
			names = append(names, fmt.Sprintf("%s — %s", n, c.Description))
		}
		sort.Strings(names)
		return fmt.Sprintf("%s: commands: help, ping, uptime, status", host), strings.Join(names, "\n")
	case "ping":
		return host + ": pong", ""
	case "uptime":
		return fmt.Sprintf("%s: up %s (bot up %s)", host, hostUptime(), time.Since(b.started).Round(time.Second)), ""
	case "status":
		b.mu.Lock()
		handled := b.handled
		b.mu.Unlock()
		load, _ := os.ReadFile("/proc/loadavg")
		return fmt.Sprintf("%s: load %s; up %s; bot up %s, %d commands handled, encryption %v",
			host, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "), hostUptime(),
			time.Since(b.started).Round(time.Second), handled, b.crypto != nil), ""
	}
	c, ok := b.cfg.Commands[name]
	if !ok {
		return fmt.Sprintf("%s: unknown command %q (try help)", host, name), ""
	}
	if len(args) > c.AllowArgs {
		return fmt.Sprintf("%s: %s takes at most %d argument(s)", host, name, c.AllowArgs), ""
	}
	for _, a := range args {
		if !c.argRE.MatchString(a) {
			return fmt.Sprintf("%s: %s: argument %q not allowed", host, name, a), ""
		}
	}
	return runCommand(ctx, host, name, c, args)
}

func runCommand(ctx context.Context, host, name string, c *Command, args []string) (string, string) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	// No shell: the executable gets the fixed args plus vetted user words.
	cmd := exec.CommandContext(ctx, c.Exec, append(slices.Clone(c.Args), args...)...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	out := &limitedBuffer{max: c.MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	start := time.Now()
	err := cmd.Run()
	output := strings.TrimRight(out.String(), "\n")
	if out.dropped > 0 {
		output += fmt.Sprintf("\n… output truncated (%d more bytes)", out.dropped)
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Sprintf("%s: %s killed after %s (timeout)", host, name, c.Timeout), output
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Sprintf("%s: %s failed (exit %d)", host, name, ee.ExitCode()), output
		}
		return fmt.Sprintf("%s: %s could not run: %v", host, name, err), ""
	}
	return fmt.Sprintf("%s: %s (%s)", host, name, time.Since(start).Round(time.Millisecond)), output
}

// limitedBuffer keeps the first max bytes and counts the rest.
type limitedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := l.max - l.buf.Len()
	if room >= len(p) {
		l.buf.Write(p)
	} else {
		if room > 0 {
			l.buf.Write(p[:room])
		}
		l.dropped += len(p) - max(room, 0)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.ToValidUTF8(l.buf.String(), "�")
}

func hostUptime() string {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "unknown"
	}
	var secs float64
	if _, err := fmt.Sscan(string(data), &secs); err != nil {
		return "unknown"
	}
	return (time.Duration(secs) * time.Second).String()
}

// reply answers evt (in its thread if it has one, else as a reply), with
// code as a code block; encrypted if the room is.
func (b *Bot) reply(ctx context.Context, evt *event.Event, text, code string) {
	c := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if code != "" {
		c.Body = text + "\n```\n" + code + "\n```"
		c.Format = event.FormatHTML
		c.FormattedBody = html.EscapeString(text) + "<pre><code>" + html.EscapeString(code) + "</code></pre>"
	}
	if thread := evt.Content.AsMessage().RelatesTo.GetThreadParent(); thread != "" {
		c.RelatesTo = (&event.RelatesTo{}).SetThread(thread, evt.ID)
		c.Mentions = &event.Mentions{UserIDs: []id.UserID{evt.Sender}}
	} else {
		c.SetReply(evt)
	}
	roomEnc, err := b.roomEncrypted(ctx, evt.RoomID)
	if err != nil {
		b.log.Warn("reply failed", "err", err)
		return
	}
	var content any = c
	evType := event.EventMessage
	if roomEnc {
		if b.crypto == nil {
			b.log.Warn("cannot reply in an encrypted room: no encryption in this build")
			return
		}
		enc, err := b.crypto.Encrypt(ctx, evt.RoomID, event.EventMessage, c)
		if err != nil {
			b.log.Warn("encrypt reply", "err", err)
			return
		}
		content, evType = enc, event.EventEncrypted
	}
	if _, err := b.cli.SendMessageEvent(ctx, evt.RoomID, evType, content); err != nil {
		b.log.Warn("reply failed", "err", err)
	}
}

func (b *Bot) roomEncrypted(ctx context.Context, roomID id.RoomID) (bool, error) {
	b.mu.Lock()
	enc, ok := b.encrypted[roomID]
	b.mu.Unlock()
	if ok {
		return enc, nil
	}
	var content event.EncryptionEventContent
	err := b.cli.StateEvent(ctx, roomID, event.StateEncryption, "", &content)
	switch {
	case err == nil:
		enc = content.Algorithm != ""
	case errors.Is(err, mautrix.MNotFound):
		enc = false
	default:
		return false, err
	}
	b.mu.Lock()
	b.encrypted[roomID] = enc
	b.mu.Unlock()
	return enc, nil
}

// fileSyncStore keeps the sync token and filter ID in a small JSON file.
type fileSyncStore struct {
	path string
	mu   sync.Mutex
}

type syncState struct {
	FilterID  string `json:"filter_id"`
	NextBatch string `json:"next_batch"`
}

func (f *fileSyncStore) load() syncState {
	var s syncState
	if data, err := os.ReadFile(f.path); err == nil {
		_ = json.Unmarshal(data, &s)
	}
	return s
}

func (f *fileSyncStore) save(s syncState) error {
	data, _ := json.Marshal(&s)
	if err := os.WriteFile(f.path+".tmp", data, 0o600); err != nil {
		return err
	}
	return os.Rename(f.path+".tmp", f.path)
}

func (f *fileSyncStore) SaveFilterID(_ context.Context, _ id.UserID, filterID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.load()
	s.FilterID = filterID
	return f.save(s)
}

func (f *fileSyncStore) LoadFilterID(context.Context, id.UserID) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load().FilterID, nil
}

func (f *fileSyncStore) SaveNextBatch(_ context.Context, _ id.UserID, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.load()
	s.NextBatch = token
	return f.save(s)
}

func (f *fileSyncStore) LoadNextBatch(context.Context, id.UserID) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load().NextBatch, nil
}
