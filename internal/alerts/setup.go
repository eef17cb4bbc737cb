package alerts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// SetupOptions drive `axon notify setup`.
type SetupOptions struct {
	Password          string
	Register          bool   // create the bot account (open or token registration)
	RegistrationToken string // for servers with registration: token
	RoomName          string
	Invite            []id.UserID
	Encrypted         bool
	WriteConfig       string // write homeserver/user/room here unless it exists
}

// SetupResult is what setup made.
type SetupResult struct {
	UserID       id.UserID
	DeviceID     id.DeviceID
	RoomID       id.RoomID
	RecoveryKey  string // printed once; "" if cross-signing already existed or is unavailable
	CrossSignErr error  // why cross-signing was not bootstrapped, if it was not
	ConfigWrote  bool
}

// Setup registers or logs in the bot, creates the alert room (encrypted
// unless told otherwise), invites people, bootstraps cross-signing so the
// bot's device is signed, and writes the config file.
func Setup(ctx context.Context, cfg *Config, opts SetupOptions) (*SetupResult, error) {
	if err := cfg.needServer(); err != nil {
		return nil, err
	}
	if cfg.User == "" {
		return nil, fmt.Errorf("%w: no user (--user or AXON_NOTIFY_USER)", ErrConfig)
	}
	res := &SetupResult{}
	if opts.Register {
		if err := register(ctx, cfg, opts); err != nil {
			return nil, err
		}
	}
	var err error
	if res.UserID, res.DeviceID, err = Login(ctx, cfg, opts.Password); err != nil {
		return nil, err
	}
	cli, s, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	name := opts.RoomName
	if name == "" {
		name = "PushNotifications"
	}
	req := &mautrix.ReqCreateRoom{Preset: "private_chat", Name: name, Invite: opts.Invite,
		Topic: "Alerts from axon notify"}
	if opts.Encrypted {
		req.InitialState = []*event.Event{{Type: event.StateEncryption,
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}
	}
	room, err := cli.CreateRoom(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create room: %w", classify(err))
	}
	res.RoomID = room.RoomID
	cfg.Room = room.RoomID.String()
	if opts.Encrypted {
		n := &notifier{cfg: cfg, cli: cli, sess: s}
		c, err := n.openCrypto(ctx)
		if err == nil {
			res.RecoveryKey, res.CrossSignErr = c.BootstrapCrossSigning(ctx, opts.Password)
			c.Close()
		} else {
			res.CrossSignErr = err
		}
	}
	if opts.WriteConfig != "" {
		if _, err := os.Stat(opts.WriteConfig); errors.Is(err, os.ErrNotExist) {
			out := map[string]string{"homeserver": cfg.Homeserver, "user": res.UserID.String(), "room": cfg.Room}
			data, _ := yaml.Marshal(out)
			if err := os.MkdirAll(filepath.Dir(opts.WriteConfig), 0o755); err != nil {
				return res, err
			}
			if err := os.WriteFile(opts.WriteConfig, data, 0o600); err != nil {
				return res, err
			}
			res.ConfigWrote = true
		}
	}
	return res, nil
}

func register(ctx context.Context, cfg *Config, opts SetupOptions) error {
	cli, err := newClient(cfg.Homeserver, "", "")
	if err != nil {
		return err
	}
	localpart := cfg.User
	if uid := id.UserID(cfg.User); len(cfg.User) > 0 && cfg.User[0] == '@' {
		localpart, _, _ = uid.ParseAndDecode()
	}
	req := &mautrix.ReqRegister[any]{Username: localpart, Password: opts.Password, InhibitLogin: true}
	_, uia, err := cli.Register(ctx, req)
	if err == nil && uia == nil {
		return nil // no authentication asked for
	}
	if uia == nil {
		if errors.Is(err, mautrix.MUserInUse) {
			return nil // already there: log in below
		}
		return fmt.Errorf("register: %w", classify(err))
	}
	switch {
	case opts.RegistrationToken != "" && uia.HasSingleStageFlow(authRegistrationToken):
		req.Auth = map[string]any{"type": authRegistrationToken, "token": opts.RegistrationToken, "session": uia.Session}
	case uia.HasSingleStageFlow(mautrix.AuthTypeDummy):
		req.Auth = mautrix.BaseAuthData{Type: mautrix.AuthTypeDummy, Session: uia.Session}
	default:
		return fmt.Errorf("%w: the server does not allow registering here; create the account (e.g. `axon user create %s`) and run setup without --register", ErrConfig, localpart)
	}
	if _, _, err := cli.Register(ctx, req); err != nil {
		if errors.Is(err, mautrix.MUserInUse) {
			return nil
		}
		return fmt.Errorf("register: %w", classify(err))
	}
	return nil
}

const authRegistrationToken mautrix.AuthType = "m.login.registration_token"
