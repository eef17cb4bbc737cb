package main

import (
	"context"
	"io"
	"io/fs"
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
		"0d":                   now,
		"0h":                   now,
	} {
		if got, err := parseBefore(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"yesterday", "0", "-1d", "0x"} {
		if _, err := parseBefore(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
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
	// A preview reports what the purge then does, and changes nothing.
	all := media.PurgeFilter{Before: time.Now().Add(time.Hour).UnixMilli()}
	preview, err := ms.PurgePreview(ctx, all)
	if err != nil || preview.Media != 3 || preview.Files != 3 || preview.FreedBytes == 0 {
		t.Fatalf("preview: %+v %v", preview, err)
	}
	if again, _ := ms.PurgePreview(ctx, all); again != preview {
		t.Fatalf("a second preview differs: %+v, then %+v", preview, again)
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
	// A dry run changes nothing: carol's media and its file stay.
	files := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(dir, "media"), func(_ string, d fs.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				n++
			}
			return nil
		})
		return n
	}
	before := files()
	if got := mediaCommand([]string{"purge", "--before", "0d", "--dry-run"}); got != 0 || gone("carol") || files() != before || before == 0 {
		t.Fatalf("purge --before 0d --dry-run: exit %d, carol gone %v, files %d -> %d", got, gone("carol"), before, files())
	}
	if got := mediaCommand([]string{"purge", "--before", "0d"}); got != 0 || !gone("carol") || files() != 0 {
		t.Fatalf("purge --before 0d: exit %d, carol gone %v, %d files left", got, gone("carol"), files())
	}
}
