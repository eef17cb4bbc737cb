package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/axon-matrix/axon/internal/alerts"
)

const botUsage = `Usage:
  axon bot --config bot.yaml                 run the command bot
  axon bot login --config bot.yaml [--password-stdin] [--recovery-key-stdin]

The bot joins the rooms in its config and answers "!<host> <command> [args]"
or "!all <command>" from the users on its allow list, running only the
commands its config names (no shell). Built-ins: help, ping, uptime, status.
See docs/alerts.md for the configuration and a systemd unit.
`

func botCommand(args []string) int {
	if len(args) > 0 && args[0] == "login" {
		fs := flag.NewFlagSet("bot login", flag.ContinueOnError)
		cfgPath := fs.String("config", "", "")
		pwStdin := fs.Bool("password-stdin", false, "")
		rkStdin := fs.Bool("recovery-key-stdin", false, "")
		if err := fs.Parse(args[1:]); err != nil {
			return alerts.ExitUsage
		}
		bc, err := alerts.LoadBotConfig(*cfgPath, os.Getenv)
		if err != nil {
			return botFail(err)
		}
		return loginAndCrossSign(&bc.Config, *pwStdin, *rkStdin, "axon bot")
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Print(botUsage)
		return 0
	}
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(os.Stderr, botUsage)
		return alerts.ExitUsage
	}
	bc, err := alerts.LoadBotConfig(*cfgPath, os.Getenv)
	if err != nil {
		return botFail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := alerts.NewBot(ctx, bc, log)
	if err != nil {
		return botFail(err)
	}
	defer b.Close()
	log.Info("axon bot running", "user", b.Client().UserID, "device", b.Client().DeviceID, "host", bc.Hostname, "rooms", bc.Rooms)
	if err := b.Run(ctx); err != nil {
		return botFail(err)
	}
	return 0
}

func botFail(err error) int {
	fmt.Fprintf(os.Stderr, "axon bot: %v\n", err)
	return alerts.ExitCode(err)
}
