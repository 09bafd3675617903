package template

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Caches are bounded by an estimate of the memory their entries hold,
// besides their number: a parsed 64 KiB template can hold megabytes, and
// configs come from users.
const (
	// parsedBytesPerByte estimates the memory of a parse tree per byte of
	// template text, worst case.
	parsedBytesPerByte = 80
	// decodedBytesPerByte estimates the memory of a decoded config per
	// byte of JSON, worst case ([0,0,...]).
	decodedBytesPerByte = 48
	entryOverhead       = 1 << 10
	maxTemplateCache    = 128 << 20
	maxConfigCache      = 256 << 20
)

// cache is an LRU cache bounded by entry count and by total weight.
type cache[V any] struct {
	lru    *lru.Cache[string, weighted[V]]
	weight atomic.Int64
	max    int64
}

type weighted[V any] struct {
	v      V
	weight int64
}

func newCache[V any](size int, maxWeight int64) *cache[V] {
	c := &cache[V]{max: maxWeight}
	l, err := lru.NewWithEvict(size, func(_ string, e weighted[V]) { c.weight.Add(-e.weight) })
	if err != nil {
		panic("template: " + err.Error()) // only for a non-positive size, excluded by NewRenderer
	}
	c.lru = l
	return c
}

func (c *cache[V]) get(key string) (V, bool) {
	e, ok := c.lru.Get(key)
	return e.v, ok
}

// add adds v under key with the given weight, evicting the least
// recently used entries while the total is over the limit.
func (c *cache[V]) add(key string, v V, weight int64) {
	if weight > c.max/16 {
		return // one entry may not take a large share of the cache
	}
	if ok, _ := c.lru.ContainsOrAdd(key, weighted[V]{v, weight}); ok {
		return
	}
	for c.weight.Add(weight) > c.max {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
		weight = 0 // counted once; evictions subtract
	}
}
