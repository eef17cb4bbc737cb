package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/axon-matrix/axon/internal/storage"
)

const reportsUsage = `Usage:
  axon reports list [--all]     open reports (--all: resolved ones too), oldest first
  axon reports resolve ID       mark a report as dealt with

Reports are sent by users about events, rooms and other users
(POST /rooms/{roomId}/report/{eventId}, /rooms/{roomId}/report,
/users/{userId}/report). Every command accepts --config FILE.
`

func reportsCommand(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, reportsUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return reportsList(args[1:])
	case "resolve":
		return reportsResolve(args[1:])
	case "help", "-h", "--help":
		fmt.Print(reportsUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "axon reports: unknown command %q\n\n%s", args[0], reportsUsage)
	return 2
}

func reportsList(args []string) int {
	fs, cfgPath := newFlags("reports list", reportsUsage)
	all := fs.Bool("all", false, "include resolved reports")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(os.Stderr, "axon reports list: takes no arguments\n\n"+reportsUsage)
		return 2
	}
	_, db, err := openForCLI(*cfgPath)
	if err != nil {
		return cliError("reports list", err)
	}
	defer db.Close()
	reps, err := db.ListReports(context.Background(), *all)
	if err != nil {
		return cliError("reports list", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tREPORTED\tBY\tWHEN\tSTATE\tREASON")
	for _, r := range reps {
		target := r.UserID
		switch r.Kind {
		case "room":
			target = r.RoomID
		case "event":
			target = r.EventID + " in " + r.RoomID + " from " + r.UserID
		}
		state := "open"
		if r.ResolvedTS != 0 {
			state = "resolved " + formatTS(r.ResolvedTS)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, target, r.Reporter, formatTS(r.CreatedTS), state, strconv.Quote(r.Reason))
	}
	tw.Flush()
	return 0
}

func reportsResolve(args []string) int {
	fs, cfgPath := newFlags("reports resolve", reportsUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	var id int64
	if len(pos) == 1 {
		id, err = strconv.ParseInt(pos[0], 10, 64)
	}
	if len(pos) != 1 || err != nil || id <= 0 {
		fmt.Fprint(os.Stderr, "axon reports resolve: want exactly one report ID\n\n"+reportsUsage)
		return 2
	}
	_, db, err := openForCLI(*cfgPath)
	if err != nil {
		return cliError("reports resolve", err)
	}
	defer db.Close()
	if err := db.ResolveReport(context.Background(), id, time.Now().UnixMilli()); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = fmt.Errorf("no open report %d", id)
		}
		return cliError("reports resolve", err)
	}
	return 0
}
