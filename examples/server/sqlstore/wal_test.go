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

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/webhook"
)

// Steady writes do not grow the SQLite WAL without bound, and it is
// emptied once they pause. Before, the same writes left a WAL of hundreds
// of megabytes behind.
//
// The WAL overshoots the size it is started over from by what is written
// while a checkpoint runs, so the bound follows the write rate: without
// the race detector some 300 MB/s, 16,000 deliveries, a WAL started over
// from 8 MB and kept under 64 MB; with it, writes some thirty times
// slower, 768 deliveries (some 6 MB of WAL if it were never started over,
// three times the bound) and everything else scaled down 32 times.
func TestWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes tens of megabytes of WAL frames")
	}
	writers, perWriter, scale := 16, 1000, int64(1)
	if raceEnabled {
		perWriter, scale = 48, 32
		// Some four times below its bound, it shares the machine. Without
		// the race detector, where the writes outrun the checkpointer and
		// the WAL peaks at 30-60 MB, it runs alone, as before.
		t.Parallel()
	}
	path := filepath.Join(t.TempDir(), "ghbridge.db")
	db := open(t, "sqlite:"+path, sqlstore.WithWALLimits(8<<20/scale, 4<<20/scale))
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
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("d-%d-%d", w, i)
				ok, err := d.Claim(ctx, id, holder, time.Minute)
				if !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
				if !assert.NoError(t, d.Complete(ctx, id)) {
					return
				}
				if i%(perWriter/20) == 0 {
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
	require.Equal(t, writers*perWriter, n)
	t.Logf("WAL peak %.1f MB", float64(peak)/(1<<20))
	assert.Less(t, peak, 64<<20/scale, "the WAL is started over while writes go on")
	assert.Eventually(t, func() bool { return walSize() == 0 }, 10*time.Second, 10*time.Millisecond,
		"the WAL is emptied when writes pause")
}
