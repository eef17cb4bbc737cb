package alerts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestNotifyPlainRoom(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	res, err := Notify(ctx, w.cfg, Alert{Message: "disk full on /var"})
	if err != nil {
		t.Fatalf("notify: %v", err)
	}
	if len(res.EventIDs) != 1 {
		t.Fatalf("event IDs: %v", res.EventIDs)
	}
	start := time.Now()
	if _, err := Notify(ctx, w.cfg, Alert{Message: "**backup** done", Markdown: true, Title: "Backup", Level: LevelWarning, Text: true}); err != nil {
		t.Fatalf("second notify: %v", err)
	}
	t.Logf("warm notify (plain room, in-process): %v", time.Since(start))
	msgs := w.botMessages(t, w.alice)
	if len(msgs) != 2 {
		t.Fatalf("want 2 messages, got %d", len(msgs))
	}
	m := msgs[0].Content.AsMessage()
	if m.Body != "web1: disk full on /var" || m.MsgType != event.MsgNotice {
		t.Fatalf("first message: %q %s", m.Body, m.MsgType)
	}
	m = msgs[1].Content.AsMessage()
	if m.MsgType != event.MsgText || !strings.Contains(m.FormattedBody, "<strong>backup</strong>") || !strings.HasPrefix(m.Body, "web1: ⚠️ ") {
		t.Fatalf("markdown message: %+v", m)
	}
	// One device for every run.
	devs, err := w.r.CreateUserDevice("pusher", "OTHER", false).GetDevicesInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range devs.Devices {
		if d.DisplayName == w.cfg.DeviceName {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("want one notify device, got %+v", devs.Devices)
	}
	st, err := os.Stat(filepath.Join(w.cfg.StateDir, sessionFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session file mode: %v %v", st.Mode(), err)
	}
}

func TestNotifyCriticalMentions(t *testing.T) {
	a := Alert{Message: "db down", Level: LevelCritical, Hostname: "db1"}
	c := a.Content(nil, false)
	if !c.Mentions.Room || !strings.HasPrefix(c.Body, "@room db1: ") {
		t.Fatalf("room mention: %+v", c)
	}
	c = a.Content([]id.UserID{"@alice:axon.test"}, false)
	if c.Mentions.Room || len(c.Mentions.UserIDs) != 1 || !strings.Contains(c.FormattedBody, "https://matrix.to/#/@alice:axon.test") {
		t.Fatalf("user mention: %+v", c)
	}
	md := Alert{Message: "<script>x</script> [x](javascript:alert(1))", Markdown: true}
	c = md.Content(nil, false)
	if strings.Contains(c.FormattedBody, "<script>") || strings.Contains(c.FormattedBody, `href="javascript`) {
		t.Fatalf("unsanitised: %q", c.FormattedBody)
	}
	if err := (&Alert{Message: "x", Level: "loud"}).Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad level accepted: %v", err)
	}
}

func TestNotifySpoolAndFlush(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	p := newProxy(t, w.r.URL)
	w.cfg.Homeserver = p.URL()
	// Re-login through the proxy so the session is bound to its URL.
	if _, _, err := Login(ctx, w.cfg, "password-pusher"); err != nil {
		t.Fatal(err)
	}
	if _, err := Notify(ctx, w.cfg, Alert{Message: "before"}); err != nil {
		t.Fatal(err)
	}
	p.down()
	for _, msg := range []string{"one", "two", "three"} {
		_, err := Notify(ctx, w.cfg, Alert{Message: msg})
		if ExitCode(err) != ExitSpooled {
			t.Fatalf("server down: want exit %d, got %d (%v)", ExitSpooled, ExitCode(err), err)
		}
	}
	if n, _ := Spooled(w.cfg); n != 3 {
		t.Fatalf("spooled: %d", n)
	}
	p.up()
	// The first send's response is lost after the server stored it: the
	// retry must not duplicate it.
	p.dropSend.Store(1)
	n, err := Flush(ctx, w.cfg)
	if ExitCode(err) != ExitSpooled || n != 0 {
		t.Fatalf("flush with lost ack: %d %v", n, err)
	}
	n, err = Flush(ctx, w.cfg)
	if err != nil || n != 3 {
		t.Fatalf("flush: %d %v", n, err)
	}
	if _, err := Notify(ctx, w.cfg, Alert{Message: "after"}); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, ev := range w.botMessages(t, w.alice) {
		bodies = append(bodies, ev.Content.AsMessage().Body)
	}
	if len(bodies) != 5 || bodies[0] != "web1: before" || bodies[4] != "web1: after" {
		t.Fatalf("messages: %q", bodies)
	}
	for i, want := range []string{"one", "two", "three"} {
		if !strings.HasPrefix(bodies[i+1], "web1: "+want+"\n(queued at ") {
			t.Fatalf("spooled message %d: %q", i, bodies[i+1])
		}
	}
	if n, _ := Spooled(w.cfg); n != 0 {
		t.Fatalf("spool not empty: %d", n)
	}
}

func TestNotifyErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Notify(ctx, &Config{StateDir: t.TempDir(), Room: "!x:y"}, Alert{Message: "m"})
	if ExitCode(err) != ExitConfig {
		t.Fatalf("no homeserver: %v", err)
	}
	w := newWorld(t, false)
	cfg := *w.cfg
	cfg.StateDir = t.TempDir()
	cfg.Token = "not-a-token"
	_, err = Notify(ctx, &cfg, Alert{Message: "m"})
	if ExitCode(err) != ExitAuth {
		t.Fatalf("bad token: %d %v", ExitCode(err), err)
	}
	if n, _ := Spooled(&cfg); n != 1 {
		t.Fatalf("alert not kept after auth error: %d", n)
	}
	_, err = Notify(ctx, w.cfg, Alert{Message: "m", Room: "#nope:axon.test"})
	if ExitCode(err) != ExitRoom {
		t.Fatalf("unknown alias: %d %v", ExitCode(err), err)
	}
}

func TestNotifyAttachment(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(path, []byte("all good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Notify(ctx, w.cfg, Alert{Message: "nightly report", File: path})
	if err != nil {
		t.Fatal(err)
	}
	msgs := w.botMessages(t, w.alice)
	if len(msgs) != 2 {
		t.Fatalf("messages: %d", len(msgs))
	}
	f := msgs[1].Content.AsMessage()
	if f.MsgType != event.MsgFile || f.URL == "" || f.FileName != "report.txt" {
		t.Fatalf("file event: %+v", f)
	}
	uri, _ := f.URL.Parse()
	data, err := w.alice.DownloadBytes(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "all good\n" {
		t.Fatalf("downloaded %q", data)
	}
}
