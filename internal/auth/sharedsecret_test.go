package auth

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The expected MACs were computed independently with Python's hmac module,
// following the algorithm as Synapse's admin API documentation states it:
//
//	m = hmac.new(secret.encode(), digestmod=hashlib.sha1)
//	m.update(nonce); m.update(b"\x00"); m.update(user); m.update(b"\x00")
//	m.update(password); m.update(b"\x00")
//	m.update(b"admin" if admin else b"notadmin")
//	if user_type: m.update(b"\x00"); m.update(user_type)
//	m.hexdigest()
func TestRegistrationMAC(t *testing.T) {
	tests := []struct {
		secret, nonce, user, password string
		admin                         bool
		userType                      string
		want                          string
	}{
		{"shared_secret", "thisisanonce", "pepper_roni", "pizza", true, "", "48715842ad67d5dc9a9ee938a3bda4fcfae8d7c7"},
		{"shared_secret", "thisisanonce", "pepper_roni", "pizza", false, "", "cf2391885316861a8e3871bfdcd223ab3913221d"},
		{"shared_secret", "thisisanonce", "pepper_roni", "pizza", false, "bot", "b269635cb53e1adc15073ae7ffbd000b836b3105"},
		{"shared_secret", "thisisanonce", "pepper_roni", "pizza", true, "support", "4f73ff7afe283b541133532c2db0268074b3b0a5"},
		{"s3cr€t", "n", "ünï", "", false, "", "4463978824f8bc4882d95dc74fbc35ed037f1d10"},
	}
	for _, tc := range tests {
		got := RegistrationMAC(tc.secret, tc.nonce, tc.user, tc.password, tc.admin, tc.userType)
		if got != tc.want {
			t.Errorf("RegistrationMAC(%q, %q, %q, %q, %v, %q) = %s; want %s",
				tc.secret, tc.nonce, tc.user, tc.password, tc.admin, tc.userType, got, tc.want)
		}
		if !CheckRegistrationMAC(tc.secret, tc.nonce, tc.user, tc.password, tc.admin, tc.userType, tc.want) {
			t.Errorf("CheckRegistrationMAC rejects its own vector %s", tc.want)
		}
		if !CheckRegistrationMAC(tc.secret, tc.nonce, tc.user, tc.password, tc.admin, tc.userType, strings.ToUpper(tc.want)) {
			t.Errorf("CheckRegistrationMAC rejects upper-case hex %s", tc.want)
		}
	}
}

func TestCheckRegistrationMACRejects(t *testing.T) {
	const secret, nonce, user, pw = "shared_secret", "thisisanonce", "pepper_roni", "pizza"
	good := RegistrationMAC(secret, nonce, user, pw, true, "")
	tests := []struct {
		name                      string
		secret, nonce, user, pass string
		admin                     bool
		userType, mac             string
	}{
		{"wrong secret", "other", nonce, user, pw, true, "", good},
		{"empty secret", "", nonce, user, pw, true, "", RegistrationMAC("", nonce, user, pw, true, "")},
		{"other nonce", secret, "another", user, pw, true, "", good},
		{"other user", secret, nonce, "mallory", pw, true, "", good},
		{"other password", secret, nonce, user, "pizza2", true, "", good},
		{"admin flipped", secret, nonce, user, pw, false, "", good},
		{"user type added", secret, nonce, user, pw, true, "bot", good},
		// The NUL separators stop fields from sliding into each other.
		{"shifted fields", secret, nonce, "pepper_ronipizza", "", true, "", good},
		{"truncated", secret, nonce, user, pw, true, "", good[:len(good)-2]},
		{"not hex", secret, nonce, user, pw, true, "", "zz" + good[2:]},
		{"empty", secret, nonce, user, pw, true, "", ""},
	}
	for _, tc := range tests {
		if CheckRegistrationMAC(tc.secret, tc.nonce, tc.user, tc.pass, tc.admin, tc.userType, tc.mac) {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestNonceStore(t *testing.T) {
	tests := []struct {
		name  string
		wait  time.Duration // between New and the first Consume
		want  bool
		again bool // result of a second Consume
	}{
		{"immediately", 0, true, false},
		{"just before expiry", NonceTTL - time.Nanosecond, true, false},
		{"at expiry", NonceTTL, false, false},
		{"long after", time.Hour, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			s := NewNonceStoreWithClock(clk.Now)
			n := s.New()
			if len(n) != 32 {
				t.Fatalf("nonce %q has length %d", n, len(n))
			}
			clk.Advance(tc.wait)
			if got := s.Consume(n); got != tc.want {
				t.Errorf("first Consume = %v; want %v", got, tc.want)
			}
			if got := s.Consume(n); got != tc.again {
				t.Errorf("second Consume = %v; want %v", got, tc.again)
			}
		})
	}
}

func TestNonceStoreUnknownAndDistinct(t *testing.T) {
	s := NewNonceStore()
	if s.Consume("") || s.Consume("never-issued") {
		t.Error("unissued nonce accepted")
	}
	a, b := s.New(), s.New()
	if a == b {
		t.Fatal("New returned the same nonce twice")
	}
	// Consuming one nonce must not affect another.
	if !s.Consume(b) || !s.Consume(a) {
		t.Error("independent nonces interfere")
	}
}

func TestNonceStoreBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := NewNonceStoreWithClock(clk.Now)

	// Expired nonces are pruned when new ones are issued.
	for range 100 {
		s.New()
	}
	clk.Advance(NonceTTL)
	fresh := s.New()
	if len(s.expiry) != 1 || len(s.order) != 1 {
		t.Fatalf("after expiry: %d nonces, %d queued; want 1, 1", len(s.expiry), len(s.order))
	}

	// Flooding past the cap drops the oldest nonces, never the newest.
	var last string
	for range maxNonces + 50 {
		last = s.New()
	}
	if len(s.expiry) > maxNonces || len(s.order) > maxNonces {
		t.Fatalf("store grew to %d nonces, %d queued; cap %d", len(s.expiry), len(s.order), maxNonces)
	}
	if s.Consume(fresh) {
		t.Error("oldest nonce survived a flood past the cap")
	}
	if !s.Consume(last) {
		t.Error("newest nonce was evicted")
	}
}

func TestNonceStoreConcurrent(t *testing.T) {
	s := NewNonceStore()
	nonces := make([]string, 200)
	for i := range nonces {
		nonces[i] = s.New()
	}
	// Many goroutines race to consume the same nonces; each must be
	// accepted exactly once in total.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, n := range nonces {
				if s.Consume(n) {
					wins.Add(1)
				}
				s.New()
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != int64(len(nonces)) {
		t.Errorf("%d successful consumes of %d nonces", got, len(nonces))
	}
}
