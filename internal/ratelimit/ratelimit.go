// Package ratelimit provides a keyed token-bucket limiter for throttling
// requests per client (per user, IP address, etc.).
//
// Each key owns a bucket holding up to burst tokens that refills at a
// steady rate; a request spends one token or is refused. Token buckets let
// well-behaved clients make short bursts (a client syncing after waking
// up) while capping sustained throughput, and they yield an exact
// retry-after time, which Matrix's M_LIMIT_EXCEEDED error reports.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds how many keys a Limiter tracks unless WithMaxKeys
// says otherwise. At roughly 200 bytes per key plus the key itself this
// caps a limiter at a few tens of MB, while being far more distinct
// clients than a small homeserver sees within one refill period.
const DefaultMaxKeys = 100_000

// Limiter is a keyed token-bucket rate limiter, safe for concurrent use.
// A nil *Limiter is valid and allows everything, so callers can hold a
// nil limiter for a disabled limit instead of branching at every use.
type Limiter struct {
	rate    float64 // tokens added per second
	burst   float64 // bucket capacity
	maxKeys int
	now     func() time.Time

	// fullAfter is how long an untouched bucket takes to refill completely
	// from empty. A bucket idle that long is indistinguishable from a new
	// one, so it can be forgotten without changing any future decision.
	fullAfter time.Duration

	mu   sync.Mutex
	keys map[string]*list.Element // values are *bucket
	// lru orders buckets by last use, most recent at the front. Eviction
	// looks only at the back, so it costs O(1) amortised per call, which
	// matters because a flood of distinct keys is exactly the load a
	// limiter must survive.
	lru *list.List
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time // when tokens was last brought up to date
}

// Option customises a Limiter built by New.
type Option func(*Limiter)

// WithClock makes the limiter read the time from now instead of time.Now,
// so tests can step time deterministically.
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// WithMaxKeys caps the number of tracked keys (values below 1 are ignored).
// When the cap is reached the least recently used key is dropped; it then
// restarts with a full bucket, so under a flood of distinct keys the limit
// weakens for the oldest clients rather than memory growing or legitimate
// new clients being refused.
func WithMaxKeys(n int) Option {
	return func(l *Limiter) {
		if n >= 1 {
			l.maxKeys = n
		}
	}
}

// New returns a limiter allowing each key a sustained perSecond requests
// with bursts of up to burst. Idle keys are evicted lazily during Allow,
// so no background goroutine needs stopping.
//
// A non-positive (or NaN/infinite) perSecond, or a burst below 1, returns
// nil, the disabled limiter: configuration can then use 0 to mean
// "unlimited" without every caller checking for it.
func New(perSecond float64, burst int, opts ...Option) *Limiter {
	if !(perSecond > 0) || math.IsInf(perSecond, 1) || burst < 1 {
		return nil
	}
	l := &Limiter{
		rate:    perSecond,
		burst:   float64(burst),
		maxKeys: DefaultMaxKeys,
		now:     time.Now,
		keys:    make(map[string]*list.Element),
		lru:     list.New(),
	}
	l.fullAfter = durationOf(l.burst / l.rate)
	for _, o := range opts {
		o(l)
	}
	return l
}

// Disabled returns a limiter that allows every request. It is nil; the
// function exists to make that intent readable at call sites.
func Disabled() *Limiter { return nil }

// Allow spends one token from key's bucket. It returns ok=true if the
// request may proceed; otherwise retryAfter is how long until a token will
// be available (assuming no other requests for the key). retryAfter is 0
// whenever ok is true.
//
// Refused requests do not spend tokens, so a client hammering the server
// while limited is not pushed ever further back; it simply gets in as soon
// as it is entitled to.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.evictIdleLocked(now)

	var b *bucket
	if e, found := l.keys[key]; found {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
		elapsed := now.Sub(b.last).Seconds()
		if elapsed < 0 {
			// An injected clock went backwards; grant nothing rather than
			// a negative refill, and restart accounting from now.
			elapsed = 0
		}
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.last = now
	} else {
		if l.lru.Len() >= l.maxKeys {
			l.removeLocked(l.lru.Back())
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.keys[key] = l.lru.PushFront(b)
	}

	if b.tokens >= 1-epsilon {
		b.tokens--
		return true, 0
	}
	return false, durationOf((1 - b.tokens) / l.rate)
}

// evictIdleLocked forgets buckets that have been idle long enough to be
// full again. The LRU back holds the stalest bucket, so the scan stops at
// the first one still in use.
func (l *Limiter) evictIdleLocked(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		if now.Sub(e.Value.(*bucket).last) < l.fullAfter {
			return
		}
		l.removeLocked(e)
	}
}

func (l *Limiter) removeLocked(e *list.Element) {
	delete(l.keys, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// Len returns the number of keys currently tracked, for metrics and tests.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// epsilon absorbs floating-point error in the refill arithmetic, so that a
// client retrying after exactly the advertised retryAfter is let in even if
// the refilled balance comes out as 0.9999999999999998 tokens. It grants at
// most a billionth of a request extra, which is immaterial.
const epsilon = 1e-9

// durationOf converts seconds to a Duration, rounding up to the next
// nanosecond so that a client retrying after exactly retryAfter is never
// refused by a rounding error, and saturating instead of overflowing.
func durationOf(seconds float64) time.Duration {
	ns := math.Ceil(seconds * float64(time.Second))
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
