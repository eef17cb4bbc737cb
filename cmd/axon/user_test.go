package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/testrig"
)

func TestParseArgsInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	admin := fs.Bool("admin", false, "")
	name := fs.String("displayname", "", "")
	pos, err := parseArgs(fs, []string{"alice", "--admin", "--displayname", "Alice A", "--", "--literal"})
	if err != nil {
		t.Fatal(err)
	}
	if !*admin || *name != "Alice A" || !slices.Equal(pos, []string{"alice", "--literal"}) {
		t.Fatalf("admin=%v name=%q pos=%q", *admin, *name, pos)
	}
}

func TestParseLongDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90m": 90 * time.Minute, "48h": 48 * time.Hour, "7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour} {
		if got, err := parseLongDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0h", "3x", "tomorrow"} {
		if _, err := parseLongDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// withStdin runs fn with standard input reading s.
func withStdin(t *testing.T, s string, fn func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { io.WriteString(w, s); w.Close() }()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	fn()
}

// TestUserAndTokenCommands runs the commands against a fresh data
// directory, as an operator would, and checks the database after each.
func TestUserAndTokenCommands(t *testing.T) {
	dir := t.TempDir()
	useCLIDataDir(t, dir)
	// Real argon2 parameters cost tens of milliseconds: keep them, so the
	// command is tested as shipped, but only for a handful of hashes.
	run := func(want int, stdin string, cmd func([]string) int, args ...string) {
		t.Helper()
		var got int
		withStdin(t, stdin, func() { got = cmd(args) })
		if got != want {
			t.Fatalf("%q: exit %d, want %d", args, got, want)
		}
	}
	run(0, "s3cret-pass\n", userCommand, "create", "alice", "--admin", "--password-stdin", "--displayname", "Alice")
	run(0, "bob-password\n", userCommand, "create", "@bob:cli.test", "--password-stdin")
	run(1, "long-enough\n", userCommand, "create", "alice", "--password-stdin")
	run(1, "long-enough\n", userCommand, "create", "Carol", "--password-stdin")
	run(1, "long-enough\n", userCommand, "create", "@carol:other.test", "--password-stdin")
	run(1, "\n", userCommand, "create", "carol", "--password-stdin")
	run(1, "", userCommand, "create", "carol") // no terminal, no --password-stdin
	run(2, "", userCommand, "create")
	run(2, "", userCommand, "frobnicate")
	run(0, "", userCommand, "list")
	// Shorter than password_min_length (8): refused, nothing created or changed.
	run(1, "five5\n", userCommand, "create", "dan", "--password-stdin")
	run(1, "short\n", userCommand, "reset-password", "bob", "--password-stdin")
	run(0, "new-bob-password\n", userCommand, "reset-password", "bob", "--password-stdin")
	run(1, "x\n", userCommand, "reset-password", "nobody", "--password-stdin")
	run(0, "", userCommand, "deactivate", "@bob:cli.test")
	run(1, "", userCommand, "deactivate", "nobody")
	run(0, "", tokenCommand, "create", "--uses", "3", "--expires", "2d")
	run(2, "", tokenCommand, "create", "--expires", "soon")
	run(0, "", tokenCommand, "list")
	run(1, "", tokenCommand, "revoke", "not-a-token")

	ctx := context.Background()
	db := openCLIDB(t, dir)
	defer db.Close()
	alice, err := db.GetUser(ctx, "@alice:cli.test")
	if err != nil || !alice.IsAdmin || alice.DisplayName != "Alice" {
		t.Fatalf("alice: %+v %v", alice, err)
	}
	if ok, err := auth.CheckPassword(alice.PasswordHash, "s3cret-pass"); !ok || err != nil {
		t.Fatalf("alice's password: %v %v", ok, err)
	}
	bob, err := db.GetUser(ctx, "@bob:cli.test")
	if err != nil || !bob.Deactivated || bob.IsAdmin {
		t.Fatalf("bob: %+v %v", bob, err)
	}
	for _, name := range []string{"carol", "dan"} {
		if _, err := db.GetUser(ctx, "@"+name+":cli.test"); err == nil {
			t.Fatalf("%s was created", name)
		}
	}
	tokens, err := db.ListRegistrationTokens(ctx)
	if err != nil || len(tokens) != 1 || *tokens[0].UsesAllowed != 3 || tokens[0].ExpiryTS == nil {
		t.Fatalf("tokens: %+v %v", tokens, err)
	}
	run(0, "", tokenCommand, "revoke", tokens[0].Token)
	if ok, _ := db.RegistrationTokenValid(ctx, tokens[0].Token, time.Now().UnixMilli()); ok {
		t.Fatal("revoked token still valid")
	}
}

// TestUserRestrictCommands locks and suspends an account of a running
// server from the command line: the server applies each change on the
// account's next request.
func TestUserRestrictCommands(t *testing.T) {
	dir := t.TempDir()
	r := testrig.StartIn(t, dir)
	alice := r.CreateUser("alice")
	t.Setenv("AXON_DATA_DIR", dir)
	t.Setenv("AXON_SERVER_NAME", "axon.test")
	run := func(want int, args ...string) {
		t.Helper()
		if got := userCommand(args); got != want {
			t.Fatalf("%q: exit %d, want %d", args, got, want)
		}
	}
	whoami := func() (int, string) {
		t.Helper()
		status, body := r.Do(http.MethodGet, "/_matrix/client/v3/account/whoami", alice.AccessToken, nil)
		return status, string(body)
	}
	run(0, "lock", "alice")
	if status, body := whoami(); status != 401 || !strings.Contains(body, "M_USER_LOCKED") {
		t.Fatalf("locked: %d %s", status, body)
	}
	run(0, "list")
	run(0, "unlock", "@alice:axon.test")
	if status, body := whoami(); status != 200 {
		t.Fatalf("unlocked: %d %s", status, body)
	}
	run(0, "suspend", "alice")
	u, err := r.Server.DB.GetUser(context.Background(), "@alice:axon.test")
	if err != nil || !u.Suspended || u.Locked {
		t.Fatalf("suspended: %+v %v", u, err)
	}
	status, body := r.Do(http.MethodPut, "/_matrix/client/v3/profile/@alice:axon.test/displayname", alice.AccessToken, strings.NewReader(`{"displayname":"A"}`))
	if status != 403 || !strings.Contains(string(body), "M_USER_SUSPENDED") {
		t.Fatalf("profile change while suspended: %d %s", status, body)
	}
	run(0, "unsuspend", "alice")
	if u, err := r.Server.DB.GetUser(context.Background(), "@alice:axon.test"); err != nil || u.Suspended {
		t.Fatalf("unsuspended: %+v %v", u, err)
	}
	run(1, "lock", "nobody")
	run(1, "suspend", "@alice:other.test")
	run(2, "lock")
	run(2, "unsuspend", "alice", "bob")
}
