package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/server"
	"github.com/axon-matrix/axon/internal/storage"
)

const userUsage = `Usage:
  axon user create NAME [--admin] [--displayname NAME] [--password-stdin]
  axon user list
  axon user deactivate NAME
  axon user reset-password NAME [--password-stdin]
  axon user lock NAME         only logging out works until unlocked
  axon user unlock NAME
  axon user suspend NAME      reading works; sending, joining, inviting,
                              profile changes and uploads do not
  axon user unsuspend NAME

NAME is a localpart (alice) or a full user ID (@alice:example.org).
Passwords are prompted for on the terminal, or read as one line from
standard input with --password-stdin; they are never taken from the
command line, where other users could see them in the process list.
Every command accepts --config FILE (as for axon serve).
`

// openForCLI loads the configuration as `axon serve` does (--config FILE,
// else the data directory from AXON_DATA_DIR) and opens the database.
// Commands change the database directly, so they work whether or not the
// server is running: SQLite serialises the writers. They never create a
// database: one missing means the command was pointed at the wrong place,
// and a new empty server there would hide that.
func openForCLI(cfgPath string) (*config.Config, *storage.DB, error) {
	cfg, source, err := cliConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	path := cfg.DatabasePath()
	if path == "" {
		return nil, nil, fmt.Errorf("database %q: only SQLite databases are supported by this command", cfg.Database)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		where := cfg.DataDir
		if abs, err := filepath.Abs(where); err == nil {
			where = abs
		}
		return nil, nil, fmt.Errorf("no Axon server in %s: there is no database %s (settings from %s). "+
			"Run the command where the server's data is, give --config with the server's axon.yaml or set AXON_DATA_DIR; "+
			"axon serve creates a new server", where, path, source)
	}
	db, err := storage.OpenWith(context.Background(), path, storage.Options{Synchronous: cfg.DatabaseSynchronous})
	if err != nil {
		return nil, nil, err
	}
	if err := server.CheckServerName(context.Background(), db, cfg.ServerName); err != nil {
		db.Close()
		return nil, nil, err
	}
	return cfg, db, nil
}

// cliAccounts opens the database and the account service over it.
func cliAccounts(cfgPath string) (*account.Service, func(), error) {
	cfg, db, err := openForCLI(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return account.New(db, cfg, log), func() { db.Close() }, nil
}

// parseArgs parses flags that may come before, between or after the
// positional arguments (`axon user create alice --admin`), which the flag
// package alone does not allow.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// cliError prints err for a human: Matrix errors by their message alone.
func cliError(prefix string, err error) int {
	if e, ok := mxerr.As(err); ok {
		fmt.Fprintf(os.Stderr, "axon %s: %s\n", prefix, e.Msg)
	} else {
		fmt.Fprintf(os.Stderr, "axon %s: %v\n", prefix, err)
	}
	return 1
}

func userCommand(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, userUsage)
		return 2
	}
	switch args[0] {
	case "create":
		return userCreate(args[1:])
	case "list":
		return userList(args[1:])
	case "deactivate":
		return userDeactivate(args[1:])
	case "reset-password":
		return userResetPassword(args[1:])
	case "lock":
		return userRestrict(args[1:], "lock", account.Lock, true)
	case "unlock":
		return userRestrict(args[1:], "unlock", account.Lock, false)
	case "suspend":
		return userRestrict(args[1:], "suspend", account.Suspend, true)
	case "unsuspend":
		return userRestrict(args[1:], "unsuspend", account.Suspend, false)
	case "help", "-h", "--help":
		fmt.Print(userUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "axon user: unknown command %q\n\n%s", args[0], userUsage)
	return 2
}

// newFlags makes a flag set with the shared --config flag.
func newFlags(name, usage string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	return fs, fs.String("config", "", "configuration file")
}

func userCreate(args []string) int {
	fs, cfgPath := newFlags("user create", userUsage)
	admin := fs.Bool("admin", false, "make the user a server administrator")
	displayName := fs.String("displayname", "", "display name (default: the localpart)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(os.Stderr, "axon user create: want exactly one NAME\n\n"+userUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("user create", err)
	}
	defer closeDB()
	ctx := context.Background()
	localpart, err := acc.LocalpartFromName(pos[0])
	if err != nil {
		return cliError("user create", err)
	}
	// Check before asking for a password that would be thrown away.
	if err := acc.UsernameAvailable(ctx, localpart); err != nil {
		return cliError("user create", err)
	}
	pw, err := readNewPassword(*fromStdin, "Password for "+acc.UserID(localpart))
	if err != nil {
		return cliError("user create", err)
	}
	userID, err := acc.CreateAccount(ctx, account.NewAccount{Localpart: localpart, Password: pw, Admin: *admin, DisplayName: *displayName})
	if err != nil {
		return cliError("user create", err)
	}
	kind := "user"
	if *admin {
		kind = "administrator"
	}
	fmt.Printf("Created %s %s\n", kind, userID)
	return 0
}

