package rooms

import "sync"

// lru is a bounded two-generation cache: lookups hit either generation and
// promote; when the young generation fills, the old one is dropped whole.
// It holds at most 2*size entries with O(1) work per operation.
type lru[K comparable, V any] struct {
	mu         sync.Mutex
	size       int
	young, old map[K]V
}

func newLRU[K comparable, V any](size int) *lru[K, V] {
	return &lru[K, V]{size: size, young: make(map[K]V), old: make(map[K]V)}
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
	if len(c.young) >= c.size {
		c.old = c.young
		c.young = make(map[K]V, c.size)
	}
	c.young[k] = v
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.young, k)
	delete(c.old, k)
}
