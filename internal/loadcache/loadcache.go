// Package loadcache is a bounded in-memory map filled on demand from
// storage, for the small per-user caches services keep (memberships, ignore
// lists, key counts, presence, push rules).
//
// The hazard every such cache has is a load that races with a write: a
// reader misses, reads the database, and before it stores what it read a
// writer commits a change and drops (or updates) the entry; storing the
// reader's copy then would keep the old value until the next write. Every
// change therefore moves a generation counter, and a load that saw the
// counter move while it read returns its value but does not cache it.
package loadcache

import "sync"

// Map caches values by key, at most max entries; when full it starts over
// (it refills from storage). Values are shared between callers: replace
// them (Set, Update), never modify them in place.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]V
	gen uint64
	max int
}

// New returns an empty map holding at most max entries.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{m: map[K]V{}, max: max}
}

// Get returns the cached value of k.
func (c *Map[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// Load returns the cached value of k, or calls load and caches what it
// returns unless it failed or the map changed while it ran (then the value
// is returned uncached). Concurrent misses of one key each call load.
func (c *Map[K, V]) Load(k K, load func() (V, error)) (V, error) {
	v, ok, since := c.Lookup(k)
	if ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.PutUnlessChanged(k, v, since)
	return v, nil
}

// A Stamp is the map's generation at a lookup.
type Stamp uint64

// Lookup is Get that also returns a stamp, for a cache whose entries are
// built from their previous value (or from nothing): compute the new value
// and store it with PutUnlessChanged.
func (c *Map[K, V]) Lookup(k K) (V, bool, Stamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok, Stamp(c.gen)
}

// PutUnlessChanged caches v as the value of k unless the map changed
// (Forget, ForgetFunc, Set, Update) since the lookup that returned since.
func (c *Map[K, V]) PutUnlessChanged(k K, v V, since Stamp) {
	c.mu.Lock()
	if Stamp(c.gen) == since {
		c.put(k, v)
	}
	c.mu.Unlock()
}

// Forget drops the entries of keys after a write that changed them.
func (c *Map[K, V]) Forget(keys ...K) {
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		delete(c.m, k)
	}
	c.mu.Unlock()
}

// ForgetFunc drops the entries whose key drop reports true.
func (c *Map[K, V]) ForgetFunc(drop func(K) bool) {
	c.mu.Lock()
	c.gen++
	for k := range c.m {
		if drop(k) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// Set caches v as the value of k after a write that stored it.
func (c *Map[K, V]) Set(k K, v V) {
	c.mu.Lock()
	c.gen++
	c.put(k, v)
	c.mu.Unlock()
}

// Update replaces a cached entry of k with fn's result after a write that
// changed it; fn sees the cached value and is not called when there is
// none. fn runs under the map's lock: keep it short.
func (c *Map[K, V]) Update(k K, fn func(V) V) {
	c.mu.Lock()
	c.gen++
	if v, ok := c.m[k]; ok {
		c.m[k] = fn(v)
	}
	c.mu.Unlock()
}

func (c *Map[K, V]) put(k K, v V) {
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
}
