package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/axon-matrix/axon/internal/appservice"
)

const appserviceUsage = `Usage:
  axon appservice check [FILE...]
                            check the registration files named, or else those
                            of app_service_config_files
  axon appservice list      the registered services and their transaction queues

Application services (bridges) are registered with their registration files
listed in app_service_config_files; see docs/appservices.md. QUEUED counts
transactions not yet accepted by the service (a service that is down keeps
one there, retried, while the rest of its events wait in the event stream).
Every command accepts --config FILE.
`

func appserviceCommand(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, appserviceUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return appserviceCheck(args[1:], os.Stdout)
	case "list":
		return appserviceList(args[1:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(appserviceUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "axon appservice: unknown command %q\n\n%s", args[0], appserviceUsage)
	return 2
}

// appserviceCheck loads the registrations as the server would at start:
// the files named (to check one before adding it to the config), or those
// the config lists. Every problem of every file is printed.
func appserviceCheck(args []string, out io.Writer) int {
	fs, cfgPath := newFlags("appservice check", appserviceUsage)
	files, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	cfg, _, err := cliConfig(*cfgPath)
	if err != nil {
		return cliError("appservice check", err)
	}
	if len(files) == 0 {
		files = cfg.AppServiceConfigFiles
		if len(files) == 0 {
			fmt.Fprintln(out, "no application services registered (app_service_config_files is empty); name files to check them")
			return 0
		}
	}
	regs, err := appservice.LoadRegistrations(files, cfg.ServerName)
	if err != nil {
		// One line per problem, as LoadRegistrations joined them.
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, r := range regs {
		fmt.Fprintf(out, "%s: %s is valid (sender %s)\n", r.File, r.ID, r.Sender)
	}
	return 0
}

func appserviceList(args []string, out io.Writer) int {
	fs, cfgPath := newFlags("appservice list", appserviceUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(os.Stderr, "axon appservice list: takes no arguments\n\n"+appserviceUsage)
		return 2
	}
	cfg, db, err := openForCLI(*cfgPath)
	if err != nil {
		return cliError("appservice list", err)
	}
	defer db.Close()
	regs, err := appservice.LoadRegistrations(cfg.AppServiceConfigFiles, cfg.ServerName)
	if err != nil {
		return cliError("appservice list", err)
	}
	ctx := context.Background()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tSENDER\tNAMESPACES\tEXTRAS\tQUEUED\tOLDEST\tLAST TXN")
	for _, r := range regs {
		queued, oldest, err := db.AppServiceQueue(ctx, r.ID)
		if err != nil {
			return cliError("appservice list", err)
		}
		st, _, err := db.AppServiceState(ctx, r.ID)
		if err != nil {
			return cliError("appservice list", err)
		}
		url, since := r.URL, "-"
		if url == "" {
			url = "(none)"
		}
		if oldest != 0 {
			since = formatTS(oldest)
		}
		var extras []string
		if r.ReceiveEphemeral {
			extras = append(extras, "ephemeral")
		}
		if r.MSC3202 {
			extras = append(extras, "msc3202")
		}
		if !r.RateLimited {
			extras = append(extras, "unlimited")
		}
		if len(r.Protocols) > 0 {
			extras = append(extras, "protocols="+strings.Join(r.Protocols, ","))
		}
		if len(extras) == 0 {
			extras = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d users, %d aliases, %d rooms\t%s\t%d\t%s\t%s\n", r.ID, url, r.Sender,
			len(r.Users), len(r.Aliases), len(r.Rooms), strings.Join(extras, " "), queued, since, strconv.FormatInt(st.LastTxn, 10))
	}
	tw.Flush()
	return 0
}
