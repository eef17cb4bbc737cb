// Package keys is the end-to-end encryption key server: device identity
// keys, one-time and fallback keys, cross-signing keys and signatures, room
// key backup, and the device-list change stream that tells clients whose
// keys to fetch again. The server never sees plaintext; what it must get
// exactly right is handing each one-time key out once, keeping uploaded
// objects byte-faithful (clients verify their signatures) and telling every
// interested user when keys change.
package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"maunium.net/go/mautrix/crypto/signatures"
	"maunium.net/go/mautrix/id"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/loadcache"
	"github.com/axon-matrix/axon/internal/mxerr"
	"github.com/axon-matrix/axon/internal/ratelimit"
	"github.com/axon-matrix/axon/internal/storage"
)

// Service is the key server.
type Service struct {
	db         *storage.DB
	accounts   *account.Service
	serverName string

	// counts caches each device's key counts for /sync, which asks on
	// every response; uploads, claims and device deletion drop entries.
	counts *loadcache.Map[deviceRef, keyCounts]

	// ClaimLimit, if set, bounds the one-time keys one claimer takes from
	// one device (keyed by claimer and device). Set it before use.
	ClaimLimit *ratelimit.Limiter
}

type deviceRef struct{ user, device string }

type keyCounts struct {
	otks     map[string]int
	fallback []string
}

// maxCachedCounts bounds the cache; past it, it starts over.
const maxCachedCounts = 100000

// New creates the key server.
func New(db *storage.DB, accounts *account.Service, serverName string) *Service {
	s := &Service{db: db, accounts: accounts, serverName: serverName, counts: loadcache.New[deviceRef, keyCounts](maxCachedCounts)}
	// Counts are dropped when the change feed announces that they or the
	// user's devices changed (syncs wake from the same changes, later).
	db.Feed().Subscribe(func(c storage.Change) {
		switch c.Kind {
		case storage.KindDeviceList:
			// A deleted device's counts must not linger.
			user := c.Users[0]
			s.counts.ForgetFunc(func(r deviceRef) bool { return r.user == user })
		case storage.KindKeyCounts:
			s.counts.Forget(deviceRef{c.Users[0], c.Device})
		}
	})
	return s
}

func (s *Service) isLocal(user string) bool {
	return strings.HasSuffix(user, ":"+s.serverName)
}

// object is a JSON object whose members are kept as raw JSON, so that
// re-encoding changes nothing a signature covers (encoding/json sorts map
// keys, which canonical JSON requires anyway).
type object map[string]json.RawMessage

func parseObject(raw json.RawMessage) (object, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return nil, mxerr.BadJSON("Expected a JSON object")
	}
	return o, nil
}

func (o object) str(key string) string {
	var s string
	_ = json.Unmarshal(o[key], &s)
	return s
}

func (o object) signatures() map[string]map[string]string {
	sigs := map[string]map[string]string{}
	_ = json.Unmarshal(o["signatures"], &sigs)
	return sigs
}

func (o object) keys() map[string]string {
	k := map[string]string{}
	_ = json.Unmarshal(o["keys"], &k)
	return k
}

func (o object) marshal() []byte {
	b, _ := json.Marshal(o)
	return b
}

// verify checks signatures[user][keyID] on o with an ed25519 public key.
func verify(o object, user, keyID, pub string) bool {
	keyName := strings.TrimPrefix(keyID, "ed25519:")
	ok, err := signatures.VerifySignatureJSON(json.RawMessage(o.marshal()), id.UserID(user), keyName, id.Ed25519(pub))
	return err == nil && ok
}

