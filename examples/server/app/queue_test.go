package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
)

const dispatchRoute = "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"

// TestQueueRidesOutNetworkTrouble: GitHub failing for a while neither
// fails the job nor starts it twice. The cases share one server, one job
// each, in order: the first job's dispatch exchanges the installation's
// token (none is cached), so the token exchange's fault comes first.
func TestQueueRidesOutNetworkTrouble(t *testing.T) {
	t.Parallel()
	// Tries a millisecond apart: what is asserted is that they end in
	// one run, not how long they wait.
	e := newEnv(t, app.WithBackoff(func(int) time.Duration { return time.Millisecond }))
	e.claimed(t, "tenant-a", e.inst)
	for i, tc := range []struct {
		name  string
		fault githubtest.Fault
		sent  int // requests to the fault's route, the failed ones included
	}{
		{"token exchange failing", githubtest.Fault{Route: "POST /app/installations/{installation_id}/access_tokens", Status: 502, Times: 3}, 4}, // 3 failed, 1 more
		{"503 before acting", githubtest.Fault{Route: dispatchRoute, Status: 503, Times: 2}, 3},
		{"acted, then the answer lost", githubtest.Fault{Route: dispatchRoute, ResetConnection: true, AfterHandling: true}, 1},
		// Retry-After is whole seconds: 400 ms is sent as "0", GitHub
		// asking for a retry at once (what is asserted is the one run,
		// not the wait, which the github package's tests cover).
		{"secondary rate limit", githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: 400 * time.Millisecond}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, sent := len(e.fake.Dispatches()), e.fake.RequestCount(tc.fault.Route)
			e.fake.InjectFault(tc.fault)
			code, job := e.create(t, keyA, jobRequest(fmt.Sprintf("job-%d", i)))
			require.Equal(t, 201, code)
			assert.Equal(t, "in_progress", job["status"], job["message"])
			assert.Len(t, e.fake.Dispatches(), runs+1, "exactly one run")
			assert.Equal(t, tc.sent, e.fake.RequestCount(tc.fault.Route)-sent, "the fault was met; only a request that did not act was sent again")
		})
	}
}

func TestQueueGivesUpAtTheDeadline(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	vars["GHBRIDGE_DISPATCH_DEADLINE"] = "300ms"
	e := start(t, fake, vars)
	e.inst = inst
	e.claimed(t, "tenant-a", inst)
	fake.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 503, Times: -1})
	_, job := e.create(t, keyA, jobRequest("job-1"))
	assert.Equal(t, "failure", job["status"])
	assert.Contains(t, job["message"], "gave up after 300ms")
	assert.Contains(t, job["message"], "GHBRIDGE_DISPATCH_DEADLINE")
	assert.Empty(t, fake.Dispatches())
}

// TestAcceptWithGitHubDown: accepting a job never waits for GitHub.
func TestAcceptWithGitHubDown(t *testing.T) {
	t.Parallel()
	e, _, _ := heldEnv(t) // GitHub holds every dispatch until the test ends
	code, job := e.call(t, "POST", "/api/jobs", keyA, jobRequest("job-1"))
	require.Equal(t, 201, code, job)
	assert.Equal(t, "pending", job["status"])
	assert.Empty(t, e.fake.Dispatches(), "answered while GitHub still holds the dispatch")
}

// TestCommittedJobIsDispatched: a caller that hangs up once its job is
// committed (nothing enqueued it) still gets it dispatched: the job row is
// the queue's truth.
func TestCommittedJobIsDispatched(t *testing.T) {
	t.Parallel()
	// The queue's poll finds the job: every 10 ms rather than every
	// second.
	e := newEnv(t, app.WithQueuePoll(10*time.Millisecond))
	e.claimed(t, "tenant-a", e.inst)
	agent := json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}`)
	rec := sqlstore.Record{Job: status.Job{ID: "tenant-a.hung-up", Tenant: "tenant-a", Status: status.Pending, Kind: "workflow_dispatch", Owner: "acme", Repo: "deployer"},
		Agent: agent, Context: json.RawMessage(`{"jobId": "tenant-a.hung-up"}`)}
	require.NoError(t, e.srv.DB().Jobs().CreateRecord(context.Background(), rec))
	e.waitStatus(t, keyA, "hung-up", "in_progress")
	assert.Len(t, e.fake.Dispatches(), 1)
}
