package webhook_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func TestMemoryDeliveryStore(t *testing.T) {
	t.Parallel()
	webhooktest.TestDeliveryStore(t, func(_ *testing.T, now func() time.Time) webhook.DeliveryStore {
		return webhook.NewMemoryDeliveryStore(0, webhook.WithStoreClock(now))
	})
}

func TestMemoryDeliveryStoreIsBounded(t *testing.T) {
	t.Parallel()
	s := webhook.NewMemoryDeliveryStore(100)
	ctx := context.Background()
	for i := range 1000 {
		ok, err := s.Claim(ctx, fmt.Sprint("d", i), webhook.NewHolder("h"), time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Complete(ctx, fmt.Sprint("d", i)))
	}
	assert.Equal(t, 100, s.Len())
	ok, err := s.Claim(ctx, "d999", webhook.NewHolder("h"), time.Minute)
	require.NoError(t, err)
	assert.False(t, ok, "recent ids are kept")
}

func TestMemoryDeliveryStoreZeroValue(t *testing.T) {
	t.Parallel()
	var s webhook.MemoryDeliveryStore
	ctx := context.Background()
	h := webhook.Holder{Name: "h", Incarnation: 1}
	ok, err := s.Claim(ctx, "d1", h, time.Minute)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Claim(ctx, "d1", h, time.Minute)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, 1, s.Len())
	var empty webhook.MemoryDeliveryStore
	n, err := empty.ReleaseStale(ctx, h)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Zero(t, empty.Len())
}

// modelStore is the reference the memory store is checked against: every
// id in claim order, the oldest forgotten beyond max.
type modelStore struct {
	max   int
	order []string
	state map[string]modelEntry
}

type modelEntry struct {
	done      bool
	holder    webhook.Holder
	leaseEnds time.Time
}

func (m *modelStore) forget(id string) {
	delete(m.state, id)
	for i, o := range m.order {
		if o == id {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			return
		}
	}
}

func (m *modelStore) add(id string, e modelEntry) {
	for len(m.order) >= m.max {
		m.forget(m.order[0])
	}
	m.order = append(m.order, id)
	m.state[id] = e
}

func (m *modelStore) claim(id string, h webhook.Holder, now time.Time, lease time.Duration) bool {
	if e, ok := m.state[id]; ok {
		earlier := h.Name != "" && e.holder.Name == h.Name && e.holder.Incarnation < h.Incarnation
		if e.done || (now.Before(e.leaseEnds) && !earlier) {
			return false
		}
		m.state[id] = modelEntry{holder: h, leaseEnds: now.Add(lease)}
		return true
	}
	m.add(id, modelEntry{holder: h, leaseEnds: now.Add(lease)})
	return true
}

// TestMemoryDeliveryStoreMatchesModel drives the store and a plain
// reference with the same random operations (claims, completions,
// releases, restarts, many holders, the clock moving) and compares every
// answer: the bound, the order ids are forgotten in and the holders'
// bookkeeping must not change what the store answers.
func TestMemoryDeliveryStoreMatchesModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for seed := range int64(12) {
		rnd := rand.New(rand.NewPCG(uint64(seed), 1))
		clock := webhooktest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		max := 1 + rnd.IntN(40)
		s := webhook.NewMemoryDeliveryStore(max, webhook.WithStoreClock(clock.Now))
		m := &modelStore{max: max, state: map[string]modelEntry{}}
		const lease = time.Minute
		var holders []webhook.Holder
		for i := range 3 + rnd.IntN(200) {
			holders = append(holders, webhook.Holder{Name: fmt.Sprint("host-", rnd.IntN(5)), Incarnation: int64(i)})
		}
		for op := range 2000 {
			id := fmt.Sprint("d", rnd.IntN(3*max))
			h := holders[rnd.IntN(len(holders))]
			switch rnd.IntN(6) {
			case 0, 1:
				got, err := s.Claim(ctx, id, h, lease)
				require.NoError(t, err)
				require.Equal(t, m.claim(id, h, clock.Now(), lease), got, "seed %d op %d: claim %s by %v", seed, op, id, h)
			case 2:
				require.NoError(t, s.Complete(ctx, id))
				if e, ok := m.state[id]; ok {
					e.done = true
					m.state[id] = e
				} else {
					m.add(id, modelEntry{done: true})
				}
			case 3:
				require.NoError(t, s.Release(ctx, id, h))
				if e, ok := m.state[id]; ok && !e.done && e.holder == h {
					m.forget(id)
				}
			case 4:
				n, err := s.ReleaseStale(ctx, h)
				require.NoError(t, err)
				want := 0
				for _, o := range append([]string(nil), m.order...) {
					e := m.state[o]
					if !e.done && h.Name != "" && e.holder.Name == h.Name && e.holder.Incarnation < h.Incarnation {
						m.forget(o)
						want++
					}
				}
				require.Equal(t, want, n, "seed %d op %d: release stale", seed, op)
			case 5:
				clock.Advance(time.Duration(rnd.IntN(40)) * time.Second)
			}
			require.Equal(t, len(m.order), s.Len(), "seed %d op %d", seed, op)
		}
	}
}
