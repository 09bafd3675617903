package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
)

// Steady writes do not grow the SQLite WAL without bound, and it is
// emptied once they pause. Before, the same writes left a WAL of hundreds
// of megabytes behind.
func TestWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes some hundred megabytes of WAL frames")
	}
	path := filepath.Join(t.TempDir(), "ghbridge.db")
	db := open(t, "sqlite:"+path)
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	ctx := context.Background()
	d := db.Deliveries()
	holder := webhook.NewHolder("wal-test")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var peak int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				id := fmt.Sprintf("d-%d-%d", w, i)
				ok, err := d.Claim(ctx, id, holder, time.Minute)
				if !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
				if !assert.NoError(t, d.Complete(ctx, id)) {
					return
				}
				if i%50 == 0 {
					n := walSize()
					mu.Lock()
					peak = max(peak, n)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	n, err := db.CountDeliveries(ctx)
	require.NoError(t, err)
	require.Equal(t, 16*1000, n)
	t.Logf("WAL peak %.1f MB", float64(peak)/(1<<20))
	assert.Less(t, peak, int64(64<<20), "the WAL is started over while writes go on")
	assert.Eventually(t, func() bool { return walSize() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the WAL is emptied when writes pause")
}
