package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/alerts"
)

const notifyUsage = `Usage:
  axon notify [flags] MESSAGE...     post "<hostname>: MESSAGE" to the configured room
  axon notify [flags] [-]            read the message from standard input
  axon notify login [--password-stdin] [--recovery-key-stdin]
  axon notify setup --homeserver URL --user NAME --invite @you:server [--register]
                    [--registration-token T] [--unencrypted] [--room-name NAME] [--password-stdin]
  axon notify flush                  deliver spooled alerts now
  axon notify status                 show the session and the spool

A subcommand may come before or after the flags. A message that is one of
these words goes after --: axon notify -- status

Flags:
  --config FILE      configuration (default /etc/axon/notify.yaml, ~/.config/axon/notify.yaml)
  --room ROOM        room ID (!...) or alias (#...) instead of the configured one
  --title TEXT       a title line above the message
  --level LEVEL      info (default), warning, or critical (mentions people: pushes as a highlight)
  --markdown         render the message as Markdown (sent as sanitised HTML)
  --text             send m.text instead of m.notice (notices do not ping bots)
  --no-hostname      do not prefix the message with this machine's name
  --file PATH        also send this file (encrypted in encrypted rooms)

Environment: AXON_NOTIFY_HOMESERVER, AXON_NOTIFY_USER, AXON_NOTIFY_PASSWORD_FILE,
AXON_NOTIFY_TOKEN, AXON_NOTIFY_ROOM, AXON_NOTIFY_STATE_DIR, AXON_NOTIFY_HOSTNAME.

Exit codes: 0 delivered; 2 usage; 3 configuration; 4 authentication (alert kept
in the spool); 5 room missing or not allowed; 6 encrypted room but no encryption
in this build; 75 temporarily undelivered, kept in the spool; 1 anything else.
`

// maxStdin bounds a message read from standard input (events are at most 64 KiB).
const maxStdin = 32 << 10

// notifySubcommands are the words that are commands, not messages, when
// they are the first argument that is not a flag.
var notifySubcommands = map[string]func([]string) int{
	"login": notifyLogin, "setup": notifySetup, "flush": notifyFlush, "status": notifyStatus,
}

func notifyCommand(args []string) int {
	fs, cfgPath, a := notifyFlags()
	sub, subArgs := splitSubcommand(fs, args)
	switch sub {
	case "help", "-h", "--help":
		fmt.Print(notifyUsage)
		return 0
	case "":
	default:
		return notifySubcommands[sub](subArgs)
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "axon notify: %v\n\n%s", err, notifyUsage)
		return alerts.ExitUsage
	}
	if len(rest) == 0 || (len(rest) == 1 && rest[0] == "-") {
		if len(rest) == 0 && term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Fprint(os.Stderr, "axon notify: no message (give one, or pipe it in)\n\n"+notifyUsage)
			return alerts.ExitUsage
		}
		msg, err := readMessage(os.Stdin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "axon notify: stdin: %v\n", err)
			return alerts.ExitFailure
		}
		a.Message = msg
	} else {
		a.Message = strings.Join(rest, " ")
	}
	cfg, err := loadNotifyConfig(*cfgPath)
	if err != nil {
		return notifyFail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := alerts.Notify(ctx, cfg, *a)
	if res.Flushed > 0 {
		fmt.Fprintf(os.Stderr, "axon notify: delivered %d spooled alert(s)\n", res.Flushed)
	}
	if err != nil {
		return notifyFail(err)
	}
	return alerts.ExitOK
}

// notifyFlags is the flag set of sending an alert.
func notifyFlags() (*flag.FlagSet, *string, *alerts.Alert) {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "")
	var a alerts.Alert
	fs.StringVar(&a.Room, "room", "", "")
	fs.StringVar(&a.Title, "title", "", "")
	fs.StringVar(&a.Level, "level", "info", "")
	fs.BoolVar(&a.Markdown, "markdown", false, "")
	fs.BoolVar(&a.Text, "text", false, "")
	fs.Bool("notice", true, "") // the default; --text overrides it
	fs.BoolVar(&a.NoHostname, "no-hostname", false, "")
	fs.StringVar(&a.File, "file", "", "")
	return fs, cfgPath, &a
}

// splitSubcommand finds a subcommand wherever the flags put it: it is the
// first argument that is neither a flag nor a flag's value, before any
// "--". `axon notify --config F status` then means what `axon notify
// status --config F` means, instead of sending the word "status" as an
// alert; a message that is such a word goes after "--". It returns "" when
// the arguments are a message, else the subcommand and every other
// argument, for the subcommand's own flags to parse (or refuse).
func splitSubcommand(fs *flag.FlagSet, args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return "", nil
		}
		if arg == "-h" || arg == "--help" || arg == "-help" {
			return "help", nil
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			if _, ok := notifySubcommands[arg]; ok || arg == "help" {
				return arg, append(slices.Clone(args[:i]), args[i+1:]...)
			}
			return "", nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			return "", nil // an unknown flag: the parser says so
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			i++ // its value
		}
	}
	return "", nil
}

