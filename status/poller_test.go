package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/status"
)

// A pass takes a limited number of jobs (10 here). As many older jobs
// whose run can never be found (their dispatch never started one) do not
// keep the poller from the others: polled, they go to the back of the
// line.
func TestPollerIsFair(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	w := newWorld(t, status.WithClock(clock))
	ctx := context.Background()
	const agent = `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`
	const limit = 10 // lost jobs, and jobs one Poll checks
	for i := range limit {
		require.NoError(t, w.store.CreateJob(ctx, status.Job{ID: fmt.Sprint("lost-", i), Status: status.Pending, Kind: "workflow_dispatch",
			Owner: "acme", Repo: "deployer", InstallationID: w.inst.ID, CreatedAt: now.Add(-2 * time.Hour)}))
	}
	run := w.start(t, "job-run", agent)
	w.fake.SetWebhook("", "") // the run's deliveries are lost
	_, err := w.fake.SetRunStatus(run.RunID, "completed", "success")
	require.NoError(t, err)

	source := func(_ context.Context, j status.Job) (dispatch.Request, error) {
		return dispatch.Request{ID: j.ID, Agent: json.RawMessage(agent)}, nil
	}
	p := status.NewPoller(w.tracker, w.store, w.clients, status.WithRunFinder(ghbridge.NewRunFinder(w.dispatcher, source)),
		status.WithQuietAfter(time.Minute), status.WithPollLimit(limit))
	now = now.Add(time.Hour)
	rep, err := p.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, status.PollReport{Checked: limit}, rep, "the oldest: nothing to find")
	assert.Equal(t, status.InProgress, w.job(t, "job-run").Status)

	now = now.Add(2 * time.Minute) // every job is quiet again
	rep, err = p.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, limit, rep.Checked)
	assert.Equal(t, 1, rep.Updated)
	assert.Equal(t, status.Successful, w.job(t, "job-run").Status, "reached on the next pass")
}
