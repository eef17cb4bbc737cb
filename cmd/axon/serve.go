package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/server"
)

// loadConfig loads --config FILE, or sets up the default data directory.
func loadConfig(path string) (*config.Config, string, error) {
	if path != "" {
		cfg, err := config.Load(path, os.Getenv)
		return cfg, path, err
	}
	return config.Init(os.Getenv)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// softMemoryLimit is the default Go heap soft limit (GOMEMLIMIT overrides).
const softMemoryLimit = 80 << 20

func serveCommand(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file (default: <data_dir>/axon.yaml, created if missing)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, used, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "axon:", err)
		return 1
	}
	log := newLogger(cfg.LogLevel)
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft heap limit keeps a small server small: the collector works
		// harder near it instead of letting garbage grow the RSS.
		debug.SetMemoryLimit(softMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "axon:", err)
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "axon: listen:", err)
		return 1
	}
	log.Info("axon serving", "server_name", cfg.ServerName, "listen", ln.Addr().String(), "config", used, "data_dir", cfg.DataDir)
	if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
		log.Error("serve", "err", err)
		return 1
	}
	log.Info("axon stopped")
	return 0
}
