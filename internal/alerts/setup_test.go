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

	"github.com/axon-matrix/axon/internal/testrig"
)

func TestSetupRegistersCreatesRoomAndWritesConfig(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := r.CreateUser("alice")
	cfg := &Config{Homeserver: r.URL, User: "pusher", StateDir: t.TempDir(), Hostname: "web1", DeviceName: "setup test", RetryFor: time.Second}
	write := filepath.Join(t.TempDir(), "axon", "notify.yaml")
	res, err := Setup(ctx, cfg, SetupOptions{Password: "long enough password", Register: true, Invite: []id.UserID{alice.UserID},
		Encrypted: true, WriteConfig: write})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if res.UserID != r.UserID("pusher") || res.RoomID == "" || !res.ConfigWrote {
		t.Fatalf("result: %+v", res)
	}
	if CryptoSupported() {
		if res.CrossSignErr != nil || res.RecoveryKey == "" {
			t.Fatalf("cross-signing: %q %v", res.RecoveryKey, res.CrossSignErr)
		}
	} else if !errors.Is(res.CrossSignErr, ErrNoCrypto) {
		t.Fatalf("without goolm: %v", res.CrossSignErr)
	}
	sync, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sync.Rooms.Invite[res.RoomID]; !ok {
		t.Fatal("alice not invited")
	}
	testrig.Join(t, res.RoomID, alice)
	var enc event.EncryptionEventContent
	if err := alice.StateEvent(ctx, res.RoomID, event.StateEncryption, "", &enc); err != nil || enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Fatalf("room not encrypted: %v %+v", err, enc)
	}
	loaded, err := LoadConfig(write, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Room != res.RoomID.String() || loaded.Homeserver != r.URL || loaded.User != r.UserID("pusher").String() {
		t.Fatalf("written config: %+v", loaded)
	}
	// Setting up again with an existing account logs in and keeps the file.
	if _, err := Setup(ctx, cfg, SetupOptions{Password: "long enough password", Register: true, WriteConfig: write}); err != nil {
		t.Fatalf("second setup: %v", err)
	}
	// Wrong password: an authentication error.
	cfg.StateDir = t.TempDir()
	if _, err := Setup(ctx, cfg, SetupOptions{Password: "wrong"}); ExitCode(err) != ExitAuth {
		t.Fatalf("wrong password: %d %v", ExitCode(err), err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.yaml")
	if err := os.WriteFile(path, []byte("homeserver: https://m.example.org/\nuser: pusher\nroom: '#ops:example.org'\nmentions: ['@a:example.org']\nretry_for: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AXON_NOTIFY_ROOM": "!env:example.org", "HOME": dir, "AXON_NOTIFY_STATE_DIR": filepath.Join(dir, "state")}
	cfg, err := LoadConfig(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Homeserver != "https://m.example.org" || cfg.Room != "!env:example.org" || cfg.RetryFor != 3*time.Second ||
		len(cfg.Mentions) != 1 || cfg.StateDir != filepath.Join(dir, "state") || cfg.Hostname == "" {
		t.Fatalf("config: %+v", cfg)
	}
	if err := os.WriteFile(path, []byte("homeserver: x\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path, func(string) string { return "" }); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), func(string) string { return "" }); ExitCode(err) != ExitConfig {
		t.Fatalf("missing file: %v", err)
	}
	bot := filepath.Join(dir, "bot.yaml")
	if err := os.WriteFile(bot, []byte("homeserver: https://m.example.org\nuser: pusher\nrooms: ['!r:example.org']\nallow: ['@a:example.org']\ncommands:\n  df: {exec: /bin/df, args: [-h]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bc, err := LoadBotConfig(bot, func(k string) string { return map[string]string{"HOME": dir}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if bc.Commands["df"].Timeout != 30*time.Second || bc.RatePerMinute != 10 || !strings.HasSuffix(bc.StateDir, "bot") {
		t.Fatalf("bot config defaults: %+v", bc)
	}
}
