package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/axon-matrix/axon/internal/bench"
)

const benchUsage = `Usage:
  axon bench [--url URL [--pid PID]] [--scenario NAME,...]

Measures a server over HTTP on loopback, as Matrix clients would, and checks
each figure against its target (SQLite, rate limits off, 2 cores). Without
--url it starts a fresh server of this binary in a temporary directory.

Scenarios (all by default, in this order):
  send-sequential   20 users take turns sending 1000 messages into one room:
                    messages/s (target >= 1000) and send latency (p99 <= 10 ms)
  send-concurrent   50 users send 20 messages each at once: messages/s (>= 1500)
  sync-fanout       200 clients long-poll /sync in one room while 50 messages are
                    sent 100 ms apart: delivery latency (p99 <= 100 ms, max <= 1 s)
                    and everything delivered within 1 s of the last send
  initial-sync      a user in 100 rooms of 20 messages each: median initial /sync
                    (<= 100 ms)
  joins             300 users join one room, 10 at a time: joins/s (>= 300)
Memory (RSS idle <= 30 MiB, at the end <= 120 MiB) is measured for a server
it starts, or for --pid.

Flags:
  --url URL         benchmark the server running at URL (needs open registration
                    and rate_limits off) instead of starting one
  --pid PID         process ID of the server at --url, for the memory figures
  --scenario LIST   comma-separated scenarios, or all

Exit codes: 0 every target met; 3 a target missed (the table shows which);
1 the benchmark could not run (a request failed, the server died); 2 usage.
`

// Exit codes of axon bench.
const (
	benchExitMet    = 0
	benchExitFailed = 1
	benchExitUsage  = 2
	benchExitMissed = 3
)

func benchCommand(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "")
	pid := fs.Int("pid", 0, "")
	scen := fs.String("scenario", "all", "")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Print(benchUsage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "axon bench: %v\n\n%s", err, benchUsage)
		return benchExitUsage
	}
	if fs.NArg() > 0 {
		if fs.Arg(0) == "help" {
			fmt.Print(benchUsage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "axon bench: unexpected argument %q\n\n%s", fs.Arg(0), benchUsage)
		return benchExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, bench.Options{URL: *url, PID: *pid, Scenarios: strings.Split(*scen, ",")}, os.Stdout)
	return benchExit(res, err, os.Stderr)
}

// benchExit turns the outcome into the exit code, so that a script or CI
// job running the benchmark notices a missed target, not only a crash.
func benchExit(res *bench.Results, err error, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, "axon bench:", err)
		return benchExitFailed
	}
	var missed []string
	for _, c := range res.Checks {
		if c.HasTarget && !c.Pass {
			missed = append(missed, c.Scenario+" "+c.Figure)
		}
	}
	if len(missed) > 0 {
		fmt.Fprintf(stderr, "axon bench: %d target(s) missed: %s\n", len(missed), strings.Join(missed, ", "))
		return benchExitMissed
	}
	return benchExitMet
}
