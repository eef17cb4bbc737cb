package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/media"
	"github.com/axon-matrix/axon/internal/storage"
)

func TestParseBefore(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-31":           time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		"2026-01-31T10:00:00Z": time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC),
		"2d":                   now.Add(-48 * time.Hour),
	} {
		if got, err := parseBefore(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := parseBefore("yesterday", now); err == nil {
		t.Error("yesterday accepted")
	}
}

// TestMediaPurgeCommand uploads media for two users, then purges by user,
// by deactivation and by date through the command.
func TestMediaPurgeCommand(t *testing.T) {
	dir := t.TempDir()
	useCLIDataDir(t, dir)
	ctx := context.Background()
	db := openCLIDB(t, dir)
	for _, u := range []string{"@alice:cli.test", "@bob:cli.test", "@carol:cli.test"} {
		if err := db.CreateUser(ctx, storage.User{UserID: u, Localpart: u[1:strings.IndexByte(u, ':')], CreatedTS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := media.New(db, media.Config{ServerName: "cli.test", Dir: filepath.Join(dir, "media"), MaxUploadBytes: 1 << 20}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		mxc, err := ms.Upload(ctx, media.Upload{UserID: "@" + u + ":cli.test", ContentType: "text/plain", Length: -1, Body: strings.NewReader("from " + u)})
		if err != nil {
			t.Fatal(err)
		}
		ids[u] = mxc[strings.LastIndexByte(mxc, '/')+1:]
	}
	if err := db.DeactivateUser(ctx, "@bob:cli.test"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	gone := func(u string) bool {
		db := openCLIDB(t, dir)
		defer db.Close()
		_, err = db.GetMedia(ctx, ids[u])
		return err == storage.ErrNotFound
	}
	for _, c := range []struct {
		want int
		args []string
	}{
		{2, nil},
		{2, []string{"purge"}},
		{2, []string{"purge", "--before", "someday"}},
		{0, []string{"purge", "--user", "alice"}},
		{0, []string{"purge", "--deactivated"}},
	} {
		if got := mediaCommand(c.args); got != c.want {
			t.Fatalf("%q: exit %d, want %d", c.args, got, c.want)
		}
	}
	if !gone("alice") || !gone("bob") || gone("carol") {
		t.Fatalf("after purge by user and deactivation: alice %v bob %v carol %v", gone("alice"), gone("bob"), gone("carol"))
	}
	if got := mediaCommand([]string{"purge", "--before", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}); got != 0 || !gone("carol") {
		t.Fatalf("purge --before: exit %d, carol gone %v", got, gone("carol"))
	}
}
