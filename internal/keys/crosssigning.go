package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/storage"
)

// Cross-signing key types as stored, and the usage each must declare.
const (
	Master      = "master"
	SelfSigning = "self_signing"
	UserSigning = "user_signing"
)

// publicKey returns the single ed25519 public key of a cross-signing key.
func publicKey(o object) string {
	for kid, pub := range o.keys() {
		if strings.HasPrefix(kid, "ed25519:") {
			return pub
		}
	}
	return ""
}

// DeviceSigningRequest is the body of POST /keys/device_signing/upload.
type DeviceSigningRequest struct {
	MasterKey      json.RawMessage   `json:"master_key"`
	SelfSigningKey json.RawMessage   `json:"self_signing_key"`
	UserSigningKey json.RawMessage   `json:"user_signing_key"`
	Auth           *account.AuthDict `json:"auth"`
	// NoAuth skips the password confirmation of a key replacement: the
	// spec (1.17) exempts application services from it.
	NoAuth bool `json:"-"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// checkCrossSigningKey validates the shape of one cross-signing key.
func checkCrossSigningKey(raw json.RawMessage, user, usage string) (object, error) {
	o, err := parseObject(raw)
	if err != nil {
		return nil, mxerr.BadJSON("%s key must be an object", usage)
	}
	if o.str("user_id") != user {
		return nil, mxerr.InvalidParam("%s key: user_id must be %s", usage, user)
	}
	var usages []string
	if err := json.Unmarshal(o["usage"], &usages); err != nil || !slices.Contains(usages, usage) {
		return nil, mxerr.InvalidParam("%s key: usage must contain %q", usage, usage)
	}
	k := o.keys()
	if len(k) != 1 {
		return nil, mxerr.InvalidParam("%s key: keys must hold exactly one key", usage)
	}
	for kid, pub := range k {
		if kid != "ed25519:"+pub {
			return nil, mxerr.InvalidParam("%s key: key ID must be ed25519:<public key>", usage)
		}
	}
	delete(o, "unsigned")
	return o, nil
}

// UploadCrossSigning stores a user's cross-signing keys. Replacing
// existing keys needs the account password (user-interactive auth); the
// first upload, and a repeat of the keys already stored, need none
// (MSC3967), which is how clients bootstrap cross-signing at registration.
func (s *Service) UploadCrossSigning(ctx context.Context, user string, req DeviceSigningRequest) error {
	stored, err := s.db.CrossSigningKeys(ctx, user)
	if err != nil {
		return fmt.Errorf("cross-signing upload: %w", err)
	}
	upload := map[string]object{}
	for typ, raw := range map[string]json.RawMessage{Master: req.MasterKey, SelfSigning: req.SelfSigningKey, UserSigning: req.UserSigningKey} {
		if !present(raw) {
			continue
		}
		o, err := checkCrossSigningKey(raw, user, typ)
		if err != nil {
			return err
		}
		upload[typ] = o
	}
	if len(upload) == 0 {
		return nil
	}
	// The master key that signs the others: the uploaded one, else the stored one.
	master := upload[Master]
	if master == nil {
		if raw, ok := stored[Master]; ok {
			master, _ = parseObject(raw)
		}
	}
	if master == nil {
		return mxerr.InvalidParam("A master key is required before other cross-signing keys")
	}
	masterPub := publicKey(master)
	for _, typ := range []string{SelfSigning, UserSigning} {
		o := upload[typ]
		if o != nil && !verify(o, user, "ed25519:"+masterPub, masterPub) {
			return mxerr.New("M_INVALID_SIGNATURE", "The %s key is not signed by the master key", typ).WithStatus(400)
		}
	}

	changed := map[string][]byte{}
	var replaced []string
	for typ, o := range upload {
		b := o.marshal()
		old, had := stored[typ]
		if had && sameKey(old, b) {
			continue
		}
		changed[typ] = b
		if had {
			if oo, err := parseObject(old); err == nil {
				replaced = append(replaced, "ed25519:"+publicKey(oo))
			}
		}
	}
	if len(changed) == 0 {
		return nil // a repeat of what is stored
	}
	finish := func() {}
	_, hasMaster := stored[Master]
	if hasMaster && !req.NoAuth {
		if finish, err = s.accounts.ConfirmPassword(ctx, user, "device_signing_upload", req.Auth); err != nil {
			return err
		}
	}
	err = s.db.PutCrossSigningKeys(ctx, user, changed, replaced, !hasMaster)
	if errors.Is(err, storage.ErrExists) {
		// Another first upload won the race: this one is a replacement now.
		return s.UploadCrossSigning(ctx, user, req)
	}
	if err != nil {
		return fmt.Errorf("cross-signing upload: %w", err)
	}
	finish()
	return nil
}

// sameKey reports whether two stored key objects hold the same keys.
func sameKey(a, b []byte) bool {
	oa, err1 := parseObject(a)
	ob, err2 := parseObject(b)
	return err1 == nil && err2 == nil && maps.Equal(oa.keys(), ob.keys())
}

// SignatureFailure is one per-key failure of a signatures upload.
type SignatureFailure struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// UploadSignatures stores the caller's signatures of keys: their own
// devices signed by their self-signing key, their master key signed by one
// of their devices, and other users' master keys signed by their
// user-signing key. Each signature is verified; failures are reported per
// key and do not stop the others.
func (s *Service) UploadSignatures(ctx context.Context, caller string, req map[string]map[string]json.RawMessage) (map[string]map[string]SignatureFailure, error) {
	failures := map[string]map[string]SignatureFailure{}
	fail := func(user, key, code, format string, args ...any) {
		if failures[user] == nil {
			failures[user] = map[string]SignatureFailure{}
		}
		failures[user][key] = SignatureFailure{Errcode: code, Error: fmt.Sprintf(format, args...)}
	}
	mine, err := s.db.CrossSigningKeys(ctx, caller)
	if err != nil {
		return nil, fmt.Errorf("signatures upload: %w", err)
	}
	pubOf := func(typ string) string {
		if o, err := parseObject(mine[typ]); err == nil {
			return publicKey(o)
		}
		return ""
	}
	var store []storage.KeySignature
	for target, byKey := range req {
		if !s.isLocal(target) {
			for keyID := range byKey {
				fail(target, keyID, "M_UNAVAILABLE", "Signing keys of remote users needs federation")
			}
			continue
		}
		theirs := mine
		if target != caller {
			if theirs, err = s.db.CrossSigningKeys(ctx, target); err != nil {
				return nil, fmt.Errorf("signatures upload: %w", err)
			}
		}
		for keyID, raw := range byKey {
			o, err := parseObject(raw)
			if err != nil {
				fail(target, keyID, "M_BAD_JSON", "Not a JSON object")
				continue
			}
			// Find the stored key this object claims to be, and which of the
			// caller's keys may sign it.
			var storedKey object
			var signers map[string]string // key ID -> public key
			if mo, err := parseObject(theirs[Master]); err == nil && publicKey(mo) == keyID {
				storedKey = mo
				if target == caller {
					devs, err := s.db.DeviceKeys(ctx, caller, nil)
					if err != nil {
						return nil, fmt.Errorf("signatures upload: %w", err)
					}
					signers = map[string]string{}
					for _, d := range devs {
						if do, err := parseObject(d.KeyJSON); err == nil {
							kid := "ed25519:" + d.DeviceID
							if pub := do.keys()[kid]; pub != "" {
								signers[kid] = pub
							}
						}
					}
				} else if pub := pubOf(UserSigning); pub != "" {
					signers = map[string]string{"ed25519:" + pub: pub}
				}
			} else if target == caller {
				devs, err := s.db.DeviceKeys(ctx, caller, []string{keyID})
				if err != nil {
					return nil, fmt.Errorf("signatures upload: %w", err)
				}
				if len(devs) == 1 {
					storedKey, _ = parseObject(devs[0].KeyJSON)
				}
				if pub := pubOf(SelfSigning); pub != "" {
					signers = map[string]string{"ed25519:" + pub: pub}
				}
			}
			if storedKey == nil {
				fail(target, keyID, "M_NOT_FOUND", "Unknown key %s of %s", keyID, target)
				continue
			}
			if !maps.Equal(storedKey.keys(), o.keys()) {
				fail(target, keyID, "M_INVALID_SIGNATURE", "The signed object does not match the stored key")
				continue
			}
			if len(signers) == 0 {
				fail(target, keyID, "M_INVALID_SIGNATURE", "You have no key that may sign this key")
				continue
			}
			existing := storedKey.signatures()[caller]
			found := false
			for signerKey, sig := range o.signatures()[caller] {
				if existing[signerKey] == sig {
					found = true
					continue // already part of the stored key
				}
				pub, ok := signers[signerKey]
				if !ok {
					continue
				}
				// Verify over the stored object, so only its content is signed.
				check := object{}
				maps.Copy(check, storedKey)
				check["signatures"], _ = json.Marshal(map[string]map[string]string{caller: {signerKey: sig}})
				if !verify(check, caller, signerKey, pub) {
					fail(target, keyID, "M_INVALID_SIGNATURE", "Invalid signature by %s", signerKey)
					found = false
					break
				}
				found = true
				store = append(store, storage.KeySignature{TargetUser: target, TargetKey: keyID, SignerUser: caller, SignerKey: signerKey, Signature: sig})
			}
			if _, failed := failures[target][keyID]; !found && !failed {
				fail(target, keyID, "M_INVALID_SIGNATURE", "No signature by a key of %s that may sign this key", caller)
			}
		}
	}
	// Keep only signatures of keys that had no failure.
	kept := store[:0]
	for _, sig := range store {
		if _, failed := failures[sig.TargetUser][sig.TargetKey]; !failed {
			kept = append(kept, sig)
		}
	}
	// Storage marks the targets' device lists changed, and the change feed
	// wakes those who see them.
	if err := s.db.PutKeySignatures(ctx, kept); err != nil {
		return nil, fmt.Errorf("signatures upload: %w", err)
	}
	return failures, nil
}
