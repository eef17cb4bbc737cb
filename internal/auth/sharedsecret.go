package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"sync"
	"time"
)

// RegistrationMAC computes the MAC that Synapse's shared-secret registration
// endpoint (POST /_synapse/admin/v1/register) expects, so existing tooling
// such as register_new_matrix_user works unchanged against Axon.
//
// Per Synapse's admin API documentation it is the lowercase hex HMAC-SHA1,
// keyed with the registration shared secret, of
//
//	nonce \x00 user \x00 password \x00 ("admin" | "notadmin")
//
// followed by \x00 userType only when userType is non-empty. SHA-1 is weak
// as a hash but remains sound inside HMAC, and the format is fixed by
// compatibility, so it cannot be upgraded here.
func RegistrationMAC(secret, nonce, user, password string, admin bool, userType string) string {
	m := hmac.New(sha1.New, []byte(secret))
	// hash.Hash.Write never returns an error.
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	m.Write([]byte{0})
	if admin {
		m.Write([]byte("admin"))
	} else {
		m.Write([]byte("notadmin"))
	}
	if userType != "" {
		m.Write([]byte{0})
		m.Write([]byte(userType))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// CheckRegistrationMAC reports whether mac (hex, either case) is the correct
// RegistrationMAC for the other arguments. It decodes the hex and compares
// with hmac.Equal so the check is constant-time and does not depend on the
// client's choice of letter case. An empty secret never verifies: that
// means shared-secret registration is not configured, and an empty HMAC key
// would be trivially forgeable.
func CheckRegistrationMAC(secret, nonce, user, password string, admin bool, userType, mac string) bool {
	if secret == "" {
		return false
	}
	got, err := hex.DecodeString(mac)
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(RegistrationMAC(secret, nonce, user, password, admin, userType))
	return hmac.Equal(got, want)
}

// NonceTTL is how long a nonce from NonceStore.New stays valid, matching
// Synapse's 60 seconds: ample for a script to compute the MAC and reply,
// short enough that a captured nonce is soon worthless.
const NonceTTL = 60 * time.Second

// maxNonces caps outstanding nonces. GET /_synapse/admin/v1/register is
// unauthenticated, so without a cap anyone could grow the store without
// limit; once full, the oldest nonce is dropped to make room. (The route's
// rate limit keeps floods from getting there.)
const maxNonces = 10000

// NonceStore issues single-use nonces for shared-secret registration,
// which stop a captured registration request from being replayed. It is
// in-memory because nonces live for a minute and a restart merely forces
// a client to fetch a new one. It is safe for concurrent use.
type NonceStore struct {
	mu     sync.Mutex
	now    func() time.Time
	expiry map[string]time.Time // outstanding nonces and when they expire
	// order lists nonces oldest first. Every nonce gets the same TTL, so
	// issue order is expiry order, and expired or surplus nonces can be
	// dropped from the front without scanning the whole map.
	order []string
}

// NewNonceStore returns an empty store using the wall clock.
func NewNonceStore() *NonceStore { return NewNonceStoreWithClock(time.Now) }

// NewNonceStoreWithClock returns an empty store that reads the time from
// now, letting tests exercise expiry without sleeping.
func NewNonceStoreWithClock(now func() time.Time) *NonceStore {
	return &NonceStore{now: now, expiry: make(map[string]time.Time)}
}

// New issues a fresh nonce valid for NonceTTL.
func (s *NonceStore) New() string {
	// 32 alphanumerics (~190 bits) cannot be guessed or collide in practice.
	n := RandomString(32)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.pruneLocked(now)
	for len(s.order) >= maxNonces {
		delete(s.expiry, s.order[0])
		s.order = s.order[1:]
	}
	s.expiry[n] = now.Add(NonceTTL)
	s.order = append(s.order, n)
	return n
}

// Consume reports whether nonce was issued by New, has not expired and has
// not been consumed before. A nonce is removed on the first attempt whether
// or not that attempt succeeds, so each nonce buys exactly one try at a MAC.
func (s *NonceStore) Consume(nonce string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	exp, ok := s.expiry[nonce]
	if !ok {
		return false
	}
	delete(s.expiry, nonce)
	return now.Before(exp)
}

// pruneLocked drops expired nonces from the front of order. Entries for
// nonces already consumed are dropped with them; the map is the source of
// truth, so deleting a missing key is harmless.
func (s *NonceStore) pruneLocked(now time.Time) {
	for len(s.order) > 0 {
		n := s.order[0]
		exp, ok := s.expiry[n]
		if ok && now.Before(exp) {
			return
		}
		delete(s.expiry, n)
		s.order = s.order[1:]
	}
}
