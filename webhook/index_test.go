package webhook

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIndexMatchesModel adds and removes entries with chosen keys, many of
// them of the same tag or home slot, including the last slot (whose
// probes wrap around), evicting the oldest beyond the bound, and checks
// after every step that the index finds exactly the entries in use.
func TestIndexMatchesModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 2))
		s := NewMemoryDeliveryStore(1 + rnd.IntN(300))
		s.init()
		// Keys from few tags (top words), so that tags and homes collide.
		key := func() idKey {
			top := [...]uint64{0, 1, 0xffffffff, 0x80000000, uint64(rnd.Uint32())}[rnd.IntN(5)]
			return idKey{top<<32 | uint64(rnd.IntN(4)), uint64(rnd.IntN(1000))}
		}
		model := map[idKey]bool{}
		for op := range 3000 {
			k := key()
			_, held := s.find(k)
			require.Equal(t, model[k], held, "seed %d op %d: find %x", seed, op, k)
			switch {
			case !held:
				s.add(memDelivery{key: k, holder: -1, done: true})
			case rnd.IntN(2) == 0:
				i, _ := s.find(k)
				d := s.entry(s.seqOf(uint32(s.index.slots[i])))
				require.NotNil(t, d)
				require.Equal(t, k, d.key)
				s.remove(d)
			}
			clear(model)
			for i := s.head; i < len(s.queue); i++ {
				if d := s.queue[i]; d.used {
					model[d.key] = true
				}
			}
			require.Equal(t, s.live, len(model), "seed %d op %d", seed, op)
			require.Equal(t, s.live, s.index.n, "seed %d op %d", seed, op)
			require.LessOrEqual(t, 2*s.index.n, len(s.index.slots))
		}
		for k := range model {
			_, held := s.find(k)
			require.True(t, held, "seed %d: %x lost", seed, k)
		}
	}
}

// TestStoreReleasesDoNotPile: claims released after failed handlers, in a
// store that never fills up, do not keep a slot each.
func TestStoreReleasesDoNotPile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := NewMemoryDeliveryStore(10)
	h := NewHolder("a")
	ok, err := s.Claim(ctx, "old", h, time.Hour) // in use throughout, at the front
	require.NoError(t, err)
	require.True(t, ok)
	for i := range 10_000 {
		id := strconv.Itoa(i)
		ok, err := s.Claim(ctx, id, h, time.Hour)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Release(ctx, id, h))
		require.LessOrEqual(t, len(s.queue), 2*10+1, "after %d releases", i+1)
	}
	ok, err = s.Claim(ctx, "old", h, time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "the claim in use is kept")
	require.Equal(t, 1, s.Len())
}
