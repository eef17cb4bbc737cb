// Command axon is the Axon homeserver and its tools in one binary.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
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
  axon version | --version            the release, commit and build tags of this binary
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
	case "version", "--version", "-version", "-v":
		fmt.Println(versionLine())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "axon: unknown command %q\n\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}

// version is the release, and commit the commit it was built from, for
// builds without Go's VCS stamping (-buildvcs=false, a source tarball): a
// release build sets them with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "0.1.0-dev"
	commit  = ""
)

// versionLine says which build this is: the release, and from the build
// information Go records in the binary the commit (with "dirty" for
// uncommitted changes), its time, the build tags (goolm: whether axon
// notify and axon bot can encrypt) and the Go version.
func versionLine() string {
	line := "axon " + version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return line
	}
	rev, when, tags := commit, "", ""
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		case "-tags":
			tags = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		line += " commit " + rev
		if when != "" {
			line += " (" + when + ")"
		}
	} else {
		line += " commit unknown (built without -buildvcs)"
	}
	if tags == "" {
		tags = "none"
	}
	return line + ", build tags: " + tags + ", " + info.GoVersion
}
