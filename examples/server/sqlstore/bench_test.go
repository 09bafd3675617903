package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

// BenchmarkDeliveryPath measures what the server asks of the store for one
// workflow_run delivery: claim it, find the job by run id, update it,
// complete the delivery. Jobs alternate between pending and in_progress
// (the store applies what it is told; the Tracker is the one that refuses
// regressions), so every iteration writes a transition.
func BenchmarkDeliveryPath(b *testing.B) {
	for name, fresh := range backends {
		b.Run(name, func(b *testing.B) {
			db := open(b, fresh(b))
			benchDeliveryPath(b, db)
		})
	}
}

func benchDeliveryPath(b *testing.B, db *sqlstore.DB) {
	ctx := context.Background()
	jobs, deliveries := db.Jobs(), db.Deliveries()
	holder := webhook.NewHolder("bench")
	const n = 4096
	for i := range n {
		require.NoError(b, jobs.CreateJob(ctx, status.Job{ID: fmt.Sprintf("job-%d", i), Status: status.Pending,
			Owner: "acme", Repo: "app", RunID: int64(1000 + i)}))
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			id := fmt.Sprintf("delivery-%d", i)
			ok, err := deliveries.Claim(ctx, id, holder, time.Minute)
			if err != nil || !ok {
				b.Fatalf("claim: %v %v", ok, err)
			}
			for {
				j, err := jobs.FindJobByRunID(ctx, 1000+i%n)
				if err != nil {
					b.Fatal(err)
				}
				to := status.InProgress
				if j.Status == status.InProgress {
					to = status.Pending
				}
				_, err = jobs.UpdateJob(ctx, j.ID, j.Version, status.Update{Status: to, Source: "bench"})
				if err == nil {
					break
				}
				if !errors.Is(err, status.ErrConflict) {
					b.Fatal(err)
				}
			}
			if err := deliveries.Complete(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
