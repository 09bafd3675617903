package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

const (
	cancelRoute      = "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"
	forceCancelRoute = "POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel"
)

// controlEnv is tenant A with its installation claimed, on a fake with
// opts, and extra server variables.
func controlEnv(t *testing.T, extra map[string]string, opts ...githubtest.Option) *env {
	t.Helper()
	return controlEnvWith(t, extra, nil, opts...)
}

// controlEnvWith is controlEnv with server options.
func controlEnvWith(t *testing.T, extra map[string]string, serverOpts []app.Option, opts ...githubtest.Option) *env {
	t.Helper()
	fake := githubtest.NewServer(append([]githubtest.Option{githubtest.WithContract(t)}, opts...)...)
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id", "version", "environment"}},
	}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	for k, v := range extra {
		vars[k] = v
	}
	e := start(t, fake, vars, serverOpts...)
	e.inst = inst
	e.claimed(t, "tenant-a", inst)
	return e
}

// running creates a job and returns it in_progress with its run id.
func (e *env) running(t *testing.T, id string) (map[string]any, int64) {
	t.Helper()
	code, job := e.create(t, keyA, jobRequest(id))
	require.Equal(t, 201, code, job)
	require.Equal(t, "in_progress", job["status"], job["message"])
	return job, int64(job["runId"].(float64))
}

// waitStatus waits until GET shows the job in status.
func (e *env) waitStatus(t *testing.T, key, id, want string) map[string]any {
	t.Helper()
	return e.waitJob(t, key, id, "become "+want, func(job map[string]any) bool { return job["status"] == want })
}

func lastTransition(t *testing.T, job map[string]any) map[string]any {
	t.Helper()
	h := job["history"].([]any)
	require.NotEmpty(t, h)
	return h[len(h)-1].(map[string]any)
}

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	e := controlEnv(t, nil)
	_, runID := e.running(t, "job-1")

	code, job := e.call(t, "POST", "/api/jobs/job-1/cancel", keyA, nil)
	require.Equal(t, 200, code, job)
	assert.Equal(t, 1, e.fake.RequestCount(cancelRoute), "GitHub is asked to cancel the run")
	got := e.waitStatus(t, keyA, "job-1", "cancelled")
	tr := lastTransition(t, got)
	assert.Equal(t, "api:tenant-a", tr["actor"], "the history says who asked")
	assert.Equal(t, "workflow_run", tr["source"], "cancelled when GitHub confirms")
	run, _ := e.fake.GetRun(runID)
	assert.Equal(t, "cancelled", run.Conclusion)

	code, body := e.call(t, "POST", "/api/jobs/job-1/cancel", keyA, nil)
	assert.Equal(t, 409, code)
	assert.Equal(t, "job job-1 is cancelled: only an unfinished job can be cancelled", body["error"])
	assert.Equal(t, 0, e.fake.RequestCount(forceCancelRoute))
}

func TestForceCancelAfterGracePeriod(t *testing.T) {
	t.Parallel()
	// The grace period outlasts the cancel request under load: the answer
	// says in_progress before the force-cancel ends the run.
	e := controlEnv(t, map[string]string{"GHBRIDGE_FORCE_CANCEL_AFTER": "250ms"}, githubtest.WithCancelDelay(-1))
	_, runID := e.running(t, "stuck")
	code, job := e.call(t, "POST", "/api/jobs/stuck/cancel", keyA, nil)
	require.Equal(t, 200, code, job)
	assert.Equal(t, "in_progress", job["status"], "the run ignores its cancel")
	assert.Equal(t, "api:tenant-a", job["cancel"].(map[string]any)["requestedBy"])
	got := e.waitStatus(t, keyA, "stuck", "cancelled")
	assert.Equal(t, 1, e.fake.RequestCount(cancelRoute))
	assert.Equal(t, 1, e.fake.RequestCount(forceCancelRoute), "force-cancelled once after the grace period")
	assert.Equal(t, "api:tenant-a", lastTransition(t, got)["actor"])
	run, _ := e.fake.GetRun(runID)
	assert.Equal(t, "cancelled", run.Conclusion)
}

