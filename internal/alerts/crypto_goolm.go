//go:build goolm

package alerts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" driver
)

const cryptoSupported = true

type olmCrypto struct {
	cli   *mautrix.Client
	db    *dbutil.Database
	state *sqlstatestore.SQLStateStore
	store *crypto.SQLCryptoStore
	mach  *crypto.OlmMachine
	// xsign keeps cross-signing changes and sync processing apart: the
	// machine's cross-signing key cache is not safe for both at once.
	xsign sync.Mutex
}

// openCrypto opens (creating on first use) the crypto store in stateDir and
// loads the device's Olm account, publishing its keys if it never did.
func openCrypto(ctx context.Context, cli *mautrix.Client, stateDir string, pickleKey []byte) (roomCrypto, error) {
	// mautrix's cryptohelper opens its database through the cgo
	// mattn/go-sqlite3 driver; we open modernc's pure-Go "sqlite" driver
	// ourselves and hand dbutil the *sql.DB with the SQLite dialect.
	dsn := "file:" + filepath.Join(stateDir, cryptoDBFile) +
		"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	raw, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("crypto store: %w", err)
	}
	db, err := dbutil.NewWithDB(raw, "sqlite")
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("crypto store: %w", err)
	}
	c := &olmCrypto{cli: cli, db: db}
	c.state = sqlstatestore.NewSQLStateStore(db, dbutil.NoopLogger, false)
	if err := c.state.Upgrade(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("state store: %w", err)
	}
	c.store = crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "", cli.DeviceID, pickleKey)
	if err := c.store.DB.Upgrade(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("crypto store: %w", err)
	}
	if stored, err := c.store.FindDeviceID(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("crypto store: %w", err)
	} else if stored != "" && stored != cli.DeviceID {
		c.Close()
		return nil, fmt.Errorf("%w: crypto store belongs to device %s, session to %s: remove %s", ErrConfig, stored, cli.DeviceID, filepath.Join(stateDir, cryptoDBFile))
	}
	log := zerolog.Nop()
	c.mach = crypto.NewOlmMachine(cli, &log, c.store, c.state)
	if err := c.mach.Load(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("load olm account: %w", err)
	}
	if !c.mach.GetAccount().Shared {
		if err := c.mach.ShareKeys(ctx, -1); err != nil {
			c.Close()
			return nil, fmt.Errorf("upload device keys: %w", classify(err))
		}
	}
	cli.StateStore = c.state
	return c, nil
}

func (c *olmCrypto) Close() error {
	if c.mach != nil {
		_ = c.mach.FlushStore(context.Background())
	}
	return c.db.Close()
}

func (c *olmCrypto) Encrypt(ctx context.Context, roomID id.RoomID, evtType event.Type, content any) (*event.EncryptedEventContent, error) {
	members, err := c.cli.Members(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("room members: %w", err)
	}
	var users []id.UserID
	var encEvt *event.EncryptionEventContent
	for _, evt := range members.Chunk {
		_ = evt.Content.ParseRaw(evt.Type)
		m := evt.Content.AsMember()
		if m.Membership == event.MembershipJoin || m.Membership == event.MembershipInvite {
			users = append(users, id.UserID(evt.GetStateKey()))
		}
	}
	var enc event.EncryptionEventContent
	if err := c.cli.StateEvent(ctx, roomID, event.StateEncryption, "", &enc); err == nil {
		encEvt = &enc
	}
	// Someone left since the last alert: the old session must not reach them.
	prev, err := c.state.GetRoomJoinedOrInvitedMembers(ctx, roomID)
	if err != nil {
		return nil, err
	}
	for _, u := range prev {
		if !slices.Contains(users, u) {
			if err := c.store.RemoveOutboundGroupSession(ctx, roomID); err != nil {
				return nil, err
			}
			break
		}
	}
	for _, evt := range members.Chunk {
		c.state.SetMember(ctx, roomID, id.UserID(evt.GetStateKey()), evt.Content.AsMember())
	}
	if encEvt != nil {
		if err := c.state.SetEncryptionEvent(ctx, roomID, encEvt); err != nil {
			return nil, err
		}
	}
	// One /keys/query per run keeps device lists fresh without a sync loop.
	if _, err := c.mach.FetchKeys(ctx, users, true); err != nil {
		return nil, fmt.Errorf("query device keys: %w", err)
	}
	if err := c.mach.ShareGroupSession(ctx, roomID, users); err != nil {
		return nil, fmt.Errorf("share room key: %w", err)
	}
	return c.mach.EncryptMegolmEvent(ctx, roomID, evtType, content)
}

