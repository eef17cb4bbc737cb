//go:build goolm

package alerts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// e2eeClient is a second Matrix client with its own Olm device (mautrix-go
// crypto) that syncs and decrypts what arrives in the room.
type e2eeClient struct {
	cli    *mautrix.Client
	crypto roomCrypto
	mu     sync.Mutex
	got    []*event.Event // decrypted room messages
	errs   []error
}

func newE2EEClient(t *testing.T, cli *mautrix.Client) *e2eeClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := openCrypto(ctx, cli, t.TempDir(), []byte("test pickle key"))
	if err != nil {
		t.Fatalf("crypto for %s: %v", cli.UserID, err)
	}
	e := &e2eeClient{cli: cli, crypto: c}
	syncer := mautrix.NewDefaultSyncer()
	c.Attach(syncer)
	syncer.OnEventType(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		dec, err := c.Decrypt(ctx, evt, 0)
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.errs = append(e.errs, err)
			return
		}
		_ = dec.Content.ParseRaw(dec.Type)
		e.got = append(e.got, dec)
	})
	cli.Syncer = syncer
	cli.Store = mautrix.NewMemorySyncStore()
	done := make(chan struct{})
	go func() { defer close(done); _ = cli.SyncWithContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	return e
}

// wait returns the first decrypted message from sender whose body contains substr.
func (e *e2eeClient) wait(t *testing.T, sender id.UserID, substr string) *event.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		for _, ev := range e.got {
			if ev.Sender == sender && strings.Contains(ev.Content.AsMessage().Body, substr) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		time.Sleep(25 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t.Fatalf("no decrypted message %q from %s (decrypt errors: %v)", substr, sender, e.errs)
	return nil
}

func TestNotifyEncryptedRoom(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	alice := newE2EEClient(t, w.alice)
	if _, err := Notify(ctx, w.cfg, Alert{Message: "disk full on /var"}); err != nil {
		t.Fatalf("notify: %v", err)
	}
	ev := alice.wait(t, w.r.UserID("pusher"), "disk full")
	if body := ev.Content.AsMessage().Body; body != "web1: disk full on /var" {
		t.Fatalf("decrypted body %q", body)
	}
	// On the server it is ciphertext only.
	for _, raw := range w.botMessages(t, w.alice) {
		if raw.Type != event.EventEncrypted {
			t.Fatalf("plaintext event in an encrypted room: %s", raw.Type)
		}
	}
	start := time.Now()
	if _, err := Notify(ctx, w.cfg, Alert{Message: "second, warm"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("warm notify (encrypted room, in-process, session reused): %v", time.Since(start))
	alice.wait(t, w.r.UserID("pusher"), "second, warm")

	// A phone alice adds later gets the key with the next alert.
	phone := newE2EEClient(t, w.r.CreateUserDevice("alice", "PHONE", false))
	if _, err := Notify(ctx, w.cfg, Alert{Message: "for the new phone"}); err != nil {
		t.Fatal(err)
	}
	phone.wait(t, w.r.UserID("pusher"), "for the new phone")
	alice.wait(t, w.r.UserID("pusher"), "for the new phone")

	// Encrypted attachment: the server holds ciphertext; the key travels in the event.
	path := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(path, []byte("secret report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Notify(ctx, w.cfg, Alert{Message: "report attached", File: path}); err != nil {
		t.Fatal(err)
	}
	fev := alice.wait(t, w.r.UserID("pusher"), "report.txt")
	f := fev.Content.AsMessage()
	if f.File == nil || f.URL != "" {
		t.Fatalf("attachment not encrypted: %+v", f)
	}
	uri, err := f.File.URL.Parse()
	if err != nil {
		t.Fatal(err)
	}
	data, err := w.alice.DownloadBytes(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret") {
		t.Fatal("server holds the attachment in plaintext")
	}
	plain, err := f.File.Decrypt(data)
	if err != nil || string(plain) != "secret report\n" {
		t.Fatalf("decrypted attachment %q %v", plain, err)
	}
}

func TestCrossSigningBootstrap(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	key, err := CrossSign(ctx, w.cfg, "password-pusher", "")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if key == "" {
		t.Fatal("no recovery key printed")
	}
	if again, err := CrossSign(ctx, w.cfg, "password-pusher", ""); err != nil || again != "" {
		t.Fatalf("second bootstrap must not make new keys: %q %v", again, err)
	}
	// Another machine (new device of the same bot) signs itself with the recovery key.
	cfg2 := *w.cfg
	cfg2.StateDir = t.TempDir()
	if _, _, err := Login(ctx, &cfg2, "password-pusher"); err != nil {
		t.Fatal(err)
	}
	if _, err := CrossSign(ctx, &cfg2, "", key); err != nil {
		t.Fatalf("sign with recovery key: %v", err)
	}
	// Alice sees both bot devices cross-signed by the bot.
	alice := newE2EEClient(t, w.alice)
	s1, _ := loadSession(w.cfg.StateDir)
	s2, _ := loadSession(cfg2.StateDir)
	for _, dev := range []id.DeviceID{s1.DeviceID, s2.DeviceID} {
		ok, err := alice.crypto.DeviceVerified(ctx, s1.UserID, dev)
		if err != nil || !ok {
			t.Fatalf("device %s not cross-signed: %v", dev, err)
		}
	}
}

func TestBotEncryptedRoom(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	alice := newE2EEClient(t, w.alice)
	startBot(t, w, t.TempDir(), map[string]*Command{"echo": {Exec: "/bin/echo", AllowArgs: 2}})
	enc, err := alice.crypto.Encrypt(ctx, w.roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "!web1 echo top secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.SendMessageEvent(ctx, w.roomID, event.EventEncrypted, enc); err != nil {
		t.Fatal(err)
	}
	r := alice.wait(t, w.r.UserID("pusher"), "top secret")
	if !strings.Contains(r.Content.AsMessage().Body, "```\ntop secret\n") {
		t.Fatalf("reply: %q", r.Content.AsMessage().Body)
	}
}

func TestBotRequireVerified(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	alice := newE2EEClient(t, w.alice)
	startBotWith(t, w, t.TempDir(), func(bc *BotConfig) { bc.RequireVerified = true })
	sendEnc := func(text string) {
		t.Helper()
		enc, err := alice.crypto.Encrypt(ctx, w.roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.alice.SendMessageEvent(ctx, w.roomID, event.EventEncrypted, enc); err != nil {
			t.Fatal(err)
		}
	}
	// alice's device is not cross-signed yet: the bot ignores it.
	sendEnc("!web1 ping")
	time.Sleep(time.Second)
	alice.mu.Lock()
	for _, ev := range alice.got {
		if ev.Sender == w.r.UserID("pusher") {
			t.Fatalf("bot answered an unverified device: %q", ev.Content.AsMessage().Body)
		}
	}
	alice.mu.Unlock()
	// Once alice cross-signs her device, her commands are accepted.
	if _, err := alice.crypto.BootstrapCrossSigning(ctx, "password-alice"); err != nil {
		t.Fatal(err)
	}
	sendEnc("!web1 status")
	alice.wait(t, w.r.UserID("pusher"), "commands handled")
}