func TestCancelRacesCompletion(t *testing.T) {
	t.Parallel()
	e := controlEnv(t, map[string]string{"GHBRIDGE_FORCE_CANCEL_AFTER": "1h"}, githubtest.WithCancelDelay(-1))
	_, runID := e.running(t, "race")
	code, job := e.call(t, "POST", "/api/jobs/race/cancel", keyA, nil)
	require.Equal(t, 200, code, job)
	// The run completes before the cancel takes effect: what GitHub
	// reports stands.
	_, err := e.fake.SetRunStatus(runID, "completed", "success")
	require.NoError(t, err)
	got := e.waitStatus(t, keyA, "race", "successful")
	assert.Nil(t, got["cancel"], "the cancel is settled")
	code, body := e.call(t, "POST", "/api/jobs/race/cancel", keyA, nil)
	assert.Equal(t, 409, code)
	assert.Contains(t, body["error"], "is successful")

	// And the other way round: a cancel sent to a run that completed
	// but whose delivery was lost learns the outcome from GitHub.
	_, runID = e.running(t, "race-2")
	e.fake.SetWebhook("http://127.0.0.1:1/lost", secret)
	_, err = e.fake.SetRunStatus(runID, "completed", "failure")
	require.Error(t, err, "the delivery is lost")
	e.fake.SetWebhook(e.http.URL+"/api/github/webhook", secret)
	code, body = e.call(t, "POST", "/api/jobs/race-2/cancel", keyA, nil)
	assert.Equal(t, 409, code, body)
	assert.Equal(t, "job race-2 is failure: its run completed before the cancel reached GitHub", body["error"])
	_, got = e.call(t, "GET", "/api/jobs/race-2", keyA, nil)
	assert.Equal(t, "failure", got["status"])
}

func TestCancelBeforeDispatch(t *testing.T) {
	t.Parallel()
	// GitHub is rate limited for a minute: the job waits in the queue,
	// pending. (A client that waits out a rate limit within the step, as
	// it does up to a minute by default, holds the dispatch in flight,
	// where a cancel finds it as in TestCancelRacingDispatchStep.)
	e := controlEnvWith(t, nil, []app.Option{app.WithClientOptions(github.WithRetryPolicy(github.RetryPolicy{
		MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond, MaxRateLimitWait: time.Millisecond}))})
	e.fake.InjectFault(githubtest.Fault{Route: dispatchRoute, PrimaryRateLimit: true, RetryAfter: time.Minute})
	code, job := e.call(t, "POST", "/api/jobs", keyA, jobRequest("early"))
	require.Equal(t, 201, code, job)
	require.Eventually(t, func() bool { return e.fake.RequestCount(dispatchRoute) == 1 }, 10*time.Second, 5*time.Millisecond)
	code, job = e.call(t, "POST", "/api/jobs/early/cancel", keyA, nil)
	require.Equal(t, 200, code, job)
	assert.Equal(t, "cancelled", job["status"])
	assert.Equal(t, "api:tenant-a", lastTransition(t, job)["actor"])

	// A later job goes out (the rate limit was one answer); the cancelled
	// one never.
	e.running(t, "later")
	ds := e.fake.Dispatches()
	require.Len(t, ds, 1)
	assert.Equal(t, "tenant-a.later", ds[0].Inputs["job_id"])
	_, got := e.call(t, "GET", "/api/jobs/early", keyA, nil)
	assert.Equal(t, "cancelled", got["status"])
	due, err := e.srv.DB().Jobs().DueJobs(context.Background(), time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	assert.NotContains(t, due, "tenant-a.early", "nor will the queue send it once the rate limit is over")
}

func TestCancelRacingDispatchStep(t *testing.T) {
	t.Parallel()
	// The dispatch request is in flight (the step saved its state and
	// sent) when the cancel comes.
	e, arrived, release := heldEnv(t)
	code, job := e.call(t, "POST", "/api/jobs", keyA, jobRequest("racer"))
	require.Equal(t, 201, code, job)
	<-arrived
	code, job = e.call(t, "POST", "/api/jobs/racer/cancel", keyA, nil)
	require.Equal(t, 200, code, job)
	require.Equal(t, "cancelled", job["status"], "not on GitHub yet: cancelled at once")

	// The dispatch lands anyway; its run is cancelled, the job stays so.
	release()
	var runs []githubtest.Run
	require.Eventually(t, func() bool {
		runs = e.fake.Runs()
		return len(runs) == 1 && runs[0].Conclusion == "cancelled"
	}, 10*time.Second, 5*time.Millisecond, "the run started for a cancelled job is cancelled: %v", runs)
	assert.Equal(t, 1, e.fake.RequestCount(dispatchRoute))
	assert.Equal(t, 1, e.fake.RequestCount(cancelRoute))
	_, got := e.call(t, "GET", "/api/jobs/racer", keyA, nil)
	assert.Equal(t, "cancelled", got["status"])
	assert.Equal(t, float64(runs[0].ID), got["runId"], "the run is recorded on the job")
}

func TestRerunWithLateDeliveries(t *testing.T) {
	t.Parallel()
	e := controlEnv(t, nil)
	_, runID := e.running(t, "job-1")
	code, body := e.call(t, "POST", "/api/jobs/job-1/rerun", keyA, map[string]any{"failedOnly": false})
	assert.Equal(t, 409, code)
	assert.Equal(t, "job job-1 is in_progress: only a finished job can be re-run", body["error"])

	_, err := e.fake.SetRunStatus(runID, "completed", "failure")
	require.NoError(t, err)
	e.waitStatus(t, keyA, "job-1", "failure")
	late, err := e.fake.RunEventPayload(runID, "completed") // attempt 1's completion, to deliver again later

	require.NoError(t, err)
	code, job := e.call(t, "POST", "/api/jobs/job-1/rerun", keyA, map[string]any{"failedOnly": true})
	require.Equal(t, 200, code, job)
	assert.Equal(t, "in_progress", job["status"])
	assert.Equal(t, float64(2), job["runAttempt"])
	run, _ := e.fake.GetRun(runID)
	assert.Equal(t, 2, run.RunAttempt)
	assert.True(t, run.RerunFailedOnly)
	tr := lastTransition(t, job)
	assert.Equal(t, "api:tenant-a", tr["actor"])
	assert.Equal(t, float64(2), tr["attempt"])

	// A late delivery of attempt 1 does not move the job.
	_, err = e.fake.Deliver("workflow_run", late)
	require.NoError(t, err)
	_, got := e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "in_progress", got["status"])
	assert.Equal(t, float64(2), got["runAttempt"])

	_, err = e.fake.SetRunStatus(runID, "completed", "success")
	require.NoError(t, err)
	got = e.waitStatus(t, keyA, "job-1", "successful")
	var attempts []any
	for _, h := range got["history"].([]any) {
		attempts = append(attempts, h.(map[string]any)["attempt"])
	}
	assert.Equal(t, []any{float64(1), float64(1), float64(2), float64(2)}, attempts, "earlier attempts stay in the history")

	// A re-run clicked on GitHub is not followed by default.
	_, err = e.fake.RerunRun(runID)
	require.NoError(t, err)
	_, got = e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "successful", got["status"])
	assert.Equal(t, float64(2), got["runAttempt"])
}

