package loadcache

import (
	"errors"
	"testing"
)

func TestLoadCachesAndForgets(t *testing.T) {
	c := New[string, int](10)
	calls := 0
	load := func() (int, error) { calls++; return calls, nil }
	if v, _ := c.Load("a", load); v != 1 {
		t.Fatalf("first load = %d", v)
	}
	if v, _ := c.Load("a", load); v != 1 || calls != 1 {
		t.Fatalf("second load = %d after %d calls, want the cached 1", v, calls)
	}
	c.Forget("a")
	if v, _ := c.Load("a", load); v != 2 {
		t.Fatalf("load after Forget = %d, want a fresh 2", v)
	}
}

// A load that raced with a write returns what it read but does not cache it.
func TestLoadRacingAWriteIsNotCached(t *testing.T) {
	for name, write := range map[string]func(c *Map[string, int]){
		"Forget":     func(c *Map[string, int]) { c.Forget("a") },
		"ForgetFunc": func(c *Map[string, int]) { c.ForgetFunc(func(string) bool { return false }) },
		"Set":        func(c *Map[string, int]) { c.Set("b", 7) },
		"Update":     func(c *Map[string, int]) { c.Update("a", func(v int) int { return v }) },
	} {
		c := New[string, int](10)
		v, err := c.Load("a", func() (int, error) { write(c); return 1, nil })
		if v != 1 || err != nil {
			t.Fatalf("%s: load = %d, %v", name, v, err)
		}
		if _, ok := c.Get("a"); ok {
			t.Errorf("%s: a load that raced with it was cached", name)
		}
	}
}

func TestLoadErrorIsReturnedNotCached(t *testing.T) {
	c := New[string, int](10)
	boom := errors.New("boom")
	if v, err := c.Load("a", func() (int, error) { return 5, boom }); v != 5 || !errors.Is(err, boom) {
		t.Fatalf("load = %d, %v", v, err)
	}
	if _, ok := c.Get("a"); ok {
		t.Fatal("a failed load was cached")
	}
}

func TestUpdateOnlyTouchesCachedEntries(t *testing.T) {
	c := New[string, int](10)
	c.Set("a", 1)
	c.Update("a", func(v int) int { return v + 1 })
	c.Update("b", func(v int) int { t.Fatal("fn called for a key not cached"); return v })
	if v, _ := c.Get("a"); v != 2 {
		t.Fatalf("a = %d, want 2", v)
	}
}

func TestBoundStartsOver(t *testing.T) {
	c := New[int, int](2)
	c.Set(1, 1)
	c.Set(2, 2)
	c.Set(2, 3) // replacing an entry does not count as growing
	if _, ok := c.Get(1); !ok {
		t.Fatal("replacing an entry emptied the map")
	}
	c.Set(3, 3)
	if _, ok := c.Get(1); ok {
		t.Fatal("a full map kept its entries")
	}
	if v, ok := c.Get(3); !ok || v != 3 {
		t.Fatal("the new entry is missing")
	}
}
