package alerts

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// startBot runs a bot for w's room until the test ends (or stop is called).
func startBot(t *testing.T, w *world, stateDir string, cmds map[string]*Command) (stop func()) {
	t.Helper()
	return startBotWith(t, w, stateDir, func(bc *BotConfig) { bc.Commands = cmds })
}

func startBotWith(t *testing.T, w *world, stateDir string, adjust func(*BotConfig)) (stop func()) {
	t.Helper()
	bc := &BotConfig{Config: *w.cfg, Rooms: []string{w.roomID.String()}, Allow: []string{w.alice.UserID.String()},
		RatePerMinute: 100}
	bc.StateDir = stateDir
	adjust(bc)
	if err := bc.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := os.Stat(filepath.Join(stateDir, sessionFile)); err != nil {
		if _, _, err := Login(ctx, &bc.Config, "password-pusher"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := NewBot(ctx, bc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	// Wait for the bot to be in the room and syncing.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := w.alice.JoinedMembers(ctx, w.roomID)
		if err == nil {
			if _, ok := m.Joined[b.cli.UserID]; ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("bot did not join")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bot run: %v", err)
		}
		b.Close()
	}
	t.Cleanup(stop)
	return stop
}

// replies returns the bot's replies to evID seen so far.
func (w *world) replies(t *testing.T, c *mautrix.Client, evID id.EventID) []*event.MessageEventContent {
	t.Helper()
	var out []*event.MessageEventContent
	for _, ev := range w.botMessages(t, c) {
		if ev.Type != event.EventMessage {
			continue
		}
		m := ev.Content.AsMessage()
		if m.RelatesTo.GetReplyTo() == evID {
			out = append(out, m)
		}
	}
	return out
}

func (w *world) waitReply(t *testing.T, c *mautrix.Client, evID id.EventID) *event.MessageEventContent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := w.replies(t, c, evID); len(r) > 0 {
			return r[0]
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no reply to %s", evID)
	return nil
}

func TestBotCommands(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	mallory := w.r.CreateUser("mallory")
	if _, err := w.alice.InviteUser(ctx, w.roomID, &mautrix.ReqInviteUser{UserID: mallory.UserID}); err != nil {
		t.Fatal(err)
	}
	testrig.Join(t, w.roomID, mallory)
	marker := filepath.Join(t.TempDir(), "touched")
	cmds := map[string]*Command{
		"echo":  {Exec: "/bin/echo", AllowArgs: 3, Description: "say it back"},
		"touch": {Exec: "/usr/bin/touch", Args: []string{marker}},
		"hang":  {Exec: "/bin/sleep", Args: []string{"30"}, Timeout: 300 * time.Millisecond},
		"big":   {Exec: "/usr/bin/seq", Args: []string{"1", "100000"}, MaxOutput: 100},
	}
	stateDir := t.TempDir()
	stop := startBot(t, w, stateDir, cmds)
	send := func(c *mautrix.Client, text string) id.EventID {
		t.Helper()
		r, err := c.SendText(ctx, w.roomID, text)
		if err != nil {
			t.Fatal(err)
		}
		return r.EventID
	}

	fromMallory := send(mallory, "!web1 touch")
	otherHost := send(w.alice, "!web2 ping")
	echo := send(w.alice, "!web1 echo hello world")
	r := w.waitReply(t, w.alice, echo)
	if !strings.Contains(r.Body, "```\nhello world\n") || !strings.Contains(r.FormattedBody, "<pre><code>hello world") {
		t.Fatalf("echo reply: %q / %q", r.Body, r.FormattedBody)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command from a user not on the allow list ran")
	}
	if n := len(w.replies(t, w.alice, fromMallory)) + len(w.replies(t, w.alice, otherHost)); n != 0 {
		t.Fatalf("answered a disallowed user or another host's command: %d", n)
	}

	r = w.waitReply(t, w.alice, send(w.alice, "!web1 rm -rf /"))
	if !strings.Contains(r.Body, `unknown command "rm"`) {
		t.Fatalf("unknown command: %q", r.Body)
	}
	r = w.waitReply(t, w.alice, send(w.alice, "!web1 echo $(id);touch"))
	if !strings.Contains(r.Body, "not allowed") {
		t.Fatalf("shell metacharacters: %q", r.Body)
	}
	start := time.Now()
	r = w.waitReply(t, w.alice, send(w.alice, "!all hang"))
	if !strings.Contains(r.Body, "killed after 300ms (timeout)") || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %q after %v", r.Body, time.Since(start))
	}
	r = w.waitReply(t, w.alice, send(w.alice, "!web1 big"))
	if !strings.Contains(r.Body, "output truncated") || len(r.Body) > 400 {
		t.Fatalf("truncation: %q", r.Body)
	}
	r = w.waitReply(t, w.alice, send(w.alice, "!WEB1 help"))
	if !strings.Contains(r.Body, "echo — say it back") {
		t.Fatalf("help: %q", r.Body)
	}
	r = w.waitReply(t, w.alice, send(w.alice, "!web1 status"))
	if !strings.Contains(r.Body, "commands handled") {
		t.Fatalf("status: %q", r.Body)
	}

	// Restart: nothing already handled runs again.
	stop()
	send(w.alice, "!web1 touch") // sent while the bot is down: stale by the time it is back? no — recent, so it runs once
	startBot(t, w, stateDir, cmds)
	ping := send(w.alice, "!web1 ping")
	if r := w.waitReply(t, w.alice, ping); r.Body != "web1: pong" {
		t.Fatalf("ping: %q", r.Body)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(w.replies(t, w.alice, echo)); n != 1 {
		t.Fatalf("echo answered %d times across a restart", n)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("command sent while the bot was down was not run after restart")
	}
}

func TestBotRateLimit(t *testing.T) {
	b := &Bot{cfg: &BotConfig{RatePerMinute: 3}, rate: map[id.UserID][]time.Time{}}
	for i := 0; i < 3; i++ {
		if !b.takeRate("@a:x") {
			t.Fatalf("command %d refused", i)
		}
	}
	if b.takeRate("@a:x") {
		t.Fatal("fourth command in a minute allowed")
	}
	if !b.takeRate("@b:x") {
		t.Fatal("rate limit is not per user")
	}
}

func TestBotConfigValidation(t *testing.T) {
	base := func() *BotConfig {
		return &BotConfig{Rooms: []string{"!r:x"}, Allow: []string{"@a:x"}, Commands: map[string]*Command{}}
	}
	bc := base()
	bc.Commands["df"] = &Command{Exec: "df"}
	if err := bc.validate(); err == nil {
		t.Fatal("relative exec accepted")
	}
	bc = base()
	bc.Allow = nil
	if err := bc.validate(); err == nil {
		t.Fatal("empty allow list accepted")
	}
	bc = base()
	bc.Commands["ping"] = &Command{Exec: "/bin/true"}
	if err := bc.validate(); err == nil {
		t.Fatal("shadowing a built-in accepted")
	}
}