func TestRerunNeverDispatched(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	e := start(t, fake, baseVars(fake, testdb.MigratedSQLite(t)))
	e.inst = inst
	// Not installed yet: the dispatch fails without reaching GitHub.
	code, job := e.create(t, keyA, jobRequest("early"))
	require.Equal(t, 201, code, job)
	require.Equal(t, "invalid_integration", job["status"])
	e.claimed(t, "tenant-a", inst)

	// Two operators ask at once: one dispatch.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = e.call(t, "POST", "/api/jobs/early/rerun", keyA, nil)
		}()
	}
	wg.Wait()
	assert.ElementsMatch(t, []int{200, 409}, codes)
	e.waitStatus(t, keyA, "early", "in_progress")
	assert.Len(t, fake.Dispatches(), 1, "dispatched again exactly once")
}

func TestProtectionRules(t *testing.T) {
	t.Parallel()
	e := controlEnv(t, nil)
	_, runID := e.running(t, "approve-me")
	_, err := e.fake.RequestProtectionRule(runID, "production")
	require.NoError(t, err)
	got := e.waitStatus(t, keyA, "approve-me", "action_required")
	require.Len(t, got["approvals"], 1)
	assert.Equal(t, "production", got["approvals"].([]any)[0].(map[string]any)["environment"])
	assert.Contains(t, got["message"], `environment "production" (deployment protection rule)`)

	code, job := e.call(t, "POST", "/api/jobs/approve-me/approve", keyA, map[string]any{"comment": "ship it"})
	require.Equal(t, 200, code, job)
	assert.Equal(t, "in_progress", job["status"])
	assert.Contains(t, job["message"], "approved by api:tenant-a: ship it")
	run, _ := e.fake.GetRun(runID)
	assert.Equal(t, "in_progress", run.Status, "GitHub let the run go on")
	code, body := e.call(t, "POST", "/api/jobs/approve-me/approve", keyA, nil)
	assert.Equal(t, 409, code)
	assert.Contains(t, body["error"], "job approve-me is in_progress: only a job waiting for approval")

	_, runID = e.running(t, "reject-me")
	_, err = e.fake.RequestProtectionRule(runID, "production")
	require.NoError(t, err)
	e.waitStatus(t, keyA, "reject-me", "action_required")
	code, job = e.call(t, "POST", "/api/jobs/reject-me/reject", keyA, map[string]any{"comment": "not today"})
	require.Equal(t, 200, code, job)
	e.waitStatus(t, keyA, "reject-me", "failure")

	// GitHub times the rule out while ghbridge does not hear of it: an
	// approval then finds what GitHub decided.
	_, runID = e.running(t, "too-late")
	_, err = e.fake.RequestProtectionRule(runID, "production")
	require.NoError(t, err)
	e.waitStatus(t, keyA, "too-late", "action_required")
	e.fake.SetWebhook("http://127.0.0.1:1/lost", secret)
	require.Error(t, e.fake.TimeoutProtectionRule(runID, "production"), "its delivery is lost")
	e.fake.SetWebhook(e.http.URL+"/api/github/webhook", secret)
	code, body = e.call(t, "POST", "/api/jobs/too-late/approve", keyA, map[string]any{"comment": "sorry"})
	assert.Equal(t, 409, code, body)
	assert.Contains(t, body["error"], "job too-late is failure: GitHub decided before the answer")
	_, got = e.call(t, "GET", "/api/jobs/too-late", keyA, nil)
	assert.Equal(t, "failure", got["status"])
}

