package template

import (
	"fmt"
	"testing"
)

func TestCacheBoundedByWeight(t *testing.T) {
	t.Parallel()
	c := newCache[int](1000, 1600)
	for i := range 100 {
		c.add(fmt.Sprint(i), i, 100)
		c.add(fmt.Sprint(i), i, 100) // present: not counted twice
		if w := c.weight.Load(); w > 1600 {
			t.Fatalf("after %d adds the cache weighs %d", i+1, w)
		}
	}
	if n := c.lru.Len(); n != 16 {
		t.Fatalf("holds %d entries; want 16", n)
	}
	if _, ok := c.get("99"); !ok {
		t.Fatal("the newest entry was evicted")
	}
	if _, ok := c.get("0"); ok {
		t.Fatal("the oldest entry was kept")
	}
	c.add("big", 1, 101) // over a sixteenth of the limit
	if _, ok := c.get("big"); ok {
		t.Fatal("an entry over a sixteenth of the limit was cached")
	}
	c.lru.Purge()
	if w := c.weight.Load(); w != 0 {
		t.Fatalf("empty cache weighs %d", w)
	}
}