// subcommandArgs parses a subcommand's flags, given before or after it,
// and refuses arguments it does not take: `axon notify status of backup`
// is a mistaken alert, not a status query to run silently.
// --help prints the subcommand's flags with their descriptions.
func subcommandArgs(fs *flag.FlagSet, name string, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard) // the error is printed below, once
	rest, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fmt.Printf("Usage: axon notify %s [flags]\n\nFlags:\n", name)
		fs.PrintDefaults()
		return alerts.ExitOK, false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "axon notify %s: %v\n", name, err)
		return alerts.ExitUsage, false
	}
	if len(rest) > 0 {
		fmt.Fprintf(os.Stderr, "axon notify %s: takes no arguments (got %q); to send a message that starts with %q, put -- before it: axon notify -- %s %s\n",
			name, rest, name, name, strings.Join(rest, " "))
		return alerts.ExitUsage, false
	}
	return 0, true
}

// loadNotifyConfig loads the notify configuration. With no --config, no
// default file and no AXON_NOTIFY_HOMESERVER there is nothing to work
// with: say so, and how to make one, rather than fail on (or print) empty
// fields.
func loadNotifyConfig(path string) (*alerts.Config, error) {
	cfg, err := alerts.LoadConfig(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	if path == "" && cfg.Homeserver == "" {
		return nil, fmt.Errorf("%w: no notify.yaml found (looked for %s) and AXON_NOTIFY_HOMESERVER is not set: run `axon notify setup`, or give --config FILE",
			alerts.ErrConfig, strings.Join(alerts.DefaultConfigPaths(os.Getenv("HOME")), " and "))
	}
	return cfg, nil
}

func notifyFail(err error) int {
	fmt.Fprintf(os.Stderr, "axon notify: %v\n", err)
	return alerts.ExitCode(err)
}

// readMessage reads standard input, keeping at most maxStdin bytes.
func readMessage(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxStdin+1))
	if err != nil {
		return "", err
	}
	msg := string(data)
	if len(data) > maxStdin {
		msg = strings.ToValidUTF8(string(data[:maxStdin]), "") + "\n… (truncated)"
		_, _ = io.Copy(io.Discard, r)
	}
	return strings.TrimRight(msg, "\n"), nil
}

// parseInterspersed parses flags anywhere among the arguments
// (axon notify "disk full" --level critical); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

func notifyLogin(args []string) int {
	fs := flag.NewFlagSet("notify login", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `FILE` (default /etc/axon/notify.yaml, ~/.config/axon/notify.yaml)")
	pwStdin := fs.Bool("password-stdin", false, "read the bot's password from standard input instead of prompting")
	rkStdin := fs.Bool("recovery-key-stdin", false, "then read the recovery key from standard input, to sign this device")
	if code, ok := subcommandArgs(fs, "login", args); !ok {
		return code
	}
	cfg, err := loadNotifyConfig(*cfgPath)
	if err != nil {
		return notifyFail(err)
	}
	return loginAndCrossSign(cfg, *pwStdin, *rkStdin, "axon notify")
}

func loginAndCrossSign(cfg *alerts.Config, pwStdin, rkStdin bool, who string) int {
	in := bufio.NewReader(os.Stdin)
	pw, err := readSecret(in, pwStdin, "Password for "+cfg.User+": ")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		return alerts.ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	user, device, err := alerts.Login(ctx, cfg, pw)
	if err != nil {
		return notifyFail(err)
	}
	fmt.Printf("logged in as %s, device %s; session in %s\n", user, device, cfg.StateDir)
	if !alerts.CryptoSupported() {
		fmt.Println("this build has no end-to-end encryption (build with -tags goolm)")
		return alerts.ExitOK
	}
	var rk string
	if rkStdin {
		if rk, err = readSecret(in, true, ""); err != nil {
			return notifyFail(err)
		}
	}
	key, err := alerts.CrossSign(ctx, cfg, pw, rk)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "%s: cross-signing not set up (alerts still work, shown as unverified): %v\n", who, err)
	case rk != "":
		fmt.Println("this device is now signed with the bot's cross-signing keys")
	case key != "":
		fmt.Printf("cross-signing set up and this device signed.\nRECOVERY KEY (shown once; keep it to sign the bot's devices on other machines):\n  %s\n", key)
	default:
		fmt.Println("the account already has cross-signing keys: sign this device with --recovery-key-stdin")
	}
	return alerts.ExitOK
}

