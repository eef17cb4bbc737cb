package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// Prefixes make leaked tokens recognisable to secret scanners and to humans
// reading logs, and let the server tell the token kinds apart cheaply.
const (
	AccessTokenPrefix  = "axo_"
	RefreshTokenPrefix = "axr_"
)

// tokenBytes of entropy (256 bits) puts guessing a live token out of reach
// even for an attacker making billions of requests, and justifies storing
// only a fast, unsalted hash of it (see HashToken).
const tokenBytes = 32

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// NewAccessToken returns "axo_" followed by 32 random bytes in unpadded
// base64url (43 characters), safe in headers, query strings and JSON
// without escaping.
func NewAccessToken() string { return AccessTokenPrefix + randomToken() }

// NewRefreshToken returns "axr_" followed by 32 random bytes in unpadded
// base64url. The distinct prefix stops a refresh token being accepted where
// an access token is expected, and vice versa, before any lookup happens.
func NewRefreshToken() string { return RefreshTokenPrefix + randomToken() }

func randomToken() string {
	b := make([]byte, tokenBytes)
	// crypto/rand.Read never fails on supported platforms (it aborts the
	// program instead), so there is no error worth propagating.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hex SHA-256 of tok, for storing and looking up
// access, refresh and registration tokens so that a database leak does not
// hand out live credentials.
//
// A fast unsalted hash is correct here, unlike for passwords: our tokens
// carry 256 random bits, so there is no dictionary to attack and salting or
// stretching would add nothing but cost on every authenticated request. It
// also keeps the hash deterministic, which the token-to-session index needs.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// RandomString returns n characters drawn uniformly from [A-Za-z0-9] using
// crypto/rand (about 5.95 bits per character). It returns "" for n <= 0.
func RandomString(n int) string { return randomFrom(alnum, n) }

// NewDeviceID returns 10 random uppercase ASCII letters, the same shape as
// Synapse's device IDs, which some clients display and users retype.
func NewDeviceID() string { return randomFrom(upper, 10) }

// NewRegistrationToken returns a 16-character alphanumeric token (~95 bits)
// for admin-created registration tokens: short enough to share by hand,
// long enough that guessing one is infeasible through a rate-limited API.
func NewRegistrationToken() string { return RandomString(16) }

// randomFrom picks n characters uniformly from alphabet (at most 256
// symbols). Random bytes at or above the largest multiple of len(alphabet)
// are discarded, because reducing them modulo len(alphabet) would make the
// first few symbols more likely than the rest.
func randomFrom(alphabet string, n int) string {
	if n <= 0 {
		return ""
	}
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8) // a little spare so one read usually suffices
	for len(out) < n {
		_, _ = rand.Read(buf) // see randomToken: cannot fail
		for _, b := range buf {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}

// EqualConstantTime reports whether a == b in time that depends only on
// their lengths, not on where they first differ, so comparing a secret
// against attacker input does not leak it byte by byte. The length itself
// is not hidden; compare fixed-length values (hashes, MACs) where that
// matters.
func EqualConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
