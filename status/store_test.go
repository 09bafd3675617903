package status_test

import (
	"testing"

	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/status/statustest"
)

func TestMemoryJobStore(t *testing.T) {
	t.Parallel()
	statustest.TestJobStore(t, func(*testing.T) status.JobStore { return status.NewMemoryJobStore() })
}

func TestMemoryJobStoreZeroValue(t *testing.T) {
	t.Parallel()
	statustest.TestJobStore(t, func(*testing.T) status.JobStore { return &status.MemoryJobStore{} })
}

// A store with nothing beyond JobStore (no StaleLister, no CancelLister)
// passes too: the suite's optional parts are optional.
func TestJobStoreAlone(t *testing.T) {
	t.Parallel()
	statustest.TestJobStore(t, func(*testing.T) status.JobStore {
		return struct{ status.JobStore }{status.NewMemoryJobStore()}
	})
}