func (c *olmCrypto) Decrypt(ctx context.Context, evt *event.Event, wait time.Duration) (*event.Event, error) {
	dec, err := c.mach.DecryptMegolmEvent(ctx, evt)
	if errors.Is(err, crypto.ErrNoSessionFound) && wait > 0 {
		content := evt.Content.AsEncrypted()
		if c.mach.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, wait) {
			dec, err = c.mach.DecryptMegolmEvent(ctx, evt)
		}
	}
	return dec, err
}

func (c *olmCrypto) Attach(syncer *mautrix.DefaultSyncer) {
	syncer.OnSync(func(ctx context.Context, resp *mautrix.RespSync, since string) bool {
		c.xsign.Lock()
		defer c.xsign.Unlock()
		return c.mach.ProcessSyncResponse(ctx, resp, since)
	})
	syncer.OnEventType(event.StateMember, c.mach.HandleMemberEvent)
	syncer.OnEventType(event.StateHistoryVisibility, c.mach.HandleHistoryVisibility)
	syncer.OnEvent(c.cli.StateStoreSyncHandler)
}

func (c *olmCrypto) DeviceVerified(ctx context.Context, userID id.UserID, deviceID id.DeviceID) (bool, error) {
	dev, err := c.mach.GetOrFetchDevice(ctx, userID, deviceID)
	if err != nil {
		return false, err
	}
	trust, err := c.mach.ResolveTrustContext(ctx, dev)
	if err != nil {
		return false, err
	}
	return trust >= id.TrustStateCrossSignedTOFU, nil
}

func (c *olmCrypto) BootstrapCrossSigning(ctx context.Context, password string) (string, error) {
	c.xsign.Lock()
	defer c.xsign.Unlock()
	if keys, err := c.mach.GetOwnCrossSigningPublicKeys(ctx); err == nil && keys != nil && keys.MasterKey != "" {
		return "", nil
	}
	uia := func(resp *mautrix.RespUserInteractive) any {
		return &mautrix.ReqUIAuthLogin{
			BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: resp.Session},
			User:         c.cli.UserID.String(),
			Password:     password,
		}
	}
	recovery, _, err := c.mach.GenerateAndUploadCrossSigningKeys(ctx, uia, "")
	if err != nil {
		return recovery, fmt.Errorf("cross-signing: %w", err)
	}
	if err := c.mach.SignOwnMasterKey(ctx); err != nil {
		return recovery, fmt.Errorf("sign master key: %w", err)
	}
	if err := c.mach.SignOwnDevice(ctx, c.mach.OwnIdentity()); err != nil {
		return recovery, fmt.Errorf("sign own device: %w", err)
	}
	return recovery, nil
}

func (c *olmCrypto) SignWithRecoveryKey(ctx context.Context, recoveryKey string) error {
	c.xsign.Lock()
	defer c.xsign.Unlock()
	if err := c.mach.VerifyWithRecoveryKey(ctx, recoveryKey); err != nil {
		return fmt.Errorf("recovery key: %w", err)
	}
	return nil
}

// catchUpFilter leaves out rooms, presence and account data: only
// to-device messages, device lists and key counts remain.
const catchUpFilter = `{"room":{"rooms":[]},"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]}}`

func (c *olmCrypto) CatchUp(ctx context.Context) error {
	since, err := c.store.LoadNextBatch(ctx, c.cli.UserID)
	if err != nil {
		return err
	}
	resp, err := c.cli.FullSyncRequest(ctx, mautrix.ReqSync{Since: since, FilterID: catchUpFilter})
	if err != nil {
		return classify(err)
	}
	c.xsign.Lock()
	c.mach.ProcessSyncResponse(ctx, resp, since)
	c.xsign.Unlock()
	return c.store.SaveNextBatch(ctx, c.cli.UserID, resp.NextBatch)
}
