// Package alerts is the Matrix client behind `axon notify` and `axon bot`:
// it posts alerts from a machine into a room (encrypted when the room is)
// and answers allow-listed commands from that room. It talks plain
// client-server API, so it works against any homeserver, not only Axon.
package alerts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the notify configuration: a YAML file overlaid with
// AXON_NOTIFY_* environment variables.
type Config struct {
	Homeserver   string `yaml:"homeserver"`    // base URL, e.g. https://matrix.example.org
	User         string `yaml:"user"`          // full user ID or localpart of the bot account
	PasswordFile string `yaml:"password_file"` // file holding the password (login without a prompt)
	Token        string `yaml:"token"`         // an access token instead of a password
	Room         string `yaml:"room"`          // room ID or alias alerts go to
	StateDir     string `yaml:"state_dir"`     // session, crypto store and spool
	Hostname     string `yaml:"hostname"`      // the name alerts are prefixed with (default: os.Hostname)
	DeviceName   string `yaml:"device_name"`   // display name of the bot's device
	// Mentions are the users a critical alert mentions; empty means @room.
	Mentions []string `yaml:"mentions"`
	// RetryFor bounds how long one run retries before spooling (default 10s).
	RetryFor time.Duration `yaml:"retry_for"`
}

// ErrConfig marks configuration errors (exit code ExitConfig).
var ErrConfig = errors.New("configuration error")

// DefaultConfigPaths are read in order when no --config is given; later
// files override earlier ones.
func DefaultConfigPaths(home string) []string {
	paths := []string{"/etc/axon/notify.yaml"}
	if home != "" {
		paths = append(paths, filepath.Join(home, ".config", "axon", "notify.yaml"))
	}
	return paths
}

// LoadConfig reads the config file(s) and applies environment overrides.
// With path set, that file must exist; otherwise the default paths are read
// when present.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	cfg := &Config{}
	home := getenv("HOME")
	if path != "" {
		if err := readConfigFile(path, cfg); err != nil {
			return nil, err
		}
	} else {
		for _, p := range DefaultConfigPaths(home) {
			if err := readConfigFile(p, cfg); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	for env, dst := range map[string]*string{
		"AXON_NOTIFY_HOMESERVER":    &cfg.Homeserver,
		"AXON_NOTIFY_USER":          &cfg.User,
		"AXON_NOTIFY_PASSWORD_FILE": &cfg.PasswordFile,
		"AXON_NOTIFY_TOKEN":         &cfg.Token,
		"AXON_NOTIFY_ROOM":          &cfg.Room,
		"AXON_NOTIFY_STATE_DIR":     &cfg.StateDir,
		"AXON_NOTIFY_HOSTNAME":      &cfg.Hostname,
	} {
		if v := getenv(env); v != "" {
			*dst = v
		}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = defaultStateDir(home, getenv("XDG_STATE_HOME"))
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "unknown-host"
		}
		cfg.Hostname = strings.SplitN(h, ".", 2)[0]
	}
	if cfg.DeviceName == "" {
		cfg.DeviceName = "axon notify on " + cfg.Hostname
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = 10 * time.Second
	}
	cfg.Homeserver = strings.TrimRight(cfg.Homeserver, "/")
	return cfg, nil
}

func readConfigFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
		}
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return nil
}

func defaultStateDir(home, xdgState string) string {
	if os.Geteuid() == 0 {
		return "/var/lib/axon/notify"
	}
	if xdgState != "" {
		return filepath.Join(xdgState, "axon", "notify")
	}
	if home == "" {
		return filepath.Join(os.TempDir(), "axon-notify")
	}
	return filepath.Join(home, ".local", "state", "axon", "notify")
}

// needServer checks the settings every server contact needs.
func (c *Config) needServer() error {
	if c.Homeserver == "" {
		return fmt.Errorf("%w: no homeserver (set homeserver: in notify.yaml or AXON_NOTIFY_HOMESERVER)", ErrConfig)
	}
	if !strings.HasPrefix(c.Homeserver, "http://") && !strings.HasPrefix(c.Homeserver, "https://") {
		return fmt.Errorf("%w: homeserver %q must start with https:// (or http://)", ErrConfig, c.Homeserver)
	}
	return nil
}
