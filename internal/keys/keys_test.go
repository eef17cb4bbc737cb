package keys_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/testrig"
)

var b64 = base64.RawStdEncoding

// signer is a hand-made device signing key, for tests that need exact
// control over what is uploaded.
type signer struct {
	user, device string
	priv         ed25519.PrivateKey
	pub          string
}

func newSigner(t testing.TB, user, device string) *signer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{user: user, device: device, priv: priv, pub: b64.EncodeToString(pub)}
}

// sign adds the device's signature to obj (which must not hold signatures yet).
func (s *signer) sign(t testing.TB, obj map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := canonicaljson.CanonicalJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	obj["signatures"] = map[string]any{s.user: map[string]string{"ed25519:" + s.device: b64.EncodeToString(ed25519.Sign(s.priv, canon))}}
	return obj
}

func (s *signer) deviceKeys(t testing.TB) map[string]any {
	return s.sign(t, map[string]any{
		"user_id": s.user, "device_id": s.device,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"ed25519:" + s.device: s.pub, "curve25519:" + s.device: b64.EncodeToString(make([]byte, 32))},
	})
}

func (s *signer) otk(t testing.TB, n int, fallback bool) map[string]any {
	k := map[string]any{"key": b64.EncodeToString([]byte(fmt.Sprintf("%032d", n)))}
	if fallback {
		k["fallback"] = true
	}
	return s.sign(t, k)
}

func TestUploadValidation(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	s := newSigner(t, alice.UserID.String(), alice.DeviceID.String())

	wrongDevice := newSigner(t, alice.UserID.String(), "OTHER").deviceKeys(t)
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": wrongDevice}); st != 400 {
		t.Fatalf("device keys of another device: %d %v", st, resp)
	}
	// Required fields missing: malformed JSON (M_BAD_JSON).
	for _, field := range []string{"signatures", "algorithms", "keys"} {
		missing := s.deviceKeys(t)
		delete(missing, field)
		if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": missing}); st != 400 || resp["errcode"] != "M_BAD_JSON" {
			t.Fatalf("device keys without %s: %d %v, want 400 M_BAD_JSON", field, st, resp)
		}
	}
	// Keys without the device's self-signature are stored as given, as
	// Synapse does (the spec asks no check of the server; clients verify
	// the signature before trusting a device, and Complement uploads such
	// keys): only a signature that is there and wrong is refused.
	unsigned := s.deviceKeys(t)
	unsigned["signatures"] = map[string]any{}
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": unsigned}); st != 200 {
		t.Fatalf("unsigned device keys: %d %v", st, resp)
	}
	st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/query", alice.AccessToken, map[string]any{
		"device_keys": map[string]any{alice.UserID.String(): []string{}}})
	got, _ := resp["device_keys"].(map[string]any)[alice.UserID.String()].(map[string]any)[alice.DeviceID.String()].(map[string]any)
	if st != 200 || got == nil || got["keys"].(map[string]any)["ed25519:"+alice.DeviceID.String()] != s.pub {
		t.Fatalf("unsigned device keys not served: %d %v", st, resp)
	}
	forged := s.deviceKeys(t)
	forged["algorithms"] = []string{"m.megolm.v1.aes-sha2"} // changed after signing
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": forged}); st != 400 {
		t.Fatalf("badly signed device keys: %d %v", st, resp)
	}
	st, resp = r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"device_keys":   s.deviceKeys(t),
		"one_time_keys": map[string]any{"signed_curve25519:A": s.otk(t, 1, false), "signed_curve25519:B": s.otk(t, 2, false)},
	})
	if st != 200 || resp["one_time_key_counts"].(map[string]any)["signed_curve25519"] != 2.0 {
		t.Fatalf("upload: %d %v", st, resp)
	}
	// The same key again is fine; another key under a used ID is not.
	if st, _ := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"one_time_keys": map[string]any{"signed_curve25519:A": s.otk(t, 1, false)}}); st != 200 {
		t.Fatalf("re-upload of the same key: %d", st)
	}
	if st, _ := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"one_time_keys": map[string]any{"signed_curve25519:A": s.otk(t, 3, false)}}); st != 400 {
		t.Fatalf("conflicting key: %d", st)
	}
	if st, _ := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"one_time_keys": map[string]any{"signed_curve25519:C": map[string]any{"key": "abc"}}}); st != 400 {
		t.Fatalf("unsigned signed_curve25519 key: %d", st)
	}
}

