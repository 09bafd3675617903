package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// leaseStore records the lease the handler claims with.
type leaseStore struct {
	webhook.DeliveryStore
	mu     sync.Mutex
	leases []time.Duration
}

func (s *leaseStore) Claim(ctx context.Context, id string, h webhook.Holder, lease time.Duration) (bool, error) {
	s.mu.Lock()
	s.leases = append(s.leases, lease)
	s.mu.Unlock()
	return s.DeliveryStore.Claim(ctx, id, h, lease)
}

func TestWithClaimLease(t *testing.T) {
	t.Parallel()
	for _, lease := range []time.Duration{0, 5 * time.Minute} {
		store := &leaseStore{DeliveryStore: &webhook.MemoryDeliveryStore{}}
		h, err := webhook.New([]string{"s3cret"}, webhook.WithDeliveryStore(store), webhook.WithClaimLease(lease))
		require.NoError(t, err)
		h.On("workflow_run", func(context.Context, *webhook.Delivery) error { return nil })
		w := httptest.NewRecorder()
		h.ServeHTTP(w, webhooktest.NewRequest("workflow_run", []byte(`{"action": "completed"}`), "s3cret"))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Len(t, store.leases, 1)
		if lease == 0 {
			assert.Positive(t, store.leases[0], "a zero lease keeps the default")
		} else {
			assert.Equal(t, lease, store.leases[0])
		}
	}
}
