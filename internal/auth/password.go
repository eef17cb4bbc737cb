package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrInvalidHash is returned (wrapped) when an encoded password hash cannot
// be parsed or uses parameters or an algorithm this package does not accept.
// Callers must treat it as "login denied", never as "no password set".
var ErrInvalidHash = errors.New("auth: invalid or unsupported password hash")

// Hasher holds argon2id cost parameters. Only Hash and NeedsRehash use them:
// Check always takes the parameters recorded in the encoded string, so the
// defaults can be raised later without invalidating stored hashes.
//
// Tests that create many users may use a deliberately weak Hasher such as
// Hasher{Memory: 64, Time: 1, Threads: 1} to keep hashing in the
// microsecond range; such a Hasher must never be used in production.
type Hasher struct {
	Memory  uint32 // memory cost in KiB
	Time    uint32 // number of passes over the memory
	Threads uint8  // degree of parallelism (lanes)
}

// DefaultHasher follows the OWASP Password Storage Cheat Sheet's first
// argon2id option (19 MiB, 2 passes, 1 lane). It is sized for a small VPS:
// a single lane keeps one login from occupying every core, and 19 MiB per
// concurrent login keeps a burst of logins from exhausting RAM, while still
// costing an offline attacker tens of milliseconds per guess.
//
// It is a variable so that test binaries can swap in a cheap Hasher; do not
// modify it concurrently with calls to HashPassword.
var DefaultHasher = Hasher{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	// 16 bytes of salt is the size recommended by the argon2 RFC (9106) and
	// makes salt collisions across all users of all servers negligible.
	saltLen = 16
	// A 32-byte tag is far beyond any brute-force horizon; longer tags add
	// storage without adding security.
	keyLen = 32

	// Sanity bounds applied when parsing a stored hash. They exist so that a
	// corrupted or hostile database row cannot make a single login attempt
	// allocate gigabytes or spin for minutes, and so argon2 is never called
	// with values that make it panic.
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	minSaltLen   = 8 // minimum allowed by the PHC string format spec
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 128
)

// phcB64 is the encoding the PHC string format prescribes for salt and hash
// (standard alphabet, no padding), as produced by the argon2 reference
// implementation and libsodium, so our hashes interoperate with theirs.
var phcB64 = base64.RawStdEncoding

// HashPassword hashes pw with DefaultHasher.
func HashPassword(pw string) (string, error) { return DefaultHasher.Hash(pw) }

// CheckPassword reports whether pw matches encoded. See Hasher.Check.
func CheckPassword(encoded, pw string) (bool, error) { return DefaultHasher.Check(encoded, pw) }

// validate rejects parameters that argon2.IDKey would panic on, or silently
// adjust (memory below 8 KiB per lane), which would make the encoded string
// lie about the work actually done.
func (h Hasher) validate() error {
	switch {
	case h.Time < 1:
		return errors.New("argon2 time cost must be at least 1")
	case h.Threads < 1:
		return errors.New("argon2 parallelism must be at least 1")
	case h.Memory < 8*uint32(h.Threads):
		return errors.New("argon2 memory must be at least 8 KiB per thread")
	}
	return nil
}

// Hash returns pw hashed with a fresh random salt, as a PHC-format string:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//
// The parameters are embedded so Check never depends on current defaults.
func (h Hasher) Hash(pw string) (string, error) {
	if err := h.validate(); err != nil {
		return "", fmt.Errorf("auth: invalid Hasher: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, h.Time, h.Memory, h.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.Memory, h.Time, h.Threads,
		phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// Check reports whether pw matches the PHC-format hash in encoded, using the
// parameters stored in encoded (not those of h). A wrong password yields
// (false, nil); an unparsable or unsupported encoding yields false and an
// error wrapping ErrInvalidHash. ok is never true when err is non-nil.
//
// The final comparison is constant-time so the response time does not
// reveal how many leading bytes of a guess's tag were right.
func (h Hasher) Check(encoded, pw string) (ok bool, err error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was produced with parameters other
// than h's (or cannot be parsed). Login handlers can call it after a
// successful Check and store a fresh Hash, so raising DefaultHasher
// upgrades accounts gradually as users log in.
func (h Hasher) NeedsRehash(encoded string) bool {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return true
	}
	return p != h || len(salt) != saltLen || len(key) != keyLen
}

// parsePHC splits and validates an argon2id PHC string. Only argon2id with
// version 0x13 is accepted: that is all x/crypto implements, and accepting
// argon2i/argon2d would let a downgraded row bypass the side-channel and
// GPU resistance argon2id was chosen for.
func parsePHC(encoded string) (Hasher, []byte, []byte, error) {
	bad := func(why string) (Hasher, []byte, []byte, error) {
		return Hasher{}, nil, nil, fmt.Errorf("%w: %s", ErrInvalidHash, why)
	}
	// "$argon2id$v=19$m=..,t=..,p=..$salt$hash" splits into 6 fields, the
	// first being the empty string before the leading '$'.
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("not a PHC string with 5 fields")
	}
	if f[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported argon2 version")
	}
	p, err := parseParams(f[3])
	if err != nil {
		return bad(err.Error())
	}
	salt, err := phcB64.DecodeString(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return bad("malformed salt")
	}
	key, err := phcB64.DecodeString(f[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return bad("malformed hash")
	}
	return p, salt, key, nil
}

// parseParams parses "m=<u32>,t=<u32>,p=<u8>" in exactly that order, which
// is the canonical order every argon2 implementation emits.
func parseParams(s string) (Hasher, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return Hasher{}, errors.New("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(parts[i], name+"=")
		if !ok {
			return Hasher{}, fmt.Errorf("want parameter %q in position %d", name, i+1)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return Hasher{}, fmt.Errorf("bad value for %q", name)
		}
		vals[i] = n
	}
	h := Hasher{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := h.validate(); err != nil {
		return Hasher{}, err
	}
	if h.Memory > maxMemoryKiB || h.Time > maxTime {
		return Hasher{}, errors.New("cost parameters exceed sanity bounds")
	}
	return h, nil
}