// TestConcurrentClaims: 50 parallel claims against 10 one-time keys hand
// out each key at most once, and the fallback key to everyone else.
func TestConcurrentClaims(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	s := newSigner(t, alice.UserID.String(), alice.DeviceID.String())
	otks := map[string]any{}
	for i := 0; i < 10; i++ {
		otks[fmt.Sprintf("signed_curve25519:K%02d", i)] = s.otk(t, i, false)
	}
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"device_keys": s.deviceKeys(t), "one_time_keys": otks,
		"fallback_keys": map[string]any{"signed_curve25519:FB": s.otk(t, 99, true)},
	}); st != 200 {
		t.Fatalf("upload: %d %v", st, resp)
	}
	sync1, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if sync1.DeviceOTKCount.SignedCurve25519 != 10 || len(sync1.FallbackKeys) != 1 {
		t.Fatalf("sync counts: %+v %v", sync1.DeviceOTKCount, sync1.FallbackKeys)
	}

	var mu sync.Mutex
	got := map[string]int{}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := bob.ClaimKeys(ctx, &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{
				alice.UserID: {alice.DeviceID: id.KeyAlgorithmSignedCurve25519}}})
			if err != nil {
				errs <- err
				return
			}
			for keyID := range resp.OneTimeKeys[alice.UserID][alice.DeviceID] {
				mu.Lock()
				got[keyID.String()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("50 parallel claims over HTTP: %v", time.Since(start))
	close(errs)
	for err := range errs {
		t.Fatalf("claim: %v", err)
	}
	for i := 0; i < 10; i++ {
		if n := got[fmt.Sprintf("signed_curve25519:K%02d", i)]; n != 1 {
			t.Errorf("one-time key K%02d handed out %d times", i, n)
		}
	}
	if got["signed_curve25519:FB"] != 40 || len(got) != 11 {
		t.Errorf("claims: %v", got)
	}
	sync2, err := alice.SyncRequest(ctx, 0, sync1.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if sync2.DeviceOTKCount.SignedCurve25519 != 0 || len(sync2.FallbackKeys) != 0 {
		t.Fatalf("after claims: %+v %v", sync2.DeviceOTKCount, sync2.FallbackKeys)
	}
}

// TestDeviceListsAndDeletion: key uploads and device deletion show up in
// device_lists.changed of users sharing a room and in /keys/changes; a
// user leaving the last shared room shows up in left; a deleted device's
// keys are gone.
func TestDeviceListsAndDeletion(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	s0, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	alice2 := r.CreateUserDevice("alice", "ALICE2", false)
	s := newSigner(t, alice.UserID.String(), "ALICE2")
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice2.AccessToken, map[string]any{"device_keys": s.deviceKeys(t)}); st != 200 {
		t.Fatalf("upload: %d %v", st, resp)
	}
	s1, err := bob.SyncRequest(ctx, 5000, s0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !containsUser(s1.DeviceLists.Changed, alice.UserID) {
		t.Fatalf("changed after key upload: %v", s1.DeviceLists.Changed)
	}
	st, ch := r.JSON(t, "GET", "/_matrix/client/v3/keys/changes?from="+s0.NextBatch+"&to="+s1.NextBatch, bob.AccessToken, nil)
	if st != 200 || !strings.Contains(fmt.Sprint(ch["changed"]), alice.UserID.String()) {
		t.Fatalf("keys/changes: %d %v", st, ch)
	}
	q, err := bob.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.UserID: {}}})
	if _, ok := q.DeviceKeys[alice.UserID]["ALICE2"]; err != nil || !ok {
		t.Fatalf("query: %v %+v", err, q)
	}
	if q.DeviceKeys[alice.UserID]["ALICE2"].Unsigned["device_display_name"] != "test" {
		t.Fatalf("display name: %+v", q.DeviceKeys[alice.UserID]["ALICE2"].Unsigned)
	}

	// Deleting the device (with the password) removes its keys and wakes bob.
	done := make(chan *mautrix.RespSync, 1)
	go func() {
		s2, err := bob.SyncRequest(ctx, 10000, s1.NextBatch, "", false, "")
		if err != nil {
			t.Error(err)
		}
		done <- s2
	}()
	st, resp := r.JSON(t, "POST", "/_matrix/client/v3/delete_devices", alice.AccessToken, map[string]any{"devices": []string{"ALICE2"}})
	session, _ := resp["session"].(string)
	if st != 401 || session == "" {
		t.Fatalf("delete_devices: %d %v", st, resp)
	}
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/delete_devices", alice.AccessToken, map[string]any{"devices": []string{"ALICE2"},
		"auth": map[string]any{"type": "m.login.password", "session": session, "password": "password-alice",
			"identifier": map[string]string{"type": "m.id.user", "user": "alice"}}}); st != 200 {
		t.Fatalf("delete_devices: %d %v", st, resp)
	}
	s2 := <-done
	if s2 == nil || !containsUser(s2.DeviceLists.Changed, alice.UserID) {
		t.Fatalf("changed after deletion: %+v", s2)
	}
	q, err = bob.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.UserID: {}}})
	if _, ok := q.DeviceKeys[alice.UserID]["ALICE2"]; err != nil || ok {
		t.Fatalf("deleted device's keys still served: %v %+v", err, q)
	}

	// Bob leaves the only shared room: alice sees him in left.
	a0, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.LeaveRoom(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	a1, err := alice.SyncRequest(ctx, 5000, a0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !containsUser(a1.DeviceLists.Left, bob.UserID) {
		t.Fatalf("left: %+v", a1.DeviceLists)
	}
	_, ch = r.JSON(t, "GET", "/_matrix/client/v3/keys/changes?from="+a0.NextBatch+"&to="+a1.NextBatch, alice.AccessToken, nil)
	if !strings.Contains(fmt.Sprint(ch["left"]), bob.UserID.String()) {
		t.Fatalf("keys/changes left: %v", ch)
	}
}

func containsUser(list []id.UserID, u id.UserID) bool {
	for _, x := range list {
		if x == u {
			return true
		}
	}
	return false
}

// TestKeyBackup: versions, the better-session rule, count and etag.
func TestKeyBackup(t *testing.T) {
	r := testrig.Start(t)
	alice := r.CreateUser("alice")
	const base = "/_matrix/client/v3/room_keys"
	if st, _ := r.JSON(t, "GET", base+"/version", alice.AccessToken, nil); st != 404 {
		t.Fatalf("no backup yet: %d", st)
	}
	st, resp := r.JSON(t, "POST", base+"/version", alice.AccessToken, map[string]any{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": map[string]any{"public_key": "abc"}})
	if st != 200 || resp["version"] != "1" {
		t.Fatalf("create: %d %v", st, resp)
	}
	key := func(idx, fwd int, verified bool, tag string) map[string]any {
		return map[string]any{"first_message_index": idx, "forwarded_count": fwd, "is_verified": verified, "session_data": map[string]any{"tag": tag}}
	}
	path := base + "/keys/!room:axon.test/sess1?version=1"
	st, resp = r.JSON(t, "PUT", path, alice.AccessToken, key(5, 1, false, "a"))
	if st != 200 || resp["count"] != 1.0 {
		t.Fatalf("put: %d %v", st, resp)
	}
	etag1 := resp["etag"]
	// Worse (higher index, unverified) is ignored; the etag stays.
	_, resp = r.JSON(t, "PUT", path, alice.AccessToken, key(7, 0, false, "worse"))
	if resp["etag"] != etag1 {
		t.Fatalf("etag changed on a worse key: %v", resp)
	}
	// Lower index wins; verified beats everything unverified.
	r.JSON(t, "PUT", path, alice.AccessToken, key(2, 3, false, "lower-index"))
	_, got := r.JSON(t, "GET", path, alice.AccessToken, nil)
	if got["session_data"].(map[string]any)["tag"] != "lower-index" {
		t.Fatalf("better index not kept: %v", got)
	}
	r.JSON(t, "PUT", path, alice.AccessToken, key(9, 9, true, "verified"))
	r.JSON(t, "PUT", path, alice.AccessToken, key(0, 0, false, "unverified-but-lower"))
	_, got = r.JSON(t, "GET", path, alice.AccessToken, nil)
	if got["session_data"].(map[string]any)["tag"] != "verified" {
		t.Fatalf("verified key not kept: %v", got)
	}
	// Bulk upload, then counts.
	st, resp = r.JSON(t, "PUT", base+"/keys?version=1", alice.AccessToken, map[string]any{"rooms": map[string]any{
		"!other:axon.test": map[string]any{"sessions": map[string]any{"s2": key(0, 0, false, "x"), "s3": key(0, 0, false, "y")}}}})
	if st != 200 || resp["count"] != 3.0 {
		t.Fatalf("bulk put: %d %v", st, resp)
	}
	_, v := r.JSON(t, "GET", base+"/version", alice.AccessToken, nil)
	if v["count"] != 3.0 || v["etag"] != resp["etag"] || v["version"] != "1" {
		t.Fatalf("version info: %v", v)
	}
	_, all := r.JSON(t, "GET", base+"/keys?version=1", alice.AccessToken, nil)
	if len(all["rooms"].(map[string]any)) != 2 {
		t.Fatalf("get all: %v", all)
	}
	_, room := r.JSON(t, "GET", base+"/keys/!nothing:axon.test?version=1", alice.AccessToken, nil)
	if len(room["sessions"].(map[string]any)) != 0 {
		t.Fatalf("empty room: %v", room)
	}
	// A new version becomes current; writing to the old one is refused.
	_, resp = r.JSON(t, "POST", base+"/version", alice.AccessToken, map[string]any{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": map[string]any{}})
	if resp["version"] != "2" {
		t.Fatalf("second version: %v", resp)
	}
	st, resp = r.JSON(t, "PUT", path, alice.AccessToken, key(0, 0, true, "old"))
	if st != 403 || resp["errcode"] != "M_WRONG_ROOM_KEYS_VERSION" || resp["current_version"] != "2" {
		t.Fatalf("write to old version: %d %v", st, resp)
	}
	st, resp = r.JSON(t, "DELETE", base+"/keys/!other:axon.test?version=1", alice.AccessToken, nil)
	if st != 200 || resp["count"] != 1.0 {
		t.Fatalf("delete room keys: %d %v", st, resp)
	}
	if st, _ := r.JSON(t, "PUT", base+"/version/2", alice.AccessToken, map[string]any{"algorithm": "other", "auth_data": map[string]any{}}); st != 400 {
		t.Fatalf("algorithm change: %d", st)
	}
	if st, _ := r.JSON(t, "DELETE", base+"/version/2", alice.AccessToken, nil); st != 200 {
		t.Fatalf("delete version: %d", st)
	}
	_, v = r.JSON(t, "GET", base+"/version", alice.AccessToken, nil)
	if v["version"] != "1" {
		t.Fatalf("current after deleting 2: %v", v)
	}
	if st, _ := r.JSON(t, "GET", base+"/version/2", alice.AccessToken, nil); st != 404 {
		t.Fatalf("deleted version: %d", st)
	}
}

// TestSurvivesRestart: keys, claims and queued to-device messages are in
// the database, not in memory: after a restart the keys are served, the
// counts are right and a queued message is delivered once.
func TestSurvivesRestart(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	s := newSigner(t, alice.UserID.String(), alice.DeviceID.String())
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{
		"device_keys":   s.deviceKeys(t),
		"one_time_keys": map[string]any{"signed_curve25519:A": s.otk(t, 1, false), "signed_curve25519:B": s.otk(t, 2, false)},
	}); st != 200 {
		t.Fatalf("upload: %d %v", st, resp)
	}
	first, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ClaimKeys(ctx, &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{
		alice.UserID: {alice.DeviceID: id.KeyAlgorithmSignedCurve25519}}}); err != nil {
		t.Fatal(err)
	}
	msg := map[string]any{"messages": map[string]any{alice.UserID.String(): map[string]any{"*": map[string]any{"algorithm": "m.olm.v1.curve25519-aes-sha2", "ciphertext": map[string]any{}}}}}
	if st, _ := r.JSON(t, "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn1", bob.AccessToken, msg); st != 200 {
		t.Fatalf("sendToDevice: %d", st)
	}

	r.Stop()
	r2 := testrig.StartIn(t, r.DataDir)
	for _, c := range []*mautrix.Client{alice, bob} {
		c.HomeserverURL, _ = c.HomeserverURL.Parse(r2.URL)
	}
	q, err := bob.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.UserID: {}}})
	if _, ok := q.DeviceKeys[alice.UserID][alice.DeviceID]; err != nil || !ok {
		t.Fatalf("device keys after restart: %v %+v", err, q)
	}
	after, err := alice.SyncRequest(ctx, 0, first.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if after.DeviceOTKCount.SignedCurve25519 != 1 {
		t.Fatalf("one-time keys after a claim and a restart: %+v", after.DeviceOTKCount)
	}
	if len(after.ToDevice.Events) != 1 || after.ToDevice.Events[0].Type.Type != "m.room.encrypted" {
		t.Fatalf("to-device after restart: %+v", after.ToDevice.Events)
	}
	again, err := alice.SyncRequest(ctx, 0, after.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.ToDevice.Events) != 0 {
		t.Fatalf("to-device delivered twice: %+v", again.ToDevice.Events)
	}
}

// BenchmarkQueryKeys: /keys/query of one user with 10 devices, cross-signing
// keys and signatures, over HTTP.
func BenchmarkQueryKeys(b *testing.B) {
	r := testrig.Start(b)
	ctx := context.Background()
	bob := r.CreateUser("bob")
	r.CreateUser("alice")
	for i := 0; i < 10; i++ {
		dev := r.CreateUserDevice("alice", fmt.Sprintf("D%d", i), false)
		s := newSigner(b, dev.UserID.String(), dev.DeviceID.String())
		if st, resp := r.JSON(b, "POST", "/_matrix/client/v3/keys/upload", dev.AccessToken, map[string]any{"device_keys": s.deviceKeys(b)}); st != 200 {
			b.Fatalf("upload: %d %v", st, resp)
		}
	}
	req := &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{id.UserID("@alice:axon.test"): {}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, err := bob.QueryKeys(ctx, req)
		if err != nil || len(q.DeviceKeys["@alice:axon.test"]) != 10 {
			b.Fatalf("query: %v", err)
		}
	}
}

// BenchmarkClaimKeys: one /keys/claim of a one-time key over HTTP.
func BenchmarkClaimKeys(b *testing.B) {
	r := testrig.Start(b)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	s := newSigner(b, alice.UserID.String(), alice.DeviceID.String())
	upload := func(from int) {
		otks := map[string]any{}
		for n := from; n < from+200; n++ {
			otks[fmt.Sprintf("signed_curve25519:K%08d", n)] = s.otk(b, n, false)
		}
		if st, resp := r.JSON(b, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": s.deviceKeys(b), "one_time_keys": otks}); st != 200 {
			b.Fatalf("upload: %d %v", st, resp)
		}
	}
	req := &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{alice.UserID: {alice.DeviceID: id.KeyAlgorithmSignedCurve25519}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%200 == 0 {
			b.StopTimer()
			upload(i)
			b.StartTimer()
		}
		resp, err := bob.ClaimKeys(ctx, req)
		if err != nil || len(resp.OneTimeKeys[alice.UserID][alice.DeviceID]) != 1 {
			b.Fatalf("claim: %v", err)
		}
	}
}

// TestClaimOldestFirst: keys of an earlier upload are claimed before those
// of a later one, whatever their IDs: clients drop their oldest private
// one-time keys first.
func TestClaimOldestFirst(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	s := newSigner(t, alice.UserID.String(), alice.DeviceID.String())
	for i, keyID := range []string{"signed_curve25519:ZZZ", "signed_curve25519:AAA"} {
		body := map[string]any{"one_time_keys": map[string]any{keyID: s.otk(t, i, false)}}
		if i == 0 {
			body["device_keys"] = s.deviceKeys(t)
		}
		if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, body); st != 200 {
			t.Fatalf("upload: %d %v", st, resp)
		}
	}
	for _, want := range []id.KeyID{"signed_curve25519:ZZZ", "signed_curve25519:AAA"} {
		resp, err := bob.ClaimKeys(ctx, &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{
			alice.UserID: {alice.DeviceID: id.KeyAlgorithmSignedCurve25519}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := resp.OneTimeKeys[alice.UserID][alice.DeviceID][want]; !ok {
			t.Fatalf("claimed %v, want %s", resp.OneTimeKeys[alice.UserID][alice.DeviceID], want)
		}
	}
}

// TestDeviceListsTrackInvitees: a user invited to a room (not yet joined)
// shares it with its members for device lists, as clients encrypt for
// invitees: the invite puts them in device_lists.changed and /keys/changes,
// their key uploads wake and reach the members, and rejecting the invite
// puts them in left.
func TestDeviceListsTrackInvitees(t *testing.T) {
	r := testrig.Start(t)
	ctx := context.Background()
	alice, bob := r.CreateUser("alice"), r.CreateUser("bob")
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat",
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Raw: map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	keysChanges := func(from, to string) (changed, left string) {
		t.Helper()
		st, ch := r.JSON(t, "GET", "/_matrix/client/v3/keys/changes?from="+from+"&to="+to, alice.AccessToken, nil)
		if st != 200 {
			t.Fatalf("keys/changes: %d %v", st, ch)
		}
		return fmt.Sprint(ch["changed"]), fmt.Sprint(ch["left"])
	}
	a0, err := alice.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, room.RoomID, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	a1, err := alice.SyncRequest(ctx, 5000, a0.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !containsUser(a1.DeviceLists.Changed, bob.UserID) {
		t.Fatalf("changed after the invite: %+v", a1.DeviceLists)
	}
	if changed, _ := keysChanges(a0.NextBatch, a1.NextBatch); !strings.Contains(changed, bob.UserID.String()) {
		t.Fatalf("keys/changes after the invite: changed %s", changed)
	}

	// bob, still only invited, uploads keys: alice's long-poll wakes.
	done := make(chan *mautrix.RespSync, 1)
	start := time.Now()
	go func() {
		s, err := alice.SyncRequest(ctx, 10000, a1.NextBatch, "", false, "")
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	time.Sleep(100 * time.Millisecond) // let the long-poll start waiting
	s := newSigner(t, bob.UserID.String(), bob.DeviceID.String())
	if st, resp := r.JSON(t, "POST", "/_matrix/client/v3/keys/upload", bob.AccessToken, map[string]any{"device_keys": s.deviceKeys(t)}); st != 200 {
		t.Fatalf("upload: %d %v", st, resp)
	}
	a2 := <-done
	if a2 == nil || !containsUser(a2.DeviceLists.Changed, bob.UserID) || time.Since(start) > 5*time.Second {
		t.Fatalf("invitee's key upload after %v: %+v", time.Since(start), a2)
	}
	if changed, _ := keysChanges(a1.NextBatch, a2.NextBatch); !strings.Contains(changed, bob.UserID.String()) {
		t.Fatalf("keys/changes after the invitee's upload: changed %s", changed)
	}

	// bob rejects the invite: he shares no room with alice any more.
	if _, err := bob.LeaveRoom(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	a3, err := alice.SyncRequest(ctx, 5000, a2.NextBatch, "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !containsUser(a3.DeviceLists.Left, bob.UserID) {
		t.Fatalf("left after the rejection: %+v", a3.DeviceLists)
	}
	if _, left := keysChanges(a2.NextBatch, a3.NextBatch); !strings.Contains(left, bob.UserID.String()) {
		t.Fatalf("keys/changes after the rejection: left %s", left)
	}
}