// UploadRequest is the body of POST /keys/upload.
type UploadRequest struct {
	DeviceKeys   json.RawMessage            `json:"device_keys"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
}

// Upload validates and stores a device's keys and returns its one-time
// key counts.
func (s *Service) Upload(ctx context.Context, user, device string, req UploadRequest) (map[string]int, error) {
	up := storage.KeyUpload{UserID: user, DeviceID: device}
	var signingKey string
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		dk, err := parseObject(req.DeviceKeys)
		if err != nil {
			return nil, err
		}
		if dk.str("user_id") != user || dk.str("device_id") != device {
			return nil, mxerr.InvalidParam("device_keys.user_id and device_id must be the caller's (%s, %s)", user, device)
		}
		var algs []string
		if err := json.Unmarshal(dk["algorithms"], &algs); err != nil || len(algs) == 0 {
			// A required field missing or mistyped: malformed JSON (the
			// spec's M_BAD_JSON), as for keys and signatures below.
			return nil, mxerr.BadJSON("device_keys.algorithms must be a non-empty list")
		}
		signingKey = dk.keys()["ed25519:"+device]
		if signingKey == "" || dk.keys()["curve25519:"+device] == "" {
			return nil, mxerr.BadJSON("device_keys.keys must hold ed25519:%s and curve25519:%s", device, device)
		}
		if _, ok := dk["signatures"]; !ok {
			return nil, mxerr.BadJSON("device_keys.signatures is required")
		}
		var sigs map[string]map[string]string
		if err := json.Unmarshal(dk["signatures"], &sigs); err != nil || sigs == nil {
			return nil, mxerr.BadJSON("device_keys.signatures must be an object of signatures by user")
		}
		// A self-signature that is there must be right; keys without one
		// are stored as given, as Synapse does: the spec asks no check of
		// the server, and clients verify it before trusting a device.
		if _, signed := sigs[user]["ed25519:"+device]; signed && !verify(dk, user, "ed25519:"+device, signingKey) {
			return nil, mxerr.InvalidParam("device_keys' signature by the device's own ed25519 key does not verify")
		}
		delete(dk, "unsigned")
		up.DeviceKeys = dk.marshal()
	} else {
		stored, err := s.db.DeviceKeys(ctx, user, []string{device})
		if err != nil {
			return nil, fmt.Errorf("upload keys: %w", err)
		}
		if len(stored) == 1 {
			if dk, err := parseObject(stored[0].KeyJSON); err == nil {
				signingKey = dk.keys()["ed25519:"+device]
			}
		}
	}
	var err error
	if up.OneTimeKeys, err = checkKeys(req.OneTimeKeys, user, device, signingKey, "one_time_keys", false); err != nil {
		return nil, err
	}
	if up.FallbackKeys, err = checkKeys(req.FallbackKeys, user, device, signingKey, "fallback_keys", true); err != nil {
		return nil, err
	}
	// The change feed drops the cached counts when the upload commits.
	counts, err := s.db.UploadKeys(ctx, up)
	if errors.Is(err, storage.ErrKeyConflict) {
		return nil, mxerr.InvalidParam("One-time key already exists with different content")
	}
	if errors.Is(err, storage.ErrTooManyKeys) {
		return nil, mxerr.InvalidParam("A device may hold at most %d unclaimed one-time keys of an algorithm", storage.MaxOneTimeKeys)
	}
	if err != nil {
		return nil, fmt.Errorf("upload keys: %w", err)
	}
	if _, ok := counts["signed_curve25519"]; !ok {
		counts["signed_curve25519"] = 0
	}
	return counts, nil
}

// checkKeys validates one-time or fallback keys: IDs are "<algorithm>:<id>",
// signed keys carry a valid signature of the device when its key is known.
func checkKeys(in map[string]json.RawMessage, user, device, signingKey, field string, fallback bool) (map[string][]byte, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(in))
	algs := map[string]bool{}
	for keyID, raw := range in {
		alg, kid, ok := strings.Cut(keyID, ":")
		if !ok || alg == "" || kid == "" {
			return nil, mxerr.InvalidParam("%s: key ID %q is not <algorithm>:<id>", field, keyID)
		}
		if fallback && algs[alg] {
			return nil, mxerr.InvalidParam("%s: one key per algorithm", field)
		}
		algs[alg] = true
		raw = json.RawMessage(strings.TrimSpace(string(raw)))
		if len(raw) > 0 && raw[0] == '"' {
			out[keyID] = raw
			continue
		}
		o, err := parseObject(raw)
		if err != nil {
			return nil, mxerr.BadJSON("%s: %s must be a string or an object", field, keyID)
		}
		if o.str("key") == "" {
			return nil, mxerr.InvalidParam("%s: %s has no key", field, keyID)
		}
		if strings.HasPrefix(alg, "signed_") {
			if _, ok := o.signatures()[user]["ed25519:"+device]; !ok {
				return nil, mxerr.InvalidParam("%s: %s is not signed by the device", field, keyID)
			}
			if signingKey != "" && !verify(o, user, "ed25519:"+device, signingKey) {
				return nil, mxerr.InvalidParam("%s: %s has an invalid signature", field, keyID)
			}
		}
		out[keyID] = o.marshal()
	}
	return out, nil
}

// Counts reports a device's one-time key counts and unused fallback key
// types for /sync; errors degrade to "no keys", which makes clients upload
// more rather than fail.
func (s *Service) Counts(ctx context.Context, user, device string) (map[string]int, []string) {
	c, _ := s.counts.Load(deviceRef{user, device}, func() (keyCounts, error) {
		counts, err1 := s.db.OneTimeKeyCounts(ctx, user, device)
		if err1 != nil || counts == nil {
			counts = map[string]int{}
		}
		if _, ok := counts["signed_curve25519"]; !ok {
			counts["signed_curve25519"] = 0
		}
		types, err2 := s.db.UnusedFallbackKeyTypes(ctx, user, device)
		if err2 != nil || types == nil {
			types = []string{}
		}
		// A failed read is answered but not cached.
		return keyCounts{otks: counts, fallback: types}, errors.Join(err1, err2)
	})
	return maps.Clone(c.otks), slices.Clone(c.fallback)
}

// QueryResponse is the answer of POST /keys/query.
type QueryResponse struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
	Failures        map[string]any                        `json:"failures"`
}

// Query returns the device and cross-signing keys of users, with the
// signatures uploaded separately merged in. The requester sees the
// signatures other users made on a master key only if they made them.
func (s *Service) Query(ctx context.Context, requester string, users map[string][]string) (*QueryResponse, error) {
	resp := &QueryResponse{
		DeviceKeys: map[string]map[string]json.RawMessage{}, MasterKeys: map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{}, UserSigningKeys: map[string]json.RawMessage{}, Failures: map[string]any{},
	}
	for user, devices := range users {
		if !s.isLocal(user) {
			// Keys of remote users need federation's /user/keys/query.
			_, server, _ := strings.Cut(user, ":")
			resp.Failures[server] = map[string]any{"errcode": "M_UNAVAILABLE", "error": "Federation is not available"}
			continue
		}
		sigs, err := s.db.KeySignaturesFor(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("query keys: %w", err)
		}
		extra := map[string][]storage.KeySignature{}
		for _, sig := range sigs {
			if sig.SignerUser == user || sig.SignerUser == requester {
				extra[sig.TargetKey] = append(extra[sig.TargetKey], sig)
			}
		}
		rows, err := s.db.DeviceKeys(ctx, user, devices)
		if err != nil {
			return nil, fmt.Errorf("query keys: %w", err)
		}
		resp.DeviceKeys[user] = map[string]json.RawMessage{}
		for _, r := range rows {
			o, err := parseObject(r.KeyJSON)
			if err != nil {
				continue
			}
			mergeSignatures(o, extra[r.DeviceID])
			if r.DisplayName != "" {
				unsigned, _ := json.Marshal(map[string]string{"device_display_name": r.DisplayName})
				o["unsigned"] = unsigned
			}
			resp.DeviceKeys[user][r.DeviceID] = o.marshal()
		}
		cs, err := s.db.CrossSigningKeys(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("query keys: %w", err)
		}
		for typ, into := range map[string]map[string]json.RawMessage{
			"master": resp.MasterKeys, "self_signing": resp.SelfSigningKeys, "user_signing": resp.UserSigningKeys,
		} {
			raw, ok := cs[typ]
			if !ok || (typ == "user_signing" && user != requester) {
				continue
			}
			o, err := parseObject(raw)
			if err != nil {
				continue
			}
			if pub := publicKey(o); pub != "" {
				mergeSignatures(o, extra[pub])
			}
			into[user] = o.marshal()
		}
	}
	return resp, nil
}

func mergeSignatures(o object, extra []storage.KeySignature) {
	if len(extra) == 0 {
		return
	}
	sigs := o.signatures()
	for _, e := range extra {
		if sigs[e.SignerUser] == nil {
			sigs[e.SignerUser] = map[string]string{}
		}
		sigs[e.SignerUser][e.SignerKey] = e.Signature
	}
	o["signatures"], _ = json.Marshal(sigs)
}

// ClaimResponse is the answer of POST /keys/claim.
type ClaimResponse struct {
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	Failures    map[string]any                                   `json:"failures"`
}

// Claim hands out one key per requested device: a one-time key, each to
// exactly one claimer, or else the device's fallback key.
//
// A claimer past ClaimLimit for a device gets its fallback key (or nothing
// for that device) instead of a one-time key: a new Olm session stays
// possible, but no one can drain a device's one-time keys. The spec's
// fallback key is the safety net for exactly an exhausted device, and an
// answer without a key for one device does not fail the others. claimer
// is "" for callers exempt from rate limits (application services).
func (s *Service) Claim(ctx context.Context, claimer string, req map[string]map[string]string) (*ClaimResponse, error) {
	resp := &ClaimResponse{OneTimeKeys: map[string]map[string]map[string]json.RawMessage{}, Failures: map[string]any{}}
	var reqs []storage.ClaimRequest
	users := make([]string, 0, len(req))
	for u := range req {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, user := range users {
		if !s.isLocal(user) {
			_, server, _ := strings.Cut(user, ":")
			resp.Failures[server] = map[string]any{"errcode": "M_UNAVAILABLE", "error": "Federation is not available"}
			continue
		}
		for device, alg := range req[user] {
			fallbackOnly := false
			if claimer != "" {
				ok, _ := s.ClaimLimit.Allow(claimer + "\x00" + user + "\x00" + device)
				fallbackOnly = !ok
			}
			reqs = append(reqs, storage.ClaimRequest{UserID: user, DeviceID: device, Algorithm: alg, FallbackOnly: fallbackOnly})
		}
	}
	if len(reqs) == 0 {
		return resp, nil
	}
	claimed, err := s.db.ClaimKeys(ctx, reqs)
	if err != nil {
		return nil, fmt.Errorf("claim keys: %w", err)
	}
	for _, c := range claimed {
		if resp.OneTimeKeys[c.UserID] == nil {
			resp.OneTimeKeys[c.UserID] = map[string]map[string]json.RawMessage{}
		}
		resp.OneTimeKeys[c.UserID][c.DeviceID] = map[string]json.RawMessage{c.KeyID: c.KeyJSON}
	}
	return resp, nil
}
