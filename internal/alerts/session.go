package alerts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// ErrAuth marks authentication failures (exit code ExitAuth).
var ErrAuth = errors.New("authentication failed")

// session is what `axon notify login` stores: one device, reused by every run.
type session struct {
	Homeserver  string      `json:"homeserver"`
	UserID      id.UserID   `json:"user_id"`
	DeviceID    id.DeviceID `json:"device_id"`
	AccessToken string      `json:"access_token"`
	// PickleKey encrypts the Olm account and sessions at rest in crypto.db.
	PickleKey string `json:"pickle_key"`
}

const sessionFile = "session.json"

func ensureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: state directory: %w", ErrConfig, err)
	}
	return os.Chmod(dir, 0o700)
}

func loadSession(dir string) (*session, error) {
	data, err := os.ReadFile(filepath.Join(dir, sessionFile))
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %s is damaged: %w", ErrConfig, filepath.Join(dir, sessionFile), err)
	}
	return &s, nil
}

// save writes the session atomically with 0600 permissions.
func (s *session) save(dir string) error {
	if err := ensureStateDir(dir); err != nil {
		return err
	}
	if s.PickleKey == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		s.PickleKey = base64.RawStdEncoding.EncodeToString(b)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, sessionFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, sessionFile))
}

// fullUserID turns a localpart into a user ID on the homeserver's host
// (good enough when server name and host agree; a full ID always works).
func fullUserID(user, homeserver string) id.UserID {
	if strings.HasPrefix(user, "@") {
		return id.UserID(user)
	}
	host := homeserver
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host = strings.SplitN(host, "/", 2)[0]
	return id.NewUserID(user, host)
}

// newClient builds a mautrix client that fails fast: retries are ours.
func newClient(homeserver string, userID id.UserID, token string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(homeserver, userID, token)
	if err != nil {
		return nil, fmt.Errorf("%w: homeserver URL: %w", ErrConfig, err)
	}
	cli.Log = zerolog.Nop()
	cli.DefaultHTTPRetries = 0
	cli.Client = &http.Client{Timeout: 30 * time.Second}
	return cli, nil
}

// Login logs the bot in with a password and stores the session (token and
// device) in the state directory. An existing device is reused, so the
// crypto identity survives a re-login.
func Login(ctx context.Context, cfg *Config, password string) (id.UserID, id.DeviceID, error) {
	if err := cfg.needServer(); err != nil {
		return "", "", err
	}
	if cfg.User == "" {
		return "", "", fmt.Errorf("%w: no user (set user: or AXON_NOTIFY_USER)", ErrConfig)
	}
	cli, err := newClient(cfg.Homeserver, "", "")
	if err != nil {
		return "", "", err
	}
	prev, _ := loadSession(cfg.StateDir)
	req := &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: cfg.User},
		Password:                 password,
		InitialDeviceDisplayName: cfg.DeviceName,
	}
	if prev != nil && prev.UserID == fullUserID(cfg.User, cfg.Homeserver) {
		req.DeviceID = prev.DeviceID
	}
	resp, err := cli.Login(ctx, req)
	if err != nil {
		return "", "", classify(err)
	}
	s := &session{Homeserver: cfg.Homeserver, UserID: resp.UserID, DeviceID: resp.DeviceID, AccessToken: resp.AccessToken}
	if prev != nil && prev.DeviceID == resp.DeviceID && prev.UserID == resp.UserID {
		s.PickleKey = prev.PickleKey
	} else {
		// A new device: an old crypto store belongs to another identity.
		_ = os.Remove(filepath.Join(cfg.StateDir, cryptoDBFile))
	}
	if err := s.save(cfg.StateDir); err != nil {
		return "", "", err
	}
	return s.UserID, s.DeviceID, nil
}

