// Package webhooktest helps test code that receives GitHub deliveries:
// signed requests as GitHub sends them, and the conformance suite for
// webhook.DeliveryStore implementations.
package webhooktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
)

// NewRequest returns a delivery request as GitHub sends it: JSON body,
// X-GitHub-Event, a fresh X-GitHub-Delivery GUID and X-Hub-Signature-256
// under secret. Hosts send it to their webhook route in tests.
func NewRequest(event string, payload []byte, secret string) *http.Request {
	return NewRequestWithID(event, NewDeliveryID(), payload, secret)
}

// NewRequestWithID is NewRequest with a given delivery id, for
// redeliveries.
func NewRequestWithID(event, id string, payload []byte, secret string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/github/webhook", bytes.NewReader(payload))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "GitHub-Hookshot/test")
	r.Header.Set("X-GitHub-Event", event)
	r.Header.Set("X-GitHub-Delivery", id)
	r.Header.Set("X-GitHub-Hook-ID", "1")
	r.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, payload))
	return r
}

// NewDeliveryID returns a random GUID like GitHub's, for tests that send
// one delivery several times (NewRequestWithID).
func NewDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// Clock is a clock that moves only when told to, for tests of leases:
// TestDeliveryStore gives one to the stores it makes, and hosts use one
// in further tests of their own store.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestDeliveryStore runs the DeliveryStore conformance suite: hosts that
// implement webhook.DeliveryStore run it on their implementation. newStore
// must return an empty store each call that measures leases with now.
func TestDeliveryStore(t *testing.T, newStore func(t *testing.T, now func() time.Time) webhook.DeliveryStore) {
	ctx := context.Background()
	const lease = time.Minute
	a := webhook.Holder{Name: "host-a", Incarnation: 1}
	aRestarted := webhook.Holder{Name: "host-a", Incarnation: 2}
	b := webhook.Holder{Name: "host-b", Incarnation: 1}
	fresh := func(t *testing.T) (webhook.DeliveryStore, *Clock) {
		clock := NewClock(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
		return newStore(t, clock.Now), clock
	}
	claim := func(t *testing.T, s webhook.DeliveryStore, id string, h webhook.Holder) bool {
		t.Helper()
		ok, err := s.Claim(ctx, id, h, lease)
		require.NoError(t, err)
		return ok
	}

	t.Run("ClaimOnce", func(t *testing.T) {
		s, _ := fresh(t)
		assert.True(t, claim(t, s, "d1", a))
		assert.False(t, claim(t, s, "d1", a), "a delivery in progress is not claimed twice")
		assert.False(t, claim(t, s, "d1", b), "nor by another holder")
		assert.True(t, claim(t, s, "d2", b), "other deliveries are independent")
	})

	t.Run("CompletedIsNeverClaimedAgain", func(t *testing.T) {
		s, clock := fresh(t)
		require.True(t, claim(t, s, "d1", a))
		require.NoError(t, s.Complete(ctx, "d1"))
		clock.Advance(10 * lease)
		assert.False(t, claim(t, s, "d1", b), "not after the lease")
		assert.False(t, claim(t, s, "d1", aRestarted), "not by a new incarnation")
		require.NoError(t, s.Release(ctx, "d1", a))
		assert.False(t, claim(t, s, "d1", b), "releasing a completed delivery does not reopen it")
		n, err := s.ReleaseStale(ctx, aRestarted)
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.False(t, claim(t, s, "d1", b), "nor does releasing stale claims")
	})

	t.Run("ReleasedIsClaimedAgain", func(t *testing.T) {
		s, _ := fresh(t)
		require.True(t, claim(t, s, "d1", a))
		require.NoError(t, s.Release(ctx, "d1", a))
		assert.True(t, claim(t, s, "d1", b), "a redelivery after a failure is processed")
	})

	t.Run("ReleaseByAnotherHolderKeepsTheClaim", func(t *testing.T) {
		s, clock := fresh(t)
		require.True(t, claim(t, s, "d1", a))
		clock.Advance(lease + time.Second)
		require.True(t, claim(t, s, "d1", b), "a's lease ran out")
		require.NoError(t, s.Release(ctx, "d1", a), "a, late, fails and releases")
		assert.False(t, claim(t, s, "d1", a), "b's claim stands")
	})

	t.Run("ClaimHeldUntilTheLeaseEnds", func(t *testing.T) {
		s, clock := fresh(t)
		require.True(t, claim(t, s, "d1", a))
		clock.Advance(lease - time.Second)
		assert.False(t, claim(t, s, "d1", b), "within the lease")
		clock.Advance(2 * time.Second)
		assert.True(t, claim(t, s, "d1", b), "the claim of a crashed worker expires")
		assert.False(t, claim(t, s, "d1", a), "and the new claim has a lease of its own")
	})

	t.Run("ClaimOfAnEarlierIncarnationIsStale", func(t *testing.T) {
		s, _ := fresh(t)
		require.True(t, claim(t, s, "d1", a))
		assert.False(t, claim(t, s, "d1", b), "another process does not know a is gone")
		assert.True(t, claim(t, s, "d1", aRestarted), "a redelivery to the restarted process is processed at once")
		assert.False(t, claim(t, s, "d1", a), "the new incarnation's claim is not stale to an older one")
		assert.False(t, claim(t, s, "d1", b))
	})

	t.Run("AnonymousClaimsWaitForTheLease", func(t *testing.T) {
		s, clock := fresh(t)
		require.True(t, claim(t, s, "d1", webhook.Holder{Incarnation: 1}))
		assert.False(t, claim(t, s, "d1", webhook.Holder{Incarnation: 2}), "no name, no way to tell it is gone")
		n, err := s.ReleaseStale(ctx, webhook.Holder{Incarnation: 2})
		require.NoError(t, err)
		assert.Zero(t, n)
		clock.Advance(lease + time.Second)
		assert.True(t, claim(t, s, "d1", webhook.Holder{Incarnation: 2}))
	})

	t.Run("ReleaseStaleFreesEarlierIncarnationsOnly", func(t *testing.T) {
		s, _ := fresh(t)
		require.True(t, claim(t, s, "a1", a))
		require.True(t, claim(t, s, "a2", a))
		require.True(t, claim(t, s, "done", a))
		require.NoError(t, s.Complete(ctx, "done"))
		require.True(t, claim(t, s, "b1", b))
		require.True(t, claim(t, s, "new", aRestarted))
		n, err := s.ReleaseStale(ctx, aRestarted)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "a1 and a2")
		assert.True(t, claim(t, s, "a1", b), "redelivered to another replica: processed at once")
		assert.True(t, claim(t, s, "a2", b))
		assert.False(t, claim(t, s, "b1", a), "b is alive")
		assert.False(t, claim(t, s, "new", b), "the current incarnation's claims stay")
		assert.False(t, claim(t, s, "done", b), "completed stays completed")
		n, err = s.ReleaseStale(ctx, aRestarted)
		require.NoError(t, err)
		assert.Zero(t, n, "nothing left")
	})

	t.Run("CompleteAndReleaseUnknown", func(t *testing.T) {
		s, _ := fresh(t)
		require.NoError(t, s.Release(ctx, "never-seen", a))
		require.NoError(t, s.Complete(ctx, "never-claimed"))
		assert.False(t, claim(t, s, "never-claimed", a))
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s, _ := fresh(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := webhook.Holder{Name: fmt.Sprint("host-", i), Incarnation: 1}
				ok, err := s.Claim(ctx, "contended", h, lease)
				assert.NoError(t, err)
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, won, "exactly one worker wins a delivery")
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s, _ := fresh(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Claim(cctx, "d1", a, lease)
		assert.Error(t, err)
	})
}
