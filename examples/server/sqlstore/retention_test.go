package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	const batch, events = 20, 2*20 + 2
	for name, fresh := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := webhooktest.NewClock(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
			db := open(t, fresh(t), sqlstore.WithClock(clock.Now), sqlstore.WithPruneBatch(batch))
			ctx := context.Background()
			d, jobs, audit := db.Deliveries(), db.Jobs(), db.Audit(func(err error) { t.Error(err) })
			dead, alive := webhook.Holder{Name: "web-1", Incarnation: 1}, webhook.Holder{Name: "web-2", Incarnation: 1}
			claim := func(id string, h webhook.Holder) bool {
				t.Helper()
				ok, err := d.Claim(ctx, id, h, time.Minute)
				require.NoError(t, err)
				return ok
			}

			// Ten days ago: more audit events than two batches delete.
			require.True(t, claim("old-done", alive))
			require.NoError(t, d.Complete(ctx, "old-done"))
			require.True(t, claim("old-claim", dead)) // its process died
			for i := range events {
				audit.Audit(ctx, credentials.AuditEvent{Name: "old", JobID: fmt.Sprint(i), Time: clock.Now()})
			}
			for _, j := range []status.Job{{ID: "old-finished", Status: status.Pending}, {ID: "old-pending", Status: status.Pending}} {
				require.NoError(t, jobs.CreateJob(ctx, j))
			}
			_, err := jobs.UpdateJob(ctx, "old-finished", 1, status.Update{Status: status.Successful})
			require.NoError(t, err)

			clock.Advance(10 * day)
			require.True(t, claim("new-done", alive))
			require.NoError(t, d.Complete(ctx, "new-done"))
			require.True(t, claim("live-claim", alive))
			audit.Audit(ctx, credentials.AuditEvent{Name: "new", Time: clock.Now()})
			require.NoError(t, jobs.CreateJob(ctx, status.Job{ID: "new-finished", Status: status.Pending}))
			_, err = jobs.UpdateJob(ctx, "new-finished", 1, status.Update{Status: status.Failure})
			require.NoError(t, err)

			// Nothing kept forever but claims whose lease has passed.
			rep, err := db.Prune(ctx, sqlstore.Retention{})
			require.NoError(t, err)
			assert.Equal(t, sqlstore.PruneReport{Deliveries: 1}, rep, "old-claim")

			rep, err = db.Prune(ctx, sqlstore.Retention{Deliveries: 7 * day, AuditEvents: 7 * day, Jobs: 7 * day})
			require.NoError(t, err)
			assert.Equal(t, sqlstore.PruneReport{Deliveries: 1, AuditEvents: events, Jobs: 1}, rep)

			assert.False(t, claim("new-done", dead), "kept")
			assert.False(t, claim("live-claim", dead), "a live claim is kept")
			assert.True(t, claim("old-claim", alive), "the stale claim is gone")
			evs, err := audit.Events(ctx, 10)
			require.NoError(t, err)
			require.Len(t, evs, 1)
			assert.Equal(t, "new", evs[0].Name)
			_, err = jobs.GetJob(ctx, "old-finished")
			assert.ErrorIs(t, err, status.ErrJobNotFound)
			_, err = jobs.UpdateJob(ctx, "old-finished", 2, status.Update{Message: new("late")})
			assert.Error(t, err, "a pruned job is not updated from a cached copy")
			for _, id := range []string{"old-pending", "new-finished"} {
				_, err = jobs.GetJob(ctx, id)
				assert.NoError(t, err, "%s is kept: unfinished, or finished recently", id)
			}
			rep, err = db.Prune(ctx, sqlstore.Retention{Deliveries: 7 * day, AuditEvents: 7 * day, Jobs: 7 * day})
			require.NoError(t, err)
			assert.Zero(t, rep, "nothing more")
		})
	}
}