func TestRequiredReviewers(t *testing.T) {
	t.Parallel()
	e := controlEnv(t, map[string]string{"GHBRIDGE_SECRET_TENANT_A__GITHUB_REVIEWER_TOKEN": "ghp_alice"})
	e.fake.AddReviewerToken("ghp_alice", "alice")

	_, runID := e.running(t, "bob-only")
	require.NoError(t, e.fake.RequireReviewers(runID, "production", "bob"))
	got := e.waitStatus(t, keyA, "bob-only", "action_required")
	require.Eventually(t, func() bool {
		_, got = e.call(t, "GET", "/api/jobs/bob-only", keyA, nil)
		return got["approvals"] != nil
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, []any{"bob"}, got["approvals"].([]any)[0].(map[string]any)["reviewers"])
	code, body := e.call(t, "POST", "/api/jobs/bob-only/approve", keyA, map[string]any{"comment": "ok"})
	assert.Equal(t, 403, code, body)
	assert.Contains(t, body["error"], "only a required reviewer of environment production")
	assert.Contains(t, body["error"], "GHBRIDGE_SECRET_TENANT_A__GITHUB_REVIEWER_TOKEN")

	_, runID = e.running(t, "alice-ok")
	require.NoError(t, e.fake.RequireReviewers(runID, "production", "alice", "acme/ops"))
	e.waitStatus(t, keyA, "alice-ok", "action_required")
	code, job := e.call(t, "POST", "/api/jobs/alice-ok/approve", keyA, map[string]any{"comment": "lgtm"})
	require.Equal(t, 200, code, job)
	assert.Equal(t, "in_progress", job["status"])
	run, _ := e.fake.GetRun(runID)
	assert.Equal(t, "in_progress", run.Status)
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	tt := twoTenants(t)
	for i := range 3 {
		code, job := tt.create(t, keyA, jobRequest(fmt.Sprint("a-", i)))
		require.Equal(t, 201, code, job)
	}
	code, job := tt.create(t, keyB, map[string]any{"id": "b-0", "agent": agentFor("beta", "web", "")})
	require.Equal(t, 201, code, job)
	code, _ = tt.call(t, "POST", "/api/jobs/a-0/cancel", keyA, nil)
	require.Equal(t, 200, code)
	tt.waitStatus(t, keyA, "a-0", "cancelled")

	ids := func(body map[string]any) []string {
		var out []string
		for _, j := range body["jobs"].([]any) {
			out = append(out, j.(map[string]any)["id"].(string))
		}
		return out
	}
	code, page := tt.call(t, "GET", "/api/jobs?limit=2", keyA, nil)
	require.Equal(t, 200, code, page)
	assert.Equal(t, []string{"a-2", "a-1"}, ids(page), "newest first")
	require.NotEmpty(t, page["next"])
	code, page2 := tt.call(t, "GET", "/api/jobs?limit=2&cursor="+page["next"].(string), keyA, nil)
	require.Equal(t, 200, code, page2)
	assert.Equal(t, []string{"a-0"}, ids(page2))
	assert.Nil(t, page2["next"])

	_, byStatus := tt.call(t, "GET", "/api/jobs?status=cancelled", keyA, nil)
	assert.Equal(t, []string{"a-0"}, ids(byStatus))
	_, byRepo := tt.call(t, "GET", "/api/jobs?repo=ACME/deployer", keyA, nil)
	assert.Len(t, ids(byRepo), 3)
	_, none := tt.call(t, "GET", "/api/jobs?repo=beta/web", keyA, nil)
	assert.Empty(t, ids(none), "the caller's tenant only")
	_, mine := tt.call(t, "GET", "/api/jobs", keyB, nil)
	assert.Equal(t, []string{"b-0"}, ids(mine))

	for _, q := range []string{"status=bogus", "limit=0", "limit=x", "cursor=not-a-cursor!", "cursor=" + page["next"].(string)} {
		key := keyA
		if q == "cursor="+page["next"].(string) {
			key = keyB // A's cursor
		}
		code, body := tt.call(t, "GET", "/api/jobs?"+q, key, nil)
		assert.Equal(t, 400, code, "%s: %v", q, body)
	}
}
