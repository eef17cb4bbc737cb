package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/axon-matrix/axon/internal/bench"
)

func benchCommand(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("url", "", "server to benchmark (default: start a fresh one)")
	pid := fs.Int("pid", 0, "process ID of the server at --url, for memory figures")
	scen := fs.String("scenario", "all", "comma-separated scenarios: "+strings.Join(bench.AllScenarios, ", "))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err := bench.Run(ctx, bench.Options{URL: *url, PID: *pid, Scenarios: strings.Split(*scen, ",")}, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "axon bench:", err)
		return 1
	}
	return 0
}
