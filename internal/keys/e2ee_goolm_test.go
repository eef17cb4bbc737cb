//go:build goolm

package keys_test

// End-to-end tests with mautrix-go's crypto (pure-Go Olm, build tag goolm):
// real Olm/Megolm sessions through Axon's key server, to-device queue and
// device-list stream.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

// cryptoUser is a logged-in device with an Olm machine and a sync loop.
type cryptoUser struct {
	t     *testing.T
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state mautrix.StateStore

	mu       sync.Mutex
	received []string // decrypted message bodies, in order
	failed   []error  // decryption failures
	changed  chan struct{}
}

// signatureStore serialises the key-signature methods of mautrix-go's
// MemoryStore, whose PutSignature writes its maps under a read lock: the
// sync loop storing the signatures of fetched keys and a test signing its
// own keys raced there (go test -race), in the client library, not Axon.
type signatureStore struct {
	*crypto.MemoryStore
	mu sync.Mutex
}

func (s *signatureStore) PutSignature(ctx context.Context, signedUser id.UserID, signedKey id.Ed25519, signerUser id.UserID, signerKey id.Ed25519, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStore.PutSignature(ctx, signedUser, signedKey, signerUser, signerKey, signature)
}

func (s *signatureStore) GetSignaturesForKeyBy(ctx context.Context, user id.UserID, key id.Ed25519, signer id.UserID) (map[id.Ed25519]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStore.GetSignaturesForKeyBy(ctx, user, key, signer)
}

func (s *signatureStore) IsKeySignedBy(ctx context.Context, user id.UserID, key id.Ed25519, signer id.UserID, signerKey id.Ed25519) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStore.IsKeySignedBy(ctx, user, key, signer, signerKey)
}

func (s *signatureStore) DropSignaturesByKey(ctx context.Context, user id.UserID, key id.Ed25519) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStore.DropSignaturesByKey(ctx, user, key)
}

