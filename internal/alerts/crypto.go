package alerts

import (
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// ErrNoCrypto is returned for encrypted rooms by a binary built without
// the goolm tag.
var ErrNoCrypto = errors.New("end-to-end encryption is not supported by this build of axon (build with -tags goolm)")

// cryptoDBFile holds the Olm account, sessions and device lists.
const cryptoDBFile = "crypto.db"

// roomCrypto is the E2EE side of a client. The real one (crypto_goolm.go)
// wraps mautrix's OlmMachine over a SQLite store in the state directory.
type roomCrypto interface {
	// Encrypt shares the room's Megolm session with every device of every
	// joined or invited member and encrypts content with it.
	Encrypt(ctx context.Context, roomID id.RoomID, evtType event.Type, content any) (*event.EncryptedEventContent, error)
	// Decrypt decrypts an m.room.encrypted event, waiting up to wait for
	// its room key if that has not arrived yet.
	Decrypt(ctx context.Context, evt *event.Event, wait time.Duration) (*event.Event, error)
	// Attach feeds sync responses (to-device messages, device lists, key
	// counts, membership) to the crypto machine.
	Attach(syncer *mautrix.DefaultSyncer)
	// DeviceVerified reports whether userID has cross-signed deviceID.
	DeviceVerified(ctx context.Context, userID id.UserID, deviceID id.DeviceID) (bool, error)
	// BootstrapCrossSigning creates and publishes cross-signing keys, signs
	// this device and returns the recovery key ("" if keys already exist).
	BootstrapCrossSigning(ctx context.Context, password string) (string, error)
	// SignWithRecoveryKey fetches the cross-signing keys from secret
	// storage with the recovery key and signs this device with them.
	SignWithRecoveryKey(ctx context.Context, recoveryKey string) error
	// CatchUp runs one quick sync that skips rooms, to process to-device
	// messages (room key requests, Olm sessions), device list changes and
	// one-time key counts that a process which never syncs would miss.
	CatchUp(ctx context.Context) error
	Close() error
}

// CryptoSupported tells whether this binary can do end-to-end encryption.
func CryptoSupported() bool { return cryptoSupported }
