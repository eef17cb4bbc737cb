package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildAxon compiles the binary once per test run.
func buildAxon(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "axon-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "axon")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd *exec.Cmd
	url string
}

func startServe(t *testing.T, bin, dataDir, addr string, extraEnv ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "AXON_DATA_DIR="+dataDir, "AXON_LISTEN="+addr, "AXON_SERVER_NAME=durable.test",
		"AXON_REGISTRATION=open", "AXON_RATE_LIMITS=false", "AXON_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("server did not start")
	return nil
}

// registerOn registers an account on a started server (open registration)
// and returns a client signed in as it.
func registerOn(t *testing.T, p *proc, username string) *mautrix.Client {
	t.Helper()
	c, err := mautrix.NewClient(p.url, "", "")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.RegisterDummy(context.Background(), &mautrix.ReqRegister[any]{Username: username, Password: "correct horse battery"})
	if err != nil {
		t.Fatalf("register %s: %v", username, err)
	}
	c.SetCredentials(reg.UserID, reg.AccessToken)
	return c
}

// TestKill9LosesNothing sends messages, kills the server with SIGKILL right
// after the last acknowledgement, restarts it and finds every message.
func TestKill9LosesNothing(t *testing.T) {
	ctx := context.Background()
	bin := buildAxon(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startServe(t, bin, dir, addr)
	c := registerOn(t, p, "durable")
	room := testrig.CreateRoom(t, c, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	var sent []id.EventID
	for i := 0; i < 200; i++ {
		resp, err := c.SendText(ctx, room, fmt.Sprint("message ", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, resp.EventID)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()

	p = startServe(t, bin, dir, addr)
	defer func() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() }()
	msgs, err := c.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	have := map[id.EventID]bool{}
	for _, ev := range msgs.Chunk {
		have[ev.ID] = true
	}
	for i, e := range sent {
		if !have[e] {
			t.Fatalf("acknowledged message %d (%s) lost after kill -9", i, e)
		}
	}
	// The server keeps working after the crash: a new send and login succeed.
	testrig.SendText(t, c, room, "after restart")
}

// TestSIGTERMStopsCleanly checks a graceful stop exits 0.
func TestSIGTERMStopsCleanly(t *testing.T) {
	bin := buildAxon(t)
	p := startServe(t, bin, t.TempDir(), freeAddr(t))
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		t.Fatal("server did not stop on SIGTERM")
	}
}

// TestInvalidConfigRefused checks a bad setting stops the start with a
// message naming it.
func TestInvalidConfigRefused(t *testing.T) {
	bin := buildAxon(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "AXON_DATA_DIR="+t.TempDir(), "AXON_REGISTRATION=sometimes")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("server started with an invalid registration mode")
	}
	if !strings.Contains(string(out), "registration") {
		t.Fatalf("error does not name the setting: %s", out)
	}
}

// TestDefaultSetup checks a bare start creates the data dir, config and key.
func TestDefaultSetup(t *testing.T) {
	bin := buildAxon(t)
	work := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "AXON_LISTEN="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitServing(t, addr)
	for _, f := range []string{"axon.yaml", "signing.key", "axon.db"} {
		if _, err := os.Stat(filepath.Join(work, "axon-data", f)); err != nil {
			t.Fatalf("%s not created: %v", f, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(work, "axon-data", "axon.yaml"))
	if !strings.Contains(string(b), "#") {
		t.Fatal("axon.yaml has no comments")
	}
}

// runIn runs the binary in dir with extra environment and standard input,
// returning its combined output and exit code. A command still running
// after 15 s (a server that started when it should have refused) is killed.
func runIn(t *testing.T, bin, dir, stdin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// waitServing waits until the server at addr answers.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/_matrix/client/versions"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not start")
}

// TestCommandsFromAnotherDirectory is the first hour of a new operator: the
// server is started in one directory, and the admin commands are run from
// another, with --config naming the server's file or with nothing. They must
// find the server's accounts or say there is no server, never set up a new
// empty one where they happen to run.
func TestCommandsFromAnotherDirectory(t *testing.T) {
	bin := buildAxon(t)
	home, elsewhere := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	env := []string{"AXON_LISTEN=" + addr, "AXON_SERVER_NAME=first.test"}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = home
	cmd.Env = append(os.Environ(), env...)
	var log lockedBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitServing(t, addr)
	for _, want := range []string{"created a new data directory", "wrote the default configuration"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("serve did not say %q:\n%s", want, log.String())
		}
	}
	if out, code := runIn(t, bin, home, "a long enough password\n", env, "user", "create", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("user create in the server's directory: exit %d\n%s", code, out)
	}
	cfgFile := filepath.Join(home, "axon-data", "axon.yaml")
	out, code := runIn(t, bin, elsewhere, "", env, "user", "list", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "@alice:first.test") {
		t.Fatalf("user list --config from elsewhere: exit %d, alice missing:\n%s", code, out)
	}
	for _, args := range [][]string{{"user", "list"}, {"user", "create", "bob", "--password-stdin"}, {"token", "list"}, {"reports", "list"}} {
		out, code := runIn(t, bin, elsewhere, "a long enough password\n", env, args...)
		if code == 0 || !strings.Contains(out, "no Axon server in "+filepath.Join(elsewhere, "axon-data")) {
			t.Errorf("%q from a directory without a server: exit %d\n%s", args, code, out)
		}
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("commands created %v in the directory they ran in", ents)
	}
}

// TestServerNameChangeRefused: a server with accounts does not start (and
// the admin commands do not run) under another server_name; the message
// names both.
func TestServerNameChangeRefused(t *testing.T) {
	bin := buildAxon(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startServe(t, bin, dir, addr)
	registerOn(t, p, "alice")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()

	env := []string{"AXON_DATA_DIR=" + dir, "AXON_LISTEN=" + addr, "AXON_SERVER_NAME=renamed.test"}
	for _, args := range [][]string{{"serve"}, {"user", "list"}} {
		out, code := runIn(t, bin, dir, "", env, args...)
		if code == 0 || !strings.Contains(out, `"renamed.test"`) || !strings.Contains(out, `"durable.test"`) {
			t.Errorf("%q under a new server_name: exit %d\n%s", args, code, out)
		}
	}
	// Under its own name it still starts.
	p = startServe(t, bin, dir, addr)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// TestUnsupportedDefaultRoomVersionRefused: default_room_version must be a
// version the server can create.
func TestUnsupportedDefaultRoomVersionRefused(t *testing.T) {
	bin := buildAxon(t)
	dir := t.TempDir()
	out, code := runIn(t, bin, dir, "", []string{"AXON_DATA_DIR=" + dir, "AXON_LISTEN=" + freeAddr(t), "AXON_DEFAULT_ROOM_VERSION=13"}, "serve")
	if code == 0 || !strings.Contains(out, "default_room_version") || !strings.Contains(out, `"13"`) {
		t.Fatalf("serve with default_room_version 13: exit %d\n%s", code, out)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStartupAndRequestLog: a first start says it created the signing key,
// and at info level every request is logged with its method, route
// pattern, status and duration, but never its path, query or token.
func TestStartupAndRequestLog(t *testing.T) {
	bin := buildAxon(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "AXON_DATA_DIR="+dir, "AXON_LISTEN="+addr, "AXON_LOG_LEVEL=info")
	var log lockedBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitServing(t, addr)
	if !strings.Contains(log.String(), "created the server's signing key") {
		t.Errorf("no word of the signing key:\n%s", log.String())
	}
	resp, err := http.Get("http://" + addr + "/_matrix/client/v3/rooms/!hidden:room.test/state?access_token=sekrit-token-123")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	want := `method=GET route=/_matrix/client/v3/rooms/{roomId}/state status=401 duration=`
	for !strings.Contains(log.String(), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := log.String()
	if !strings.Contains(out, want) {
		t.Errorf("request log lacks %q:\n%s", want, out)
	}
	for _, secret := range []string{"sekrit-token-123", "!hidden", "access_token"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
}

// TestVersion: axon version and axon --version name the release, the
// commit (when built from a repository) and the build tags.
func TestVersion(t *testing.T) {
	bin := buildAxon(t)
	for _, arg := range []string{"version", "--version"} {
		out, code := runIn(t, bin, t.TempDir(), "", nil, arg)
		if code != 0 || !strings.HasPrefix(out, "axon ") || !strings.Contains(out, " commit ") || !strings.Contains(out, "build tags: ") {
			t.Errorf("axon %s: exit %d: %q", arg, code, out)
		}
	}
}

// TestTokenCreateWarnsWhenUnusable: a token made while registration is not
// "token" is printed, with a warning that it does not work yet.
func TestTokenCreateWarnsWhenUnusable(t *testing.T) {
	bin := buildAxon(t)
	dir := t.TempDir()
	openCLIDB(t, dir).Close()
	for mode, warn := range map[string]bool{"disabled": true, "open": true, "token": false} {
		out, code := runIn(t, bin, dir, "", []string{"AXON_DATA_DIR=" + dir, "AXON_REGISTRATION=" + mode}, "token", "create")
		if code != 0 || strings.Contains(out, `warning: registration is "`+mode+`"`) != warn {
			t.Errorf("registration %s: exit %d, warning expected %v:\n%s", mode, code, warn, out)
		}
	}
}
