package webhooktest_test

import (
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// A host with its own delivery store (shared by its replicas) runs the
// suite from the store's tests. The suite drives leases with a clock it
// controls, so the store must read the time from now:
//
//	func TestDeliveryStore(t *testing.T) {
//		webhooktest.TestDeliveryStore(t, func(t *testing.T, now func() time.Time) webhook.DeliveryStore {
//			return openEmptyStore(t, now)
//		})
//	}
//
// Here it runs on the in-memory store.
func Example() {
	suite := func(t *testing.T) {
		webhooktest.TestDeliveryStore(t, func(_ *testing.T, now func() time.Time) webhook.DeliveryStore {
			return webhook.NewMemoryDeliveryStore(0, webhook.WithStoreClock(now))
		})
	}
	_ = suite
}
