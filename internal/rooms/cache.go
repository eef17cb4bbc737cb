package rooms

import "sync"

// lru is a bounded two-generation cache: lookups hit either generation and
// promote; when the young generation's weight reaches size, the old one is
// dropped whole. Each entry weighs 1, or what weigh says (a state map
// weighs its entries, so the cache of state groups is bounded by memory,
// not by a count that big rooms would make gigabytes of). It holds at most
// about 2*size weight with O(1) work per operation.
type lru[K comparable, V any] struct {
	mu         sync.Mutex
	size       int
	weigh      func(V) int
	young, old map[K]V
	youngW     int
}

func newLRU[K comparable, V any](size int) *lru[K, V] {
	return newWeightedLRU[K, V](size, func(V) int { return 1 })
}

func newWeightedLRU[K comparable, V any](size int, weigh func(V) int) *lru[K, V] {
	return &lru[K, V]{size: size, weigh: weigh, young: make(map[K]V), old: make(map[K]V)}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.young[k]; ok {
		return v, true
	}
	if v, ok := c.old[k]; ok {
		c.putLocked(k, v)
		return v, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *lru[K, V]) putLocked(k K, v V) {
	if _, ok := c.young[k]; ok {
		c.young[k] = v
		return
	}
	if c.youngW >= c.size {
		c.old = c.young
		c.young = make(map[K]V)
		c.youngW = 0
	}
	c.young[k] = v
	c.youngW += max(1, c.weigh(v))
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.young[k]; ok {
		c.youngW -= max(1, c.weigh(v))
		delete(c.young, k)
	}
	delete(c.old, k)
}