func userList(args []string) int {
	fs, cfgPath := newFlags("user list", userUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprint(os.Stderr, "axon user list: takes no arguments\n\n"+userUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("user list", err)
	}
	defer closeDB()
	users, err := acc.Users(context.Background())
	if err != nil {
		return cliError("user list", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER ID\tADMIN\tSTATUS\tCREATED\tDISPLAY NAME")
	for _, u := range users {
		status := "active"
		switch {
		case u.Deactivated:
			status = "deactivated"
		case u.Locked && u.Suspended:
			status = "locked,suspended"
		case u.Locked:
			status = "locked"
		case u.Suspended:
			status = "suspended"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.UserID, yesNo(u.IsAdmin), status,
			time.UnixMilli(u.CreatedTS).UTC().Format("2006-01-02 15:04"), u.DisplayName)
	}
	tw.Flush()
	return 0
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// resolveExisting turns NAME into the user ID of an existing account.
func resolveExisting(ctx context.Context, acc *account.Service, name string) (string, error) {
	userID, ok := acc.ResolveUser(name)
	if !ok {
		return "", fmt.Errorf("%q is not a user of %s", name, acc.ServerName())
	}
	if _, err := acc.GetProfile(ctx, userID); err != nil {
		return "", fmt.Errorf("no such user %s", userID)
	}
	return userID, nil
}

func userDeactivate(args []string) int {
	fs, cfgPath := newFlags("user deactivate", userUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(os.Stderr, "axon user deactivate: want exactly one NAME\n\n"+userUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("user deactivate", err)
	}
	defer closeDB()
	ctx := context.Background()
	userID, err := resolveExisting(ctx, acc, pos[0])
	if err != nil {
		return cliError("user deactivate", err)
	}
	// No room events from here: a running server owns the rooms'
	// in-memory heads. The server leaves the rooms of deactivated users.
	if err := acc.DeactivateAccount(ctx, nil, userID); err != nil {
		return cliError("user deactivate", err)
	}
	fmt.Printf("Deactivated %s: it can no longer log in and all its sessions have ended.\n", userID)
	return 0
}

func userResetPassword(args []string) int {
	fs, cfgPath := newFlags("user reset-password", userUsage)
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprint(os.Stderr, "axon user reset-password: want exactly one NAME\n\n"+userUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError("user reset-password", err)
	}
	defer closeDB()
	ctx := context.Background()
	userID, err := resolveExisting(ctx, acc, pos[0])
	if err != nil {
		return cliError("user reset-password", err)
	}
	pw, err := readNewPassword(*fromStdin, "New password for "+userID)
	if err != nil {
		return cliError("user reset-password", err)
	}
	if err := acc.ResetPassword(ctx, userID, pw); err != nil {
		return cliError("user reset-password", err)
	}
	fmt.Printf("Password of %s changed; all its sessions were logged out.\n", userID)
	return 0
}

// restrictionDone says what a restriction change means for the account.
var restrictionDone = map[string]string{
	"lock":      "Locked %s: its sessions are kept, but every request except logging out is refused until it is unlocked.\n",
	"unlock":    "Unlocked %s.\n",
	"suspend":   "Suspended %s: it can read and leave rooms, but not send, join, invite, change its profile or upload.\n",
	"unsuspend": "Unsuspended %s.\n",
}

// userRestrict locks, unlocks, suspends or unsuspends an account. The
// running server sees the change on the account's next request.
func userRestrict(args []string, cmd string, what account.Restriction, on bool) int {
	name := "user " + cmd
	fs, cfgPath := newFlags(name, userUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(os.Stderr, "axon %s: want exactly one NAME\n\n%s", name, userUsage)
		return 2
	}
	acc, closeDB, err := cliAccounts(*cfgPath)
	if err != nil {
		return cliError(name, err)
	}
	defer closeDB()
	ctx := context.Background()
	userID, err := resolveExisting(ctx, acc, pos[0])
	if err != nil {
		return cliError(name, err)
	}
	if err := acc.OperatorSetRestricted(ctx, userID, what, on); err != nil {
		return cliError(name, err)
	}
	fmt.Printf(restrictionDone[cmd], userID)
	return 0
}

// readNewPassword reads a password from standard input (one line) or
// prompts twice on the terminal.
func readNewPassword(fromStdin bool, prompt string) (string, error) {
	var pw string
	fd := int(os.Stdin.Fd())
	switch {
	case fromStdin:
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading password from standard input: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	case term.IsTerminal(fd):
		first, err := promptPassword(fd, prompt+": ")
		if err != nil {
			return "", err
		}
		again, err := promptPassword(fd, "Repeat the password: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errors.New("the passwords do not match")
		}
		pw = first
	default:
		return "", errors.New("standard input is not a terminal: use --password-stdin to read the password from it")
	}
	if pw == "" {
		return "", errors.New("the password may not be empty")
	}
	return pw, nil
}

func promptPassword(fd int, prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return string(b), nil
}
