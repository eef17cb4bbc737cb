// Package server wires the services and the HTTP edge into a homeserver.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/axon-matrix/axon/internal/accountdata"
	"github.com/axon-matrix/axon/internal/directory"
	"github.com/axon-matrix/axon/internal/presence"
	"github.com/axon-matrix/axon/internal/receipts"
	"github.com/axon-matrix/axon/internal/reports"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/appservice"
	"github.com/axon-matrix/axon/internal/clientapi"
	"github.com/axon-matrix/axon/internal/config"
	"github.com/axon-matrix/axon/internal/connlimit"
	"github.com/axon-matrix/axon/internal/fedapi"
	"github.com/axon-matrix/axon/internal/httpapi"
	"github.com/axon-matrix/axon/internal/keys"
	"github.com/axon-matrix/axon/internal/media"
	"github.com/axon-matrix/axon/internal/netguard"
	"github.com/axon-matrix/axon/internal/notices"
	"github.com/axon-matrix/axon/internal/push"
	"github.com/axon-matrix/axon/internal/ratelimit"
	"github.com/axon-matrix/axon/internal/rooms"
	"github.com/axon-matrix/axon/internal/search"
	"github.com/axon-matrix/axon/internal/slidingsync"
	"github.com/axon-matrix/axon/internal/spaces"
	"github.com/axon-matrix/axon/internal/storage"
	"github.com/axon-matrix/axon/internal/sync"
	"github.com/axon-matrix/axon/internal/threadsubs"
	"github.com/axon-matrix/axon/internal/threepid"
)

// Server is a running homeserver's parts.
type Server struct {
	Cfg      *config.Config
	DB       *storage.DB
	Rooms    *rooms.Service
	Accounts *account.Service
	Sync     *sync.Service
	API      *clientapi.API
	Push     *push.Service
	// AppServices are the registered application services (bridges).
	AppServices *appservice.Service
	Handler     http.Handler
	Log         *slog.Logger

	stopPush context.CancelFunc
}

// CheckServerName refuses a server_name other than the one the database's
// accounts were created under. The name is part of every user and room ID:
// starting under another would leave every account unreachable and mint
// IDs that clash with the old ones.
func CheckServerName(ctx context.Context, db *storage.DB, serverName string) error {
	first, err := db.FirstUserID(ctx)
	if err != nil {
		return fmt.Errorf("checking server_name: %w", err)
	}
	if first == "" {
		return nil
	}
	_, was, _ := strings.Cut(first, ":")
	if was == serverName {
		return nil
	}
	return fmt.Errorf("server_name is %q, but this server's accounts were created as %q (%s): the server name "+
		"is part of every user and room ID and cannot change once there are accounts. Set server_name back to %q, "+
		"or give the new name its own data_dir", serverName, was, first, was)
}