// readSecret reads one line from stdin (fromStdin) or prompts on the terminal.
func readSecret(in *bufio.Reader, fromStdin bool, prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !fromStdin && term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	line, err := in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func notifySetup(args []string) int {
	fs := flag.NewFlagSet("notify setup", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `FILE` to write (default ~/.config/axon/notify.yaml; as root /etc/axon/notify.yaml)")
	homeserver := fs.String("homeserver", "", "`URL` of the bot account's homeserver, e.g. https://matrix.example.org")
	user := fs.String("user", "", "the bot account: a `NAME` (localpart) or full user ID")
	register := fs.Bool("register", false, "register the bot account first (the server must allow registration)")
	token := fs.String("registration-token", "", "registration `TOKEN`, for servers with registration: token")
	unencrypted := fs.Bool("unencrypted", false, "create an unencrypted room (for builds or clients without encryption)")
	roomName := fs.String("room-name", "PushNotifications", "`NAME` of the room created")
	pwStdin := fs.Bool("password-stdin", false, "read the bot's password from standard input instead of prompting")
	var invites []id.UserID
	fs.Func("invite", "invite `@you:server` to the room (repeat for more people)", func(s string) error {
		if _, _, err := id.UserID(s).Parse(); err != nil {
			return fmt.Errorf("--invite %q: want a user ID like @you:example.org", s)
		}
		invites = append(invites, id.UserID(s))
		return nil
	})
	if code, ok := subcommandArgs(fs, "setup", args); !ok {
		return code
	}
	cfg, err := alerts.LoadConfig(optionalConfig(*cfgPath), os.Getenv)
	if err != nil {
		return notifyFail(err)
	}
	if *homeserver != "" {
		cfg.Homeserver = strings.TrimRight(*homeserver, "/")
	}
	if *user != "" {
		cfg.User = *user
	}
	pw, err := readSecret(bufio.NewReader(os.Stdin), *pwStdin, "Password for "+cfg.User+": ")
	if err != nil {
		return notifyFail(err)
	}
	write := *cfgPath
	if write == "" {
		home, _ := os.UserHomeDir()
		write = alerts.DefaultConfigPaths(home)[len(alerts.DefaultConfigPaths(home))-1]
		if os.Geteuid() == 0 {
			write = alerts.DefaultConfigPaths(home)[0]
		}
	}
	if note := rootDefaultsNote(os.Geteuid(), *cfgPath, write, cfg.StateDir); note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := alerts.Setup(ctx, cfg, alerts.SetupOptions{Password: pw, Register: *register, RegistrationToken: *token,
		RoomName: *roomName, Invite: invites, Encrypted: !*unencrypted, WriteConfig: write})
	if err != nil {
		return notifyFail(err)
	}
	fmt.Printf("bot %s (device %s) posts to room %s\n", res.UserID, res.DeviceID, res.RoomID)
	if res.ConfigWrote {
		fmt.Printf("wrote %s\n", write)
	} else {
		fmt.Printf("%s exists: add   room: %q   to it\n", write, res.RoomID)
	}
	if res.RecoveryKey != "" {
		fmt.Printf("RECOVERY KEY (shown once; keep it to sign the bot's devices on other machines):\n  %s\n", res.RecoveryKey)
	}
	if res.CrossSignErr != nil {
		fmt.Fprintf(os.Stderr, "note: cross-signing not set up: %v\n", res.CrossSignErr)
	}
	return alerts.ExitOK
}

// rootDefaultsNote says, when setup runs as root without naming the
// places, that it uses the system-wide ones, which a user who just typed
// sudo may not expect.
func rootDefaultsNote(euid int, cfgFlag, write, stateDir string) string {
	if euid != 0 {
		return ""
	}
	var parts []string
	if cfgFlag == "" {
		parts = append(parts, "the configuration to "+write)
	}
	if strings.HasPrefix(stateDir, "/var/lib/axon") {
		parts = append(parts, "the session and spool to "+stateDir)
	}
	if len(parts) == 0 {
		return ""
	}
	return "axon notify setup: running as root, so writing " + strings.Join(parts, " and ") +
		" (the system-wide places; --config and AXON_NOTIFY_STATE_DIR choose others)"
}

// optionalConfig lets setup name a config file that does not exist yet.
func optionalConfig(path string) string {
	if path == "" {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return os.DevNull
	}
	return path
}

func notifyFlush(args []string) int {
	fs := flag.NewFlagSet("notify flush", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `FILE` (default /etc/axon/notify.yaml, ~/.config/axon/notify.yaml)")
	if code, ok := subcommandArgs(fs, "flush", args); !ok {
		return code
	}
	cfg, err := loadNotifyConfig(*cfgPath)
	if err != nil {
		return notifyFail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := alerts.Flush(ctx, cfg)
	fmt.Printf("delivered %d spooled alert(s)\n", n)
	if err != nil {
		return notifyFail(err)
	}
	return alerts.ExitOK
}

func notifyStatus(args []string) int {
	fs := flag.NewFlagSet("notify status", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration `FILE` (default /etc/axon/notify.yaml, ~/.config/axon/notify.yaml)")
	if code, ok := subcommandArgs(fs, "status", args); !ok {
		return code
	}
	cfg, err := loadNotifyConfig(*cfgPath)
	if err != nil {
		return notifyFail(err)
	}
	n, err := alerts.Spooled(cfg)
	if err != nil {
		return notifyFail(err)
	}
	fmt.Printf("homeserver: %s\nuser: %s\nroom: %s\nstate directory: %s\nspooled alerts: %d\nencryption: %v\n",
		cfg.Homeserver, cfg.User, cfg.Room, cfg.StateDir, n, alerts.CryptoSupported())
	return alerts.ExitOK
}
