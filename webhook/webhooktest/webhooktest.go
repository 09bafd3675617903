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

	"github.com/ghbridge/ghbridge/internal/contend"
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
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s webhook.DeliveryStore, clock *Clock)
	}{
		{"ClaimOnce", claimOnce},
		{"CompletedIsNeverClaimedAgain", completedIsNeverClaimedAgain},
		{"ReleasedIsClaimedAgain", releasedIsClaimedAgain},
		{"ReleaseByAnotherHolderKeepsTheClaim", releaseByAnotherHolderKeepsTheClaim},
		{"ClaimHeldUntilTheLeaseEnds", claimHeldUntilTheLeaseEnds},
		{"ClaimOfAnEarlierIncarnationIsStale", claimOfAnEarlierIncarnationIsStale},
		{"AnonymousClaimsWaitForTheLease", anonymousClaimsWaitForTheLease},
		{"ReleaseStaleFreesEarlierIncarnationsOnly", releaseStaleFreesEarlierIncarnationsOnly},
		{"CompleteAndReleaseUnknown", completeAndReleaseUnknown},
		{"ConcurrentClaims", concurrentClaims},
		{"CanceledContext", canceledContext},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
			c.run(t, newStore(t, clock.Now), clock)
		})
	}
}

// lease is the lease of every claim the cases make.
const lease = time.Minute

// holders returns the holders the cases claim for: a process, the same
// process restarted, and another process.
func holders() (a, aRestarted, b webhook.Holder) {
	return webhook.Holder{Name: "host-a", Incarnation: 1}, webhook.Holder{Name: "host-a", Incarnation: 2}, webhook.Holder{Name: "host-b", Incarnation: 1}
}

// claim claims id for h with the lease, and says whether h has it.
func claim(t *testing.T, s webhook.DeliveryStore, id string, h webhook.Holder) bool {
	t.Helper()
	ok, err := s.Claim(context.Background(), id, h, lease)
	require.NoError(t, err)
	return ok
}

// claimOnce checks that a delivery in progress is claimed once, and that
// deliveries are independent.
func claimOnce(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	a, _, b := holders()
	assert.True(t, claim(t, s, "d1", a))
	assert.False(t, claim(t, s, "d1", a), "a delivery in progress is not claimed twice")
	assert.False(t, claim(t, s, "d1", b), "nor by another holder")
	assert.True(t, claim(t, s, "d2", b), "other deliveries are independent")
}

// completedIsNeverClaimedAgain checks that nothing reopens a completed
// delivery: time, a restart, Release or ReleaseStale.
func completedIsNeverClaimedAgain(t *testing.T, s webhook.DeliveryStore, clock *Clock) {
	ctx := context.Background()
	a, aRestarted, b := holders()
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
}

// releasedIsClaimedAgain checks that a released delivery is claimed again,
// as a redelivery after a failure.
func releasedIsClaimedAgain(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	ctx := context.Background()
	a, _, b := holders()
	require.True(t, claim(t, s, "d1", a))
	require.NoError(t, s.Release(ctx, "d1", a))
	assert.True(t, claim(t, s, "d1", b), "a redelivery after a failure is processed")
}

// releaseByAnotherHolderKeepsTheClaim checks that a late holder's Release
// does not drop the claim another holder took over.
func releaseByAnotherHolderKeepsTheClaim(t *testing.T, s webhook.DeliveryStore, clock *Clock) {
	ctx := context.Background()
	a, _, b := holders()
	require.True(t, claim(t, s, "d1", a))
	clock.Advance(lease + time.Second)
	require.True(t, claim(t, s, "d1", b), "a's lease ran out")
	require.NoError(t, s.Release(ctx, "d1", a), "a, late, fails and releases")
	assert.False(t, claim(t, s, "d1", a), "b's claim stands")
}

// claimHeldUntilTheLeaseEnds checks that a claim holds for the lease and
// then expires.
func claimHeldUntilTheLeaseEnds(t *testing.T, s webhook.DeliveryStore, clock *Clock) {
	a, _, b := holders()
	require.True(t, claim(t, s, "d1", a))
	clock.Advance(lease - time.Second)
	assert.False(t, claim(t, s, "d1", b), "within the lease")
	clock.Advance(2 * time.Second)
	assert.True(t, claim(t, s, "d1", b), "the claim of a crashed worker expires")
	assert.False(t, claim(t, s, "d1", a), "and the new claim has a lease of its own")
}

// claimOfAnEarlierIncarnationIsStale checks that a restarted holder takes
// over its earlier incarnation's claims at once, and only it.
func claimOfAnEarlierIncarnationIsStale(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	a, aRestarted, b := holders()
	require.True(t, claim(t, s, "d1", a))
	assert.False(t, claim(t, s, "d1", b), "another process does not know a is gone")
	assert.True(t, claim(t, s, "d1", aRestarted), "a redelivery to the restarted process is processed at once")
	assert.False(t, claim(t, s, "d1", a), "the new incarnation's claim is not stale to an older one")
	assert.False(t, claim(t, s, "d1", b))
}

// anonymousClaimsWaitForTheLease checks that claims of holders without a
// name wait for the lease.
func anonymousClaimsWaitForTheLease(t *testing.T, s webhook.DeliveryStore, clock *Clock) {
	ctx := context.Background()
	require.True(t, claim(t, s, "d1", webhook.Holder{Incarnation: 1}))
	assert.False(t, claim(t, s, "d1", webhook.Holder{Incarnation: 2}), "no name, no way to tell it is gone")
	n, err := s.ReleaseStale(ctx, webhook.Holder{Incarnation: 2})
	require.NoError(t, err)
	assert.Zero(t, n)
	clock.Advance(lease + time.Second)
	assert.True(t, claim(t, s, "d1", webhook.Holder{Incarnation: 2}))
}

// releaseStaleFreesEarlierIncarnationsOnly checks that ReleaseStale frees
// the earlier incarnations' unfinished claims and nothing else.
func releaseStaleFreesEarlierIncarnationsOnly(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	ctx := context.Background()
	a, aRestarted, b := holders()
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
}

// completeAndReleaseUnknown checks Complete and Release of deliveries never
// claimed.
func completeAndReleaseUnknown(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	ctx := context.Background()
	a, _, _ := holders()
	require.NoError(t, s.Release(ctx, "never-seen", a))
	require.NoError(t, s.Complete(ctx, "never-claimed"))
	assert.False(t, claim(t, s, "never-claimed", a))
}

// concurrentClaims checks that of concurrent claims of one delivery exactly
// one wins.
func concurrentClaims(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	ctx := context.Background()
	won := contend.Winners(32, func(i int) bool {
		h := webhook.Holder{Name: fmt.Sprint("host-", i), Incarnation: 1}
		ok, err := s.Claim(ctx, "contended", h, lease)
		assert.NoError(t, err)
		return ok
	})
	assert.Equal(t, 1, won, "exactly one worker wins a delivery")
}

// canceledContext checks that a cancelled context fails Claim.
func canceledContext(t *testing.T, s webhook.DeliveryStore, _ *Clock) {
	ctx := context.Background()
	a, _, _ := holders()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Claim(cctx, "d1", a, lease)
	assert.Error(t, err)
}