func newCryptoUser(t *testing.T, r *testrig.Rig, localpart, deviceID string, create bool) *cryptoUser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cli := r.CreateUserDevice(localpart, deviceID, create)
	state := mautrix.NewMemoryStateStore()
	cli.StateStore = state
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, &signatureStore{MemoryStore: crypto.NewMemoryStore(nil)}, state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		t.Fatalf("load olm machine: %v", err)
	}
	if err := mach.ShareKeys(ctx, -1); err != nil {
		t.Fatalf("upload keys: %v", err)
	}
	u := &cryptoUser{t: t, cli: cli, mach: mach, state: state, changed: make(chan struct{}, 1)}
	syncer := cli.Syncer.(*mautrix.DefaultSyncer)
	syncer.OnSync(mach.ProcessSyncResponse)
	syncer.OnEvent(cli.StateStoreSyncHandler)
	syncer.OnEventType(event.StateMember, mach.HandleMemberEvent)
	created := time.Now().UnixMilli()
	syncer.OnEventType(event.EventEncrypted, func(ctx context.Context, evt *event.Event) {
		if evt.Timestamp < created {
			return // history from before this device existed: never shared with it
		}
		dec, err := mach.DecryptMegolmEvent(ctx, evt)
		if err != nil {
			// The room key may still be on its way as a to-device message.
			content := evt.Content.AsEncrypted()
			if mach.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, 5*time.Second) {
				dec, err = mach.DecryptMegolmEvent(ctx, evt)
			}
		}
		u.mu.Lock()
		if err != nil {
			u.failed = append(u.failed, err)
		} else {
			u.received = append(u.received, dec.Content.AsMessage().Body)
		}
		u.mu.Unlock()
		select {
		case u.changed <- struct{}{}:
		default:
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cli.SyncWithContext(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return u
}

// send encrypts and sends a text message to the room's joined members.
func (u *cryptoUser) send(roomID id.RoomID, text string) {
	u.t.Helper()
	ctx := context.Background()
	members, err := u.cli.JoinedMembers(ctx, roomID)
	if err != nil {
		u.t.Fatalf("members: %v", err)
	}
	var users []id.UserID
	for m := range members.Joined {
		users = append(users, m)
	}
	if _, err := u.mach.FetchKeys(ctx, users, true); err != nil {
		u.t.Fatalf("fetch keys: %v", err)
	}
	if err := u.mach.ShareGroupSession(ctx, roomID, users); err != nil {
		u.t.Fatalf("share group session: %v", err)
	}
	enc, err := u.mach.EncryptMegolmEvent(ctx, roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
	if err != nil {
		u.t.Fatalf("encrypt: %v", err)
	}
	if _, err := u.cli.SendMessageEvent(ctx, roomID, event.EventEncrypted, enc); err != nil {
		u.t.Fatalf("send: %v", err)
	}
}

// waitFor waits until the user decrypted a message with the body.
func (u *cryptoUser) waitFor(body string) {
	u.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		u.mu.Lock()
		got, failed := append([]string{}, u.received...), append([]error{}, u.failed...)
		u.mu.Unlock()
		if len(failed) > 0 {
			u.t.Fatalf("%s: undecryptable message: %v", u.cli.DeviceID, failed)
		}
		for _, b := range got {
			if b == body {
				return
			}
		}
		select {
		case <-u.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			u.t.Fatalf("%s never decrypted %q (got %q)", u.cli.DeviceID, body, got)
		}
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// encryptedRoom creates an encrypted room of alice with bob joined, and
// waits until both sides' state stores know it is encrypted.
func encryptedRoom(t *testing.T, alice, bob *cryptoUser) id.RoomID {
	t.Helper()
	ctx := context.Background()
	resp, err := alice.cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset:       "private_chat",
		Invite:       []id.UserID{bob.cli.UserID},
		InitialState: []*event.Event{testrig.Encrypted()},
	})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	if _, err := bob.cli.JoinRoomByID(ctx, resp.RoomID); err != nil {
		t.Fatalf("join: %v", err)
	}
	for _, u := range []*cryptoUser{alice, bob} {
		waitUntil(t, "encrypted room in state store", func() bool {
			enc, _ := u.state.IsEncrypted(ctx, resp.RoomID)
			return enc
		})
	}
	return resp.RoomID
}

func TestEncryptedMessagesBothWays(t *testing.T) {
	r := testrig.Start(t)
	alice := newCryptoUser(t, r, "alice", "ALICE1", true)
	bob := newCryptoUser(t, r, "bob", "BOB1", true)
	room := encryptedRoom(t, alice, bob)

	alice.send(room, "hello bob")
	bob.waitFor("hello bob")
	bob.send(room, "hello alice")
	alice.waitFor("hello alice")
	alice.send(room, "second from alice")
	bob.waitFor("second from alice")

	// A device added later receives the room key of new messages: alice
	// learns of it through device_lists.changed and shares a new session.
	bob2 := newCryptoUser(t, r, "bob", "BOB2", false)
	waitUntil(t, "alice to see bob's new device", func() bool {
		devs, _ := alice.mach.CryptoStore.GetDevices(context.Background(), bob.cli.UserID)
		_, ok := devs["BOB2"]
		return ok
	})
	alice.send(room, "for both of bob's devices")
	bob.waitFor("for both of bob's devices")
	bob2.waitFor("for both of bob's devices")
	bob2.send(room, "from bob's second device")
	alice.waitFor("from bob's second device")
	bob.waitFor("from bob's second device")
}

func TestCrossSigningVisibleToOthers(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := newCryptoUser(t, r, "alice", "ALICE1", true)
	bob := newCryptoUser(t, r, "bob", "BOB1", true)
	encryptedRoom(t, alice, bob)

	uiaCalls := 0
	uia := func(resp *mautrix.RespUserInteractive) any {
		uiaCalls++
		return &mautrix.ReqUIAuthLogin{
			BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: resp.Session},
			User:         alice.cli.UserID.String(), Password: "password-alice",
		}
	}
	// The first upload needs no user-interactive auth (MSC3967).
	if _, _, err := alice.mach.GenerateAndUploadCrossSigningKeys(ctx, uia, ""); err != nil {
		t.Fatalf("bootstrap cross-signing: %v", err)
	}
	if uiaCalls != 0 {
		t.Fatalf("first cross-signing upload asked for auth")
	}
	if err := alice.mach.SignOwnMasterKey(ctx); err != nil {
		t.Fatalf("sign master key: %v", err)
	}
	if err := alice.mach.SignOwnDevice(ctx, alice.mach.OwnIdentity()); err != nil {
		t.Fatalf("sign own device: %v", err)
	}

	// Bob sees alice's master and self-signing keys, not her user-signing
	// key, and her device signed by her self-signing key.
	q, err := bob.cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.cli.UserID: {}}})
	if err != nil {
		t.Fatal(err)
	}
	master, ok := q.MasterKeys[alice.cli.UserID]
	if !ok {
		t.Fatalf("no master key for alice in %+v", q)
	}
	ssk, ok := q.SelfSigningKeys[alice.cli.UserID]
	if !ok {
		t.Fatalf("no self-signing key for alice")
	}
	if _, ok := q.UserSigningKeys[alice.cli.UserID]; ok {
		t.Fatalf("bob must not see alice's user-signing key")
	}
	dev := q.DeviceKeys[alice.cli.UserID]["ALICE1"]
	if _, ok := dev.Signatures[alice.cli.UserID][id.NewKeyID(id.KeyAlgorithmEd25519, firstKey(ssk.Keys).String())]; !ok {
		t.Fatalf("alice's device lacks the self-signing signature: %+v", dev.Signatures)
	}
	if _, ok := master.Signatures[alice.cli.UserID][id.NewKeyID(id.KeyAlgorithmEd25519, "ALICE1")]; !ok {
		t.Fatalf("alice's master key lacks her device's signature: %+v", master.Signatures)
	}

	// Bob's crypto stack trusts alice's device as cross-signed once it
	// learns her keys from the device-list change.
	waitUntil(t, "bob to see alice's device cross-signed", func() bool {
		device, err := bob.mach.GetOrFetchDevice(ctx, alice.cli.UserID, "ALICE1")
		if err != nil {
			return false
		}
		trust, err := bob.mach.ResolveTrustContext(ctx, device)
		return err == nil && trust >= id.TrustStateCrossSignedTOFU
	})

	// Replacing the keys needs the password.
	if _, _, err := alice.mach.GenerateAndUploadCrossSigningKeys(ctx, uia, ""); err != nil {
		t.Fatalf("replace cross-signing keys: %v", err)
	}
	if uiaCalls != 1 {
		t.Fatalf("replacing cross-signing keys asked for auth %d times, want 1", uiaCalls)
	}
	status, body := r.Do(http.MethodPost, "/_matrix/client/v3/keys/device_signing/upload", alice.cli.AccessToken,
		strings.NewReader(`{"master_key":{"user_id":"`+alice.cli.UserID.String()+`","usage":["master"],"keys":{"ed25519:AAAA":"AAAA"}}}`))
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "m.login.password") {
		t.Fatalf("replacement without auth: %d %s", status, body)
	}
}