// connect returns a client for the stored session, creating the session
// from a configured token or password file when there is none yet.
func connect(ctx context.Context, cfg *Config) (*mautrix.Client, *session, error) {
	if err := cfg.needServer(); err != nil {
		return nil, nil, err
	}
	s, err := loadSession(cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	if s != nil && s.Homeserver != cfg.Homeserver {
		s = nil // configuration moved to another server: start over
	}
	if s != nil && cfg.Token != "" && s.AccessToken != cfg.Token {
		s = nil
	}
	if s == nil {
		switch {
		case cfg.Token != "":
			cli, err := newClient(cfg.Homeserver, "", cfg.Token)
			if err != nil {
				return nil, nil, err
			}
			who, err := cli.Whoami(ctx)
			if err != nil {
				return nil, nil, classify(err)
			}
			if who.DeviceID == "" {
				return nil, nil, fmt.Errorf("%w: the server does not say which device the token belongs to", ErrAuth)
			}
			if prev, _ := loadSession(cfg.StateDir); prev == nil || prev.DeviceID != who.DeviceID || prev.UserID != who.UserID {
				// Another device: the old crypto store belongs to another identity.
				_ = os.Remove(filepath.Join(cfg.StateDir, cryptoDBFile))
			}
			s = &session{Homeserver: cfg.Homeserver, UserID: who.UserID, DeviceID: who.DeviceID, AccessToken: cfg.Token}
			if err := s.save(cfg.StateDir); err != nil {
				return nil, nil, err
			}
		case cfg.PasswordFile != "":
			pw, err := os.ReadFile(cfg.PasswordFile)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: password file: %w", ErrConfig, err)
			}
			if _, _, err := Login(ctx, cfg, strings.TrimRight(string(pw), "\r\n")); err != nil {
				return nil, nil, err
			}
			if s, err = loadSession(cfg.StateDir); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%w: not logged in: run `axon notify login`, or set AXON_NOTIFY_TOKEN or AXON_NOTIFY_PASSWORD_FILE", ErrAuth)
		}
	}
	cli, err := newClient(s.Homeserver, s.UserID, s.AccessToken)
	if err != nil {
		return nil, nil, err
	}
	cli.DeviceID = s.DeviceID
	return cli, s, nil
}

// classify maps a client error onto our error kinds.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil {
		switch he.RespError.ErrCode {
		case "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_USER_DEACTIVATED":
			return fmt.Errorf("%w: %w", ErrAuth, err)
		case "M_FORBIDDEN":
			if he.Response != nil && he.Response.StatusCode == http.StatusForbidden && he.Request != nil && strings.HasSuffix(he.Request.URL.Path, "/login") {
				return fmt.Errorf("%w: %w", ErrAuth, err)
			}
		}
	}
	if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	return err
}

// temporary reports whether retrying later may succeed: network errors,
// rate limits and server errors.
func temporary(err error) bool {
	if err == nil || errors.Is(err, ErrAuth) || errors.Is(err, ErrConfig) || errors.Is(err, ErrRoom) || errors.Is(err, ErrNoCrypto) {
		return false
	}
	var he mautrix.HTTPError
	if errors.As(err, &he) {
		if he.Response == nil {
			return true // no HTTP response at all: connection refused, reset, timeout
		}
		code := he.Response.StatusCode
		return code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// CrossSign bootstraps cross-signing for the logged-in bot (creating the
// keys and printing-worthy recovery key on first use) or, when the account
// already has cross-signing keys and recoveryKey is given, signs this
// device with them. It needs a build with encryption and a server with the
// cross-signing endpoints.
func CrossSign(ctx context.Context, cfg *Config, password, recoveryKey string) (newRecoveryKey string, err error) {
	cli, s, err := connect(ctx, cfg)
	if err != nil {
		return "", err
	}
	n := &notifier{cfg: cfg, cli: cli, sess: s}
	c, err := n.openCrypto(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if recoveryKey != "" {
		return "", c.SignWithRecoveryKey(ctx, recoveryKey)
	}
	return c.BootstrapCrossSigning(ctx, password)
}
