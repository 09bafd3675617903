package statustest_test

import (
	"testing"

	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/status/statustest"
)

// A host with its own job store (a SQL table, say) runs the suite from
// the store's tests, with a fresh, empty store for each case:
//
//	func TestJobStore(t *testing.T) {
//		statustest.TestJobStore(t, func(t *testing.T) status.JobStore { return openEmptyStore(t) })
//	}
//
// Here the suite runs on the in-memory store.
func Example() {
	suite := func(t *testing.T) {
		statustest.TestJobStore(t, func(*testing.T) status.JobStore { return new(status.MemoryJobStore) })
	}
	_ = suite
}
