// Package testrig starts a whole Axon server in-process on a random
// loopback port, with a temporary data directory, for tests that drive it
// over real HTTP.
package testrig

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/auth"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/server"
	"github.com/axon-matrix/axon/internal/storage"
)

// CheapHasher makes password hashing fast in tests.
var CheapHasher = auth.Hasher{Memory: 64, Time: 1, Threads: 1}

// Rig is a running test server.
type Rig struct {
	T       testing.TB
	URL     string
	Server  *server.Server
	DataDir string
	cancel  context.CancelFunc
	done    chan error
}

// Option adjusts the configuration before start.
type Option func(*config.Config)

// Start starts a server with rate limits off and open registration.
func Start(t testing.TB, opts ...Option) *Rig {
	t.Helper()
	dir := t.TempDir()
	return StartIn(t, dir, opts...)
}

// StartIn starts a server on an existing data directory (for restart tests).
func StartIn(t testing.TB, dir string, opts ...Option) *Rig {
	t.Helper()
	env := map[string]string{
		"AXON_DATA_DIR":     dir,
		"AXON_SERVER_NAME":  "axon.test",
		"AXON_RATE_LIMITS":  "false",
		"AXON_REGISTRATION": "open",
		"AXON_LOG_LEVEL":    "warn",
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg.Listen = ln.Addr().String()
	cfg.PublicBaseURL = "http://" + cfg.Listen + "/"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("AXON_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("server: %v", err)
	}
	srv.Accounts.SetHasher(CheapHasher)
	r := &Rig{T: t, URL: "http://" + cfg.Listen, Server: srv, DataDir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(r.Stop)
	return r
}

// Stop shuts the server down (idempotent).
func (r *Rig) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.Server.Close()
	r.cancel = nil
}

// UserID returns the full user ID of a localpart on the rig's server.
func (r *Rig) UserID(localpart string) id.UserID {
	return id.NewUserID(localpart, r.Server.Cfg.ServerName)
}

// CreateUser creates an account directly in storage and returns a logged-in
// mautrix client for it (device "DEV_<localpart>").
func (r *Rig) CreateUser(localpart string) *mautrix.Client {
	r.T.Helper()
	return r.CreateUserDevice(localpart, "DEV_"+localpart, true)
}

// CreateUserDevice creates (if create) the user and logs in a new device.
func (r *Rig) CreateUserDevice(localpart, deviceID string, create bool) *mautrix.Client {
	r.T.Helper()
	ctx := context.Background()
	uid := r.UserID(localpart)
	if create {
		hash, err := CheapHasher.Hash("password-" + localpart)
		if err != nil {
			r.T.Fatal(err)
		}
		if err := r.Server.DB.CreateUser(ctx, storage.User{UserID: uid.String(), Localpart: localpart, PasswordHash: hash, CreatedTS: time.Now().UnixMilli()}); err != nil {
			r.T.Fatalf("create user %s: %v", localpart, err)
		}
	}
	token := auth.NewAccessToken()
	if err := r.Server.DB.UpsertDevice(ctx, uid.String(), deviceID, "test", auth.HashToken(token), time.Now().UnixMilli()); err != nil {
		r.T.Fatalf("device: %v", err)
	}
	c, err := mautrix.NewClient(r.URL, uid, token)
	if err != nil {
		r.T.Fatal(err)
	}
	c.DeviceID = id.DeviceID(deviceID)
	return c
}

// Do sends a raw request with an optional access token and returns status and body.
func (r *Rig) Do(method, path, token string, body io.Reader) (int, []byte) {
	r.T.Helper()
	return r.DoT(r.T, method, path, token, body)
}

// DoT is Do reporting failures to t (a fuzz target must not use the rig's *testing.F).
func (r *Rig) DoT(t testing.TB, method, path, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// JSON sends a request with an optional access token and decodes the
// answer, failing t unless it is a JSON object. path is the whole path
// ("/_matrix/client/v3/..."). body is nil (no body), a string or []byte
// sent as it is (for malformed JSON), or any other value marshalled to JSON.
func (r *Rig) JSON(t testing.TB, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatalf("%s %s: marshal body: %v", method, path, err)
		}
	}
	status, answer := r.DoT(t, method, path, token, bytes.NewReader(raw))
	var out map[string]any
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatalf("%s %s: %d, body not a JSON object: %q", method, path, status, answer)
	}
	return status, out
}

// TempFile returns a path inside the rig's data dir.
func (r *Rig) TempFile(name string) string { return filepath.Join(r.DataDir, name) }
