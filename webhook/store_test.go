package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func TestMemoryDeliveryStore(t *testing.T) {
	webhooktest.TestDeliveryStore(t, func(_ *testing.T, now func() time.Time) webhook.DeliveryStore {
		return webhook.NewMemoryDeliveryStore(0, webhook.WithStoreClock(now))
	})
}

func TestMemoryDeliveryStoreIsBounded(t *testing.T) {
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