func TestUserSigningSignatureVisibleToSigner(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice := newCryptoUser(t, r, "alice", "ALICE1", true)
	bob := newCryptoUser(t, r, "bob", "BOB1", true)
	carol := newCryptoUser(t, r, "carol", "CAROL1", true)
	for _, u := range []*cryptoUser{alice, bob} {
		if _, _, err := u.mach.GenerateAndUploadCrossSigningKeys(ctx, nil, ""); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
	}
	q, err := bob.cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.cli.UserID: {}}})
	if err != nil {
		t.Fatal(err)
	}
	aliceMaster := firstKey(q.MasterKeys[alice.cli.UserID].Keys)
	if aliceMaster == "" {
		t.Fatalf("no master key")
	}
	if err := bob.mach.SignUser(ctx, alice.cli.UserID, aliceMaster); err != nil {
		t.Fatalf("bob signs alice: %v", err)
	}
	bobKeys, err := bob.mach.GetOwnCrossSigningPublicKeys(ctx)
	if err != nil || bobKeys == nil {
		t.Fatalf("bob's own keys: %v", err)
	}
	keyID := id.NewKeyID(id.KeyAlgorithmEd25519, bobKeys.UserSigningKey.String())
	signedBy := func(viewer *cryptoUser) bool {
		q, err := viewer.cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.cli.UserID: {}}})
		if err != nil {
			t.Fatal(err)
		}
		_, ok := q.MasterKeys[alice.cli.UserID].Signatures[bob.cli.UserID][keyID]
		return ok
	}
	if !signedBy(bob) {
		t.Fatalf("bob does not see his signature of alice's master key")
	}
	if signedBy(carol) {
		t.Fatalf("carol sees bob's user-signing signature")
	}

	// A forged signature is reported per key and not stored.
	forged := map[string]any{alice.cli.UserID.String(): map[string]any{aliceMaster.String(): map[string]any{
		"user_id": alice.cli.UserID, "usage": []string{"master"}, "keys": map[string]string{"ed25519:" + aliceMaster.String(): aliceMaster.String()},
		"signatures": map[string]any{carol.cli.UserID.String(): map[string]string{"ed25519:CAROL1": "AAAA"}},
	}}}
	b, _ := json.Marshal(forged)
	status, body := r.Do(http.MethodPost, "/_matrix/client/v3/keys/signatures/upload", carol.cli.AccessToken, strings.NewReader(string(b)))
	if status != http.StatusOK || !strings.Contains(string(body), "M_INVALID_SIGNATURE") {
		t.Fatalf("forged signature: %d %s", status, body)
	}
}

// firstKey returns the (only) public key of a cross-signing key.
func firstKey(keys map[id.KeyID]id.Ed25519) id.Ed25519 {
	for _, k := range keys {
		return k
	}
	return ""
}
