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
// under secret.
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

// NewDeliveryID returns a random GUID like GitHub's.
func NewDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// TestDeliveryStore runs the DeliveryStore conformance suite. newStore
// must return an empty store each call.
func TestDeliveryStore(t *testing.T, newStore func(t *testing.T) webhook.DeliveryStore) {
	ctx := context.Background()
	const lease = time.Minute

	t.Run("ClaimOnce", func(t *testing.T) {
		s := newStore(t)
		ok, err := s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.False(t, ok, "a delivery in progress is not claimed twice")
		ok, err = s.Claim(ctx, "d2", lease)
		require.NoError(t, err)
		assert.True(t, ok, "other deliveries are independent")
	})

	t.Run("CompletedIsNeverClaimedAgain", func(t *testing.T) {
		s := newStore(t)
		ok, err := s.Claim(ctx, "d1", 10*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Complete(ctx, "d1"))
		time.Sleep(30 * time.Millisecond)
		ok, err = s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.False(t, ok)
		require.NoError(t, s.Release(ctx, "d1"))
		ok, err = s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.False(t, ok, "releasing a completed delivery does not reopen it")
	})

	t.Run("ReleasedIsClaimedAgain", func(t *testing.T) {
		s := newStore(t)
		ok, err := s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Release(ctx, "d1"))
		ok, err = s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.True(t, ok, "a redelivery after a failure is processed")
	})

	t.Run("ExpiredClaimIsClaimedAgain", func(t *testing.T) {
		s := newStore(t)
		ok, err := s.Claim(ctx, "d1", 20*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		time.Sleep(60 * time.Millisecond)
		ok, err = s.Claim(ctx, "d1", lease)
		require.NoError(t, err)
		assert.True(t, ok, "the claim of a crashed worker expires")
	})

	t.Run("CompleteAndReleaseUnknown", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Release(ctx, "never-seen"))
		require.NoError(t, s.Complete(ctx, "never-claimed"))
		ok, err := s.Claim(ctx, "never-claimed", lease)
		require.NoError(t, err)
		assert.False(t, ok)
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.Claim(ctx, "contended", lease)
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
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Claim(cctx, "d1", lease)
		assert.Error(t, err)
	})
}