// New opens the database and builds every service.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		log.Info("creating a new data directory: a new server with no accounts", "data_dir", cfg.DataDir)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Registration files are checked before anything else is touched, so
	// a bad one stops the start with nothing changed.
	asRegs, err := appservice.LoadRegistrations(cfg.AppServiceConfigFiles, cfg.ServerName)
	if err != nil {
		return nil, err
	}
	_, keyErr := os.Stat(cfg.SigningKeyPath)
	key, err := config.LoadOrCreateSigningKey(cfg.SigningKeyPath)
	if err != nil {
		return nil, err
	}
	if errors.Is(keyErr, fs.ErrNotExist) {
		log.Info("created the server's signing key: back it up, other servers will remember it", "path", cfg.SigningKeyPath, "key_id", key.KeyID)
	}
	allowed, err := cfg.Outbound.Networks()
	if err != nil {
		return nil, err
	}
	// One policy for every request to an address a user (or, later, a
	// remote server) chose.
	outbound := netguard.WithAllowed(allowed)
	db, err := storage.OpenWith(ctx, cfg.DatabasePath(), storage.Options{Synchronous: cfg.DatabaseSynchronous})
	if err != nil {
		return nil, err
	}
	if err := CheckServerName(ctx, db, cfg.ServerName); err != nil {
		db.Close()
		return nil, err
	}
	rs := rooms.New(db, cfg.ServerName, id.KeyID(key.KeyID), key.Private, log)
	if err := rs.SetDefaultVersion(id.RoomVersion(cfg.DefaultRoomVersion)); err != nil {
		db.Close()
		return nil, &config.SettingError{Setting: "default_room_version", Msg: err.Error()}
	}
	accounts := account.New(db, cfg, log)
	appServices := appservice.New(asRegs, db, rs, accounts, cfg.ServerName, log)
	appServices.SetQueryTimeout(cfg.AppServiceQueryTimeout)
	accounts.ReservedUser = appServices.ExclusiveUser
	rs.QueryUnknownUser = appServices.QueryUser
	rs.QueryUnknownAlias = appServices.QueryAlias
	accounts.QueryUnknownUser = appServices.QueryUser
	if err := appServices.EnsureSenders(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Caches follow the change feed ahead of the sync notifier, so that a
	// sync it wakes reads fresh copies: push rules and key counts before
	// sync.New.
	pushRules := push.NewRules(db)
	ks := keys.New(db, accounts, cfg.ServerName)
	ss := sync.New(db, rs, log)
	pushRules.FollowUpgrades(rs, log)
	pushEval := push.NewEvaluator(rs, pushRules)
	if cfg.Experimental.ThreadSubscriptions {
		pushRules.WithThreadSubscriptions()
		pushEval.Subscribers = db.ThreadSubscribers
	}
	ss.SetPushEvaluator(pushEval)
	pusher := push.New(db, rs, pushEval, cfg.Push, outbound, log)
	pusher.UnreadTotal = ss.UnreadTotal
	appServices.KeyCounts = ks.Counts
	ss.KeyCounts = ks.Counts
	// Pushers of signed-out devices go with them.
	accounts.OnDevicesDeleted = pusher.DevicesDeleted
	// Accounts deactivated with the CLI while the server was down still
	// have memberships: leave those rooms now, through the room writers.
	if n, err := accounts.LeaveRoomsOfDeactivated(ctx, rs); err != nil {
		log.Error("leaving rooms of deactivated users", "err", err)
	} else if n > 0 {
		log.Info("left rooms of deactivated users", "rooms", n)
	}
	ms, err := media.New(db, media.Config{
		ServerName: cfg.ServerName, Dir: cfg.Media.Dir, MaxUploadBytes: cfg.Media.MaxUploadBytes,
		UserQuotaBytes: cfg.Media.UserQuotaBytes, URLPreviews: cfg.Media.URLPreviews, FreezeLegacy: cfg.Media.FreezeLegacy,
		Outbound: outbound,
	}, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	smtpMailer, err := threepid.NewSMTP(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	var mailer threepid.Mailer
	if smtpMailer != nil {
		mailer = smtpMailer
	}
	tps := threepid.New(db, cfg, mailer, accounts, log)
	accounts.Threepids = tps
	api := &clientapi.API{Cfg: cfg, Rooms: rs, Accounts: accounts, Sync: ss, Push: pusher, PushRules: pushRules, Keys: ks, Media: ms, Log: log,
		AppServices: appServices, Threepids: tps}
	api.SlidingSync = slidingsync.New(db, rs, ss)
	api.AccountData = accountdata.New(db)
	api.Directory = directory.New(db, rs, cfg.ServerName, log)
	api.Directory.AppServices = appServices
	api.Presence = presence.New(db, alsoKick{ss.Notifier, []func(){appServices.Kick}}, cfg.ServerName)
	api.Receipts = receipts.New(db, rs)
	api.Reports = reports.New(db, rs)
	api.Search = search.New(db, rs)
	api.Spaces = spaces.New(db, rs)
	if cfg.Experimental.ThreadSubscriptions {
		api.ThreadSubs = threadsubs.New(db, rs)
		api.SlidingSync.ThreadSubs = api.ThreadSubs
	}
	api.Notices = notices.New(cfg.ServerNotices, cfg.ServerName, db, rs, api.AccountData, log)
	if err := api.Notices.Start(ctx, accounts); err != nil {
		db.Close()
		return nil, err
	}
	// Registration may take neither an application service's users nor
	// the server notices account before its first notice creates it.
	accounts.ReservedUser = func(userID string) bool {
		return api.Notices.Reserved(userID) || appServices.ExclusiveUser(userID)
	}

	limiters := map[string]*ratelimit.Limiter{}
	if cfg.RateLimits {
		rl := cfg.RateLimit
		limiters["login"] = ratelimit.New(rl.Login.PerSecond, rl.Login.Burst)
		limiters["register"] = ratelimit.New(rl.Register.PerSecond, rl.Register.Burst)
		limiters["message"] = ratelimit.New(rl.Message.PerSecond, rl.Message.Burst)
		limiters["default"] = ratelimit.New(rl.Default.PerSecond, rl.Default.Burst)
		ks.ClaimLimit = ratelimit.New(rl.KeyClaim.PerSecond, rl.KeyClaim.Burst)
	}
	httpapi.SetErrorLogger(log)
	mux := httpapi.NewMux(httpapi.Options{
		Auth: authAdapter{accounts, appServices}, Limiters: limiters, MaxRequestBytes: cfg.MaxRequestBytes, Log: log,
		ExemptToken: appServices.IsAppServiceToken,
		BodyTimeout: cfg.Connections.RequestBodyTimeout, BodyMinRate: cfg.Connections.RequestBodyMinRate,
	})
	for _, m := range api.Mounts() {
		mux.Mount(m.Prefixes, m.Routes)
	}
	fed := &fedapi.API{Accounts: accounts}
	mux.Mount([]string{fedapi.Prefix}, fed.Routes())
	// Push delivery runs until Close, independent of serving HTTP: queued
	// pushes go out while the listener drains.
	pushCtx, stopPush := context.WithCancel(context.Background())
	if err := pusher.Start(pushCtx); err != nil {
		stopPush()
		db.Close()
		return nil, err
	}
	// Application service transactions run alongside, on the same context.
	if err := appServices.Start(pushCtx); err != nil {
		stopPush()
		pusher.Wait()
		db.Close()
		return nil, err
	}
	return &Server{Cfg: cfg, DB: db, Rooms: rs, Accounts: accounts, Sync: ss, API: api, Push: pusher, AppServices: appServices, Handler: mux.Handler(), Log: log,
		stopPush: stopPush}, nil
}

// alsoKick passes presence wake-ups to the sync notifier and then kicks
// the application service senders, which carry presence as ephemeral data.
// Presence is the one change that does not travel on the storage change
// feed yet: who must be woken depends on whether others can see the
// difference, which the presence service decides after the write.
type alsoKick struct {
	*sync.Notifier
	kicks []func()
}

func (k alsoKick) Wake(users ...string) {
	k.Notifier.Wake(users...)
	for _, kick := range k.kicks {
		kick()
	}
}

type authAdapter struct {
	a  *account.Service
	as *appservice.Service
}

// Authenticate tries the token as an application service's as_token first
// (with the user and device it asserts), then as an access token.
func (x authAdapter) Authenticate(ctx context.Context, req httpapi.AuthRequest) (httpapi.Caller, error) {
	if id, ok, err := x.as.Authenticate(ctx, req.Token, req.AssertUser, req.AssertDevice); ok || err != nil {
		if err != nil {
			return httpapi.Caller{}, err
		}
		if id.DeviceID != "" {
			x.a.SeenDevice(ctx, id.UserID, id.DeviceID, req.IP)
		}
		return httpapi.Caller{UserID: id.UserID, DeviceID: id.DeviceID, AppService: id.AppService, NoRateLimit: id.NoRateLimit,
			Locked: id.Locked, Suspended: id.Suspended}, nil
	}
	c, err := x.a.Authenticate(ctx, req.Token)
	if err != nil {
		return httpapi.Caller{}, err
	}
	x.a.SeenDevice(ctx, c.UserID, c.DeviceID, req.IP)
	return httpapi.Caller{UserID: c.UserID, DeviceID: c.DeviceID, IsAdmin: c.IsAdmin, Locked: c.Locked, Suspended: c.Suspended, IsGuest: c.IsGuest}, nil
}

// Close stops push delivery and releases the database.
func (s *Server) Close() error {
	if s.stopPush != nil {
		s.stopPush()
		s.Push.Wait()
		s.AppServices.Wait()
	}
	return s.DB.Close()
}

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully:
// in-flight requests (including long-polls) get a few seconds to finish.
// Connections over the configured limits are closed as they arrive.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cl := s.Cfg.Connections
	ln = connlimit.New(ln, connlimit.Limits{Total: int(cl.MaxTotal), PerAddress: int(cl.MaxPerAddress), LimitLoopback: cl.LimitLoopback})
	hs := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	return err
}
