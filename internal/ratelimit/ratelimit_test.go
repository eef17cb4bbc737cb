package ratelimit

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestDisabled(t *testing.T) {
	limiters := map[string]*Limiter{
		"nil":           nil,
		"Disabled()":    Disabled(),
		"zero rate":     New(0, 10),
		"negative rate": New(-1, 10),
		"NaN rate":      New(math.NaN(), 10),
		"infinite rate": New(math.Inf(1), 10),
		"zero burst":    New(1, 0),
	}
	for name, l := range limiters {
		if l != nil {
			t.Errorf("%s: got a non-nil limiter", name)
		}
		for range 1000 {
			if ok, retry := l.Allow("k"); !ok || retry != 0 {
				t.Fatalf("%s: Allow = %v, %v; want true, 0", name, ok, retry)
			}
		}
		if l.Len() != 0 {
			t.Errorf("%s: Len = %d", name, l.Len())
		}
	}
}

func TestAllowSequences(t *testing.T) {
	type step struct {
		advance time.Duration // clock advance before the call
		key     string
		ok      bool
		retry   time.Duration
	}
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []step
	}{
		{
			name: "burst then refill one per second", perSecond: 1, burst: 3,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{300 * time.Millisecond, "a", false, 700 * time.Millisecond},
				{700 * time.Millisecond, "a", true, 0}, // exactly at retryAfter
				{0, "a", false, time.Second},
				{10 * time.Second, "a", true, 0}, // refill caps at burst...
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", false, time.Second}, // ...not 10 tokens
			},
		},
		{
			name: "keys are independent", perSecond: 1, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{0, "b", true, 0},
				{0, "b", false, time.Second},
				{500 * time.Millisecond, "a", false, 500 * time.Millisecond},
				{0, "", true, 0}, // the empty key is a key like any other
			},
		},
		{
			name: "refused requests spend nothing", perSecond: 2, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, 500 * time.Millisecond},
				{100 * time.Millisecond, "a", false, 400 * time.Millisecond},
				{100 * time.Millisecond, "a", false, 300 * time.Millisecond},
				{300 * time.Millisecond, "a", true, 0},
			},
		},
		{
			name: "slow rate", perSecond: 1.0 / 60, burst: 2,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", false, time.Minute},
				{45 * time.Second, "a", false, 15 * time.Second},
				{15 * time.Second, "a", true, 0},
			},
		},
		{
			name: "fast rate", perSecond: 1000, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, time.Millisecond},
				{time.Millisecond, "a", true, 0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			l := New(tc.perSecond, tc.burst, WithClock(clk.Now))
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				ok, retry := l.Allow(s.key)
				// Allow one nanosecond for rounding up.
				if ok != s.ok || retry < s.retry || retry > s.retry+time.Nanosecond {
					t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

// TestRetryAfterIsHonoured checks, over random rates, bursts and timings,
// that retrying after exactly the reported retryAfter succeeds, and that
// retrying slightly earlier does not (i.e. retryAfter is neither too short
// nor padded).
func TestRetryAfterIsHonoured(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		rate := math.Exp(r.Float64()*12 - 6) // ~0.0025/s to ~400/s
		burst := 1 + r.IntN(5)
		clk := newClock()
		l := New(rate, burst, WithClock(clk.Now))
		for range 1 + r.IntN(20) {
			clk.Advance(time.Duration(r.Float64() * float64(time.Second) / rate))
			l.Allow("k")
		}
		for {
			ok, retry := l.Allow("k")
			if ok {
				continue
			}
			if retry <= 0 {
				t.Fatalf("case %d: refused with retryAfter %v", i, retry)
			}
			early := retry - retry/1000 - time.Microsecond
			if early > 0 {
				clk.Advance(early)
				if ok, _ := l.Allow("k"); ok {
					t.Fatalf("case %d (rate %g, burst %d): allowed %v before retryAfter %v", i, rate, burst, retry-early, retry)
				}
				clk.Advance(retry - early)
			} else {
				clk.Advance(retry)
			}
			if ok, again := l.Allow("k"); !ok {
				t.Fatalf("case %d (rate %g, burst %d): refused at retryAfter %v, now says %v", i, rate, burst, retry, again)
			}
			break
		}
	}
}

func TestIdleKeysAreEvicted(t *testing.T) {
	clk := newClock()
	l := New(1, 5, WithClock(clk.Now)) // a bucket refills fully in 5s
	for i := range 1000 {
		l.Allow("k" + strconv.Itoa(i))
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("Len = %d; want 1000", n)
	}
	clk.Advance(4 * time.Second)
	l.Allow("k0") // not yet refilled: nothing may go
	if n := l.Len(); n != 1000 {
		t.Fatalf("Len after 4s = %d; want 1000", n)
	}
	clk.Advance(time.Second)
	l.Allow("new")
	// Everything except k0 (touched 1s ago) and "new" has refilled fully.
	if n := l.Len(); n != 2 {
		t.Fatalf("Len after 5s = %d; want 2", n)
	}
}

// Evicting an idle bucket must be invisible: a key that comes back after
// its bucket was dropped sees exactly what it would have seen otherwise.
func TestEvictionIsLossless(t *testing.T) {
	clk := newClock()
	l := New(0.5, 2, WithClock(clk.Now)) // full after 4s
	l.Allow("a")
	l.Allow("a")
	clk.Advance(4 * time.Second)
	l.Allow("other") // evicts "a"
	if n := l.Len(); n != 1 {
		t.Fatalf("Len = %d; want 1", n)
	}
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a"); ok != want {
			t.Errorf("request %d after eviction: ok = %v; want %v", i, ok, want)
		}
	}
}

func TestMaxKeys(t *testing.T) {
	clk := newClock()
	l := New(1, 1, WithClock(clk.Now), WithMaxKeys(3))
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(k)
	}
	l.Allow("a") // refused, but makes "a" most recently used; "b" is now oldest
	l.Allow("d") // at the cap: evicts "b"
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d; want 3", n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error(`"a" was evicted although recently used`)
	}
	if ok, _ := l.Allow("c"); ok {
		t.Error(`"c" was evicted although newer than "b"`)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error(`"b" was not evicted (still limited)`)
	}
	// WithMaxKeys ignores nonsense values rather than disabling tracking.
	if l := New(1, 1, WithMaxKeys(0)); l.maxKeys != DefaultMaxKeys {
		t.Errorf("WithMaxKeys(0) set maxKeys to %d", l.maxKeys)
	}
}

func TestClockGoingBackwards(t *testing.T) {
	clk := newClock()
	l := New(1, 1, WithClock(clk.Now))
	l.Allow("a")
	clk.Advance(-time.Hour)
	if ok, retry := l.Allow("a"); ok || retry != time.Second {
		t.Errorf("after clock went back: %v, %v; want false, 1s", ok, retry)
	}
	clk.Advance(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("bucket did not refill after clock resumed")
	}
}

func TestRealClock(t *testing.T) {
	l := New(1, 2)
	a, _ := l.Allow("k")
	b, _ := l.Allow("k")
	c, retry := l.Allow("k")
	if !a || !b || c || retry <= 0 || retry > time.Second {
		t.Errorf("got %v %v %v retry %v", a, b, c, retry)
	}
}

func TestConcurrent(t *testing.T) {
	clk := newClock()
	l := New(1, 100, WithClock(clk.Now))
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ok, _ := l.Allow("shared")
				l.Allow("own" + strconv.Itoa(g*1000+i))
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// The clock never moved, so exactly the burst gets through.
	if allowed != 100 {
		t.Errorf("allowed %d of 1600 concurrent requests; want 100 (the burst)", allowed)
	}
}
