package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/axon-matrix/axon/internal/media"
)

const mediaUsage = `Usage:
  axon media purge [--before DATE] [--user USER] [--deactivated] [--dry-run]

purge deletes uploaded media and the files no remaining media uses.
--before DATE   media uploaded before DATE: 2026-01-31, an RFC 3339 time, or
                an age such as 90d or 720h (0d: everything uploaded until now)
--user USER     media uploaded by USER (@alice:example.org or alice)
--deactivated   media uploaded by deactivated users
--dry-run       say what would be purged and freed, and change nothing
Given together, the conditions must all hold. At least one is required.
Every command accepts --config FILE (as for axon serve).
`

func mediaCommand(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, mediaUsage)
		return 2
	}
	switch args[0] {
	case "purge":
		return mediaPurge(args[1:])
	case "help", "-h", "--help":
		fmt.Print(mediaUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "axon media: unknown command %q\n\n%s", args[0], mediaUsage)
	return 2
}

// parseBefore reads a date, a timestamp or an age.
func parseBefore(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.UTC); err == nil {
		return t, nil
	}
	if d, err := parseLongDuration(s); err == nil {
		return now.Add(-d), nil
	}
	// An age of zero (0d, 0h) is every upload until now; token lifetimes,
	// which parseLongDuration also reads, cannot be zero.
	if n, err := strconv.ParseFloat(strings.TrimRight(s, "dhms"), 64); err == nil && n == 0 && s != strings.TrimRight(s, "dhms") {
		return now, nil
	}
	return time.Time{}, fmt.Errorf("invalid --before %q (use 2026-01-31, an RFC 3339 time, or an age such as 90d)", s)
}

func mediaPurge(args []string) int {
	fs, cfgPath := newFlags("media purge", mediaUsage)
	before := fs.String("before", "", "purge media uploaded before this date or age")
	user := fs.String("user", "", "purge media uploaded by this user")
	deactivated := fs.Bool("deactivated", false, "purge media of deactivated users")
	dryRun := fs.Bool("dry-run", false, "report what would be purged, change nothing")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 || (*before == "" && *user == "" && !*deactivated) {
		fmt.Fprint(os.Stderr, "axon media purge: give --before, --user or --deactivated\n\n"+mediaUsage)
		return 2
	}
	var f media.PurgeFilter
	if *before != "" {
		t, err := parseBefore(*before, time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, "axon media purge:", err)
			return 2
		}
		f.Before = t.UnixMilli()
	}
	cfg, db, err := openForCLI(*cfgPath)
	if err != nil {
		return cliError("media purge", err)
	}
	defer db.Close()
	if *user != "" {
		f.UserID = *user
		if !strings.HasPrefix(f.UserID, "@") {
			f.UserID = "@" + f.UserID + ":" + cfg.ServerName
		}
	}
	f.Deactivated = *deactivated
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ms, err := media.New(db, media.Config{ServerName: cfg.ServerName, Dir: cfg.Media.Dir, MaxUploadBytes: cfg.Media.MaxUploadBytes}, log)
	if err != nil {
		return cliError("media purge", err)
	}
	if *dryRun {
		res, err := ms.PurgePreview(context.Background(), f)
		if err != nil {
			return cliError("media purge", err)
		}
		fmt.Printf("Would purge %d media (%d bytes) and remove %d files, freeing %d bytes (dry run: nothing changed)\n",
			res.Media, res.Bytes, res.Files, res.FreedBytes)
		return 0
	}
	res, err := ms.Purge(context.Background(), f)
	if err != nil {
		return cliError("media purge", err)
	}
	fmt.Printf("Purged %d media (%d bytes); removed %d files, freeing %d bytes\n", res.Media, res.Bytes, res.Files, res.FreedBytes)
	return 0
}
