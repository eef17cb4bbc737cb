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

// loadConfig loads --config FILE, or sets up the default data directory
// (AXON_DATA_DIR or ./axon-data), saying what it created. Only serve uses
// it: the other commands must not set up a server (cliConfig).
func loadConfig(path string) (*config.Config, string, config.Created, error) {
	if path != "" {
		cfg, err := config.Load(path, os.Getenv)
		return cfg, path, config.Created{}, err
	}
	return config.Init(os.Getenv)
}

// cliConfig loads the configuration for a command other than serve:
// --config FILE, else the axon.yaml of the data directory if there is one.
// It creates nothing. source says where the settings came from, for errors.
func cliConfig(path string) (cfg *config.Config, source string, err error) {
	if path != "" {
		cfg, err = config.Load(path, os.Getenv)
		return cfg, path, err
	}
	cfg, found, err := config.Find(os.Getenv)
	switch {
	case found != "":
		source = found
	case os.Getenv("AXON_DATA_DIR") != "":
		source = "AXON_DATA_DIR"
	default:
		source = "the default data_dir, " + config.DefaultDataDir + " in the current directory"
	}
	return cfg, source, err
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
	cfg, used, created, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "axon:", err)
		return 1
	}
	log := newLogger(cfg.LogLevel)
	if created.DataDir {
		log.Info("created a new data directory: a new server with no accounts", "data_dir", cfg.DataDir)
	}
	if created.ConfigFile {
		log.Info("wrote the default configuration, with every setting explained", "config", used)
	}
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
