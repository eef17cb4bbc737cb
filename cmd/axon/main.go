// Command axon is the Axon homeserver and its tools in one binary.
package main

import (
	"fmt"
	"os"
)

const usage = `axon — a Matrix homeserver

Usage:
  axon serve [--config FILE]          run the homeserver
  axon user create|list|deactivate|reset-password|lock|unlock|suspend|unsuspend ...
                                      accounts (axon user help)
  axon token create|list|revoke ...   registration tokens
  axon media purge --before DATE | --user USER | --deactivated
  axon reports list [--all] | resolve ID   abuse reports sent by users
  axon appservice check|list          application services (bridges) and their queues
  axon bench [--url URL] [--scenario NAME]...   load benchmark
  axon notify [flags] MESSAGE         post an alert from this machine to a room (axon notify help)
  axon bot --config FILE              answer allow-listed commands from a room (axon bot help)
  axon version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	var code int
	switch os.Args[1] {
	case "serve":
		code = serveCommand(args)
	case "user":
		code = userCommand(args)
	case "token":
		code = tokenCommand(args)
	case "media":
		code = mediaCommand(args)
	case "reports":
		code = reportsCommand(args)
	case "appservice":
		code = appserviceCommand(args)
	case "bench":
		code = benchCommand(args)
	case "notify":
		code = notifyCommand(args)
	case "bot":
		code = botCommand(args)
	case "version":
		fmt.Println("axon", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "axon: unknown command %q\n\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}

var version = "0.1.0-dev"
