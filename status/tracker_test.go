package status_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/template"
)

type fixture struct {
	store   *status.MemoryJobStore
	tracker *status.Tracker
	changes []status.Transition
	mu      sync.Mutex
}

func newFixture(t *testing.T, opts ...status.TrackerOption) *fixture {
	t.Helper()
	f := &fixture{store: status.NewMemoryJobStore()}
	opts = append(opts, status.WithTransitionHook(func(_ status.Job, tr status.Transition) {
		f.mu.Lock()
		f.changes = append(f.changes, tr)
		f.mu.Unlock()
	}))
	f.tracker = status.NewTracker(f.store, opts...)
	return f
}

func (f *fixture) job(t *testing.T, id string, mutate ...func(*status.Job)) status.Job {
	t.Helper()
	j := status.Job{ID: id, Status: status.Pending, Kind: "workflow_dispatch", Owner: "acme", Repo: "deployer", InstallationID: 777}
	for _, m := range mutate {
		m(&j)
	}
	require.NoError(t, f.store.CreateJob(context.Background(), j))
	got, err := f.store.GetJob(context.Background(), id)
	require.NoError(t, err)
	return got
}

func (f *fixture) get(t *testing.T, id string) status.Job {
	t.Helper()
	j, err := f.store.GetJob(context.Background(), id)
	require.NoError(t, err)
	return j
}

var t0 = time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC)

func run(st, concl string, sec int) status.RunUpdate {
	return status.RunUpdate{
		RunID: 42, RunAttempt: 1, Status: st, Conclusion: concl, DisplayTitle: "Deploy job-1", Name: "deploy",
		HTMLURL: "https://github.com/acme/deployer/actions/runs/42", UpdatedAt: t0.Add(time.Duration(sec) * time.Second),
		Repository: "acme/deployer", InstallationID: 777,
	}
}

func TestApplyRunLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.job(t, "job-1")
	ctx := context.Background()
	for i, u := range []status.RunUpdate{run("requested", "", 0), run("in_progress", "", 5), run("completed", "success", 180)} {
		res, err := f.tracker.ApplyRun(ctx, u)
		require.NoError(t, err)
		assert.Equal(t, status.Applied, res.Effect, i)
	}
	j := f.get(t, "job-1")
	assert.Equal(t, status.Successful, j.Status)
	assert.Equal(t, int64(42), j.RunID, "the job found by its display title is tied to the run")
	assert.Equal(t, "https://github.com/acme/deployer/actions/runs/42", j.RunURL)
	assert.Equal(t, "run 42 completed: success", j.Message)
	assert.True(t, t0.Add(180*time.Second).Equal(j.RunUpdatedAt))
	require.Len(t, j.History, 2)
	assert.Equal(t, status.Transition{From: status.Pending, To: status.InProgress, Message: "run 42 requested", At: j.History[0].At, Source: "workflow_run", Attempt: 1}, j.History[0])
	assert.Equal(t, status.Successful, j.History[1].To)
	assert.Len(t, f.changes, 2)
}

func TestApplyRunEveryConclusion(t *testing.T) {
	t.Parallel()
	// The conclusions of the package documentation's mapping.
	for conclusion, want := range map[string]status.Status{
		"success": status.Successful, "failure": status.Failure, "timed_out": status.Failure, "startup_failure": status.Failure,
		"cancelled": status.Cancelled, "action_required": status.ActionRequired,
		"skipped": status.Skipped, "neutral": status.Skipped, "stale": status.Skipped,
		"exploded": status.Failure, // unknown: never successful by accident
	} {
		f := newFixture(t)
		f.job(t, "job-1")
		res, err := f.tracker.ApplyRun(context.Background(), run("completed", conclusion, 10))
		require.NoError(t, err)
		assert.Equal(t, status.Applied, res.Effect)
		assert.Equal(t, want, f.get(t, "job-1").Status, conclusion)
	}
}

func TestApplyRunFindsJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(*fixture, *testing.T)
		u     func() status.RunUpdate
		want  status.Effect
	}{
		{"by run id", func(f *fixture, t *testing.T) { f.job(t, "x", func(j *status.Job) { j.RunID = 42 }) },
			func() status.RunUpdate { u := run("queued", "", 1); u.DisplayTitle = "no id here"; return u }, status.Applied},
		{"by display title", func(f *fixture, t *testing.T) { f.job(t, "job-1") }, func() status.RunUpdate { return run("queued", "", 1) }, status.Applied},
		{"by name", func(f *fixture, t *testing.T) { f.job(t, "job-77") },
			func() status.RunUpdate {
				u := run("queued", "", 1)
				u.DisplayTitle, u.Name = "deploy", "deploy job-77"
				return u
			}, status.Applied},
		{"id is a whole word", func(f *fixture, t *testing.T) { f.job(t, "job-1") },
			func() status.RunUpdate { u := run("queued", "", 1); u.DisplayTitle = "Deploy job-10"; return u }, status.NoJob},
		{"unknown run", func(f *fixture, t *testing.T) {}, func() status.RunUpdate { return run("queued", "", 1) }, status.NoJob},
		{"job tied to another run", func(f *fixture, t *testing.T) { f.job(t, "job-1", func(j *status.Job) { j.RunID = 99 }) },
			func() status.RunUpdate { return run("queued", "", 1) }, status.NoJob},
		{"no run id", func(f *fixture, t *testing.T) {}, func() status.RunUpdate { u := run("queued", "", 1); u.RunID = 0; return u }, status.NoJob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f, t)
			res, err := f.tracker.ApplyRun(ctx, tc.u())
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Effect, res.Reason)
		})
	}
}

func TestApplyRunCrossTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		u    func() status.RunUpdate
	}{
		{"other repository", func() status.RunUpdate { u := run("completed", "success", 1); u.Repository = "evil/deployer"; return u }},
		{"same name, other owner", func() status.RunUpdate {
			u := run("completed", "success", 1)
			u.Repository = "acme-evil/deployer"
			return u
		}},
		{"other installation", func() status.RunUpdate { u := run("completed", "success", 1); u.InstallationID = 1; return u }},
		{"no repository", func() status.RunUpdate { u := run("completed", "success", 1); u.Repository = ""; return u }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.job(t, "job-1")
			res, err := f.tracker.ApplyRun(ctx, tc.u())
			require.NoError(t, err)
			assert.Equal(t, status.CrossTenant, res.Effect)
			j := f.get(t, "job-1")
			assert.Equal(t, status.Pending, j.Status, "another tenant's run does not move the job")
			assert.Zero(t, j.RunID)
		})
	}
	f := newFixture(t)
	f.job(t, "job-1")
	u := run("completed", "success", 1)
	u.Repository, u.InstallationID = "ACME/Deployer", 0
	res, err := f.tracker.ApplyRun(ctx, u)
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, "names compare case-insensitively; an absent installation is not a mismatch")
}

func TestApplyRunNeverRegresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1")
	apply := func(u status.RunUpdate) status.Effect {
		res, err := f.tracker.ApplyRun(ctx, u)
		require.NoError(t, err)
		return res.Effect
	}
	assert.Equal(t, status.Applied, apply(run("completed", "failure", 100)))
	assert.Equal(t, status.Stale, apply(run("in_progress", "", 5)), "a late in_progress is older")
	assert.Equal(t, status.Stale, apply(run("requested", "", 0)))
	assert.Equal(t, status.Unchanged, apply(run("completed", "failure", 100)), "a repeated delivery")
	assert.Equal(t, status.Finished, apply(run("completed", "success", 200)), "a finished job stays finished")
	j := f.get(t, "job-1")
	assert.Equal(t, status.Failure, j.Status)
	assert.Len(t, j.History, 1)
}

func TestApplyRunSameTimestamp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1")
	_, err := f.tracker.ApplyRun(ctx, run("in_progress", "", 5))
	require.NoError(t, err)
	res, err := f.tracker.ApplyRun(ctx, run("queued", "", 5))
	require.NoError(t, err)
	assert.Equal(t, status.Unchanged, res.Effect)
	res, err = f.tracker.ApplyRun(ctx, run("completed", "success", 5))
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, "completion within the same second still applies")
	assert.Equal(t, status.Successful, f.get(t, "job-1").Status)
}

func TestApplyRunUnknownValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1")
	_, err := f.tracker.ApplyRun(ctx, run("warping", "", 1))
	require.NoError(t, err)
	j := f.get(t, "job-1")
	assert.Equal(t, status.InProgress, j.Status)
	assert.Contains(t, j.Message, "unknown to ghbridge")
	_, err = f.tracker.ApplyRun(ctx, run("completed", "exploded", 2))
	require.NoError(t, err)
	j = f.get(t, "job-1")
	assert.Equal(t, status.Failure, j.Status, "an unknown conclusion is never success")
	assert.Contains(t, j.Message, "exploded")
}

func TestRerun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	attempt := func(n int, st, concl string, sec int) status.RunUpdate {
		u := run(st, concl, sec)
		u.RunAttempt = n
		return u
	}
	for name, opts := range map[string][]status.TrackerOption{
		"by default":        nil,
		"with a nil policy": {status.WithRerunPolicy(nil)},
	} {
		t.Run("finished job ignores a re-run "+name, func(t *testing.T) {
			f := newFixture(t, opts...)
			f.job(t, "job-1")
			_, err := f.tracker.ApplyRun(ctx, attempt(1, "completed", "failure", 10))
			require.NoError(t, err)
			res, err := f.tracker.ApplyRun(ctx, attempt(2, "queued", "", 20))
			require.NoError(t, err)
			assert.Equal(t, status.Finished, res.Effect)
			assert.Equal(t, status.Failure, f.get(t, "job-1").Status)
		})
	}
	t.Run("policy lets a failed job follow its re-run", func(t *testing.T) {
		f := newFixture(t, status.WithRerunPolicy(func(j status.Job, n int) bool { return j.Status == status.Failure }))
		f.job(t, "job-1")
		_, err := f.tracker.ApplyRun(ctx, attempt(1, "completed", "failure", 10))
		require.NoError(t, err)
		for _, u := range []status.RunUpdate{attempt(2, "queued", "", 20), attempt(2, "completed", "success", 30)} {
			res, err := f.tracker.ApplyRun(ctx, u)
			require.NoError(t, err)
			assert.Equal(t, status.Applied, res.Effect)
		}
		j := f.get(t, "job-1")
		assert.Equal(t, status.Successful, j.Status)
		assert.Equal(t, 2, j.RunAttempt)
		assert.Contains(t, j.Message, "attempt 2")
		res, err := f.tracker.ApplyRun(ctx, attempt(3, "queued", "", 40))
		require.NoError(t, err)
		assert.Equal(t, status.Finished, res.Effect, "the policy refuses to reopen a successful job")
		res, err = f.tracker.ApplyRun(ctx, attempt(1, "completed", "failure", 50))
		require.NoError(t, err)
		assert.Equal(t, status.Stale, res.Effect, "a late update of attempt 1 is older than attempt 2")
	})
	t.Run("unfinished job follows a re-run", func(t *testing.T) {
		f := newFixture(t)
		f.job(t, "job-1")
		_, err := f.tracker.ApplyRun(ctx, attempt(1, "in_progress", "", 10))
		require.NoError(t, err)
		res, err := f.tracker.ApplyRun(ctx, attempt(2, "completed", "success", 5))
		require.NoError(t, err)
		assert.Equal(t, status.Applied, res.Effect, "a new attempt starts a new order, whatever its timestamp")
		assert.Equal(t, status.Successful, f.get(t, "job-1").Status)
	})
}

// Deliveries of one run arriving in every order, concurrently, end in the
// same place.
func TestApplyRunShuffledConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for round := range 20 {
		f := newFixture(t)
		f.job(t, "job-1")
		updates := []status.RunUpdate{run("requested", "", 0), run("queued", "", 1), run("in_progress", "", 5), run("completed", "success", 180)}
		rand.Shuffle(len(updates), func(i, j int) { updates[i], updates[j] = updates[j], updates[i] })
		var wg sync.WaitGroup
		for _, u := range updates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.tracker.ApplyRun(ctx, u)
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		j := f.get(t, "job-1")
		assert.Equal(t, status.Successful, j.Status, "round %d", round)
		assert.Equal(t, status.Successful, j.History[len(j.History)-1].To)
		for _, tr := range j.History {
			assert.False(t, tr.From.Final(), "never out of a final status")
		}
	}
}

func TestApplyJobProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1", func(j *status.Job) { j.RunID = 42 })
	p := status.JobProgress{RunID: 42, RunAttempt: 1, JobName: "deploy", Status: "in_progress", Step: "Apply manifests", Repository: "acme/deployer", InstallationID: 777}
	res, err := f.tracker.ApplyJobProgress(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect)
	j := f.get(t, "job-1")
	assert.Equal(t, status.InProgress, j.Status, "pending becomes in_progress")
	assert.Equal(t, "job deploy in_progress (Apply manifests)", j.Message)
	res, err = f.tracker.ApplyJobProgress(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.Unchanged, res.Effect)
	p.Repository = "evil/x"
	res, err = f.tracker.ApplyJobProgress(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.CrossTenant, res.Effect)

	_, err = f.tracker.ApplyRun(ctx, run("completed", "success", 9))
	require.NoError(t, err)
	p.Repository, p.Status, p.Step = "acme/deployer", "completed", ""
	res, err = f.tracker.ApplyJobProgress(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.Finished, res.Effect)
	assert.Equal(t, "run 42 completed: success", f.get(t, "job-1").Message, "a finished job's message stays")
}

func TestSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1")
	res, err := f.tracker.Set(ctx, "job-1", status.InProgress, "started by the workflow", "")
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect)
	_, err = f.tracker.Set(ctx, "job-1", status.Successful, "done", "manual")
	require.NoError(t, err)
	_, err = f.tracker.Set(ctx, "job-1", status.Failure, "oops", "manual")
	require.ErrorIs(t, err, status.ErrTransition)
	_, err = f.tracker.Set(ctx, "job-1", "bogus", "", "")
	require.ErrorIs(t, err, status.ErrTransition)
	_, err = f.tracker.Set(ctx, "nope", status.Failure, "", "")
	require.ErrorIs(t, err, status.ErrJobNotFound)
	j := f.get(t, "job-1")
	assert.Equal(t, status.Successful, j.Status)
	assert.Equal(t, "manual", j.History[0].Source)
}

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err   error
		class error
	}{
		{status.ErrJobNotFound, failure.ErrFailed},
		{status.ErrJobExists, failure.ErrFailed},
		{status.ErrConflict, failure.ErrTransient},
		{status.ErrTransition, failure.ErrFailed},
		{&status.StatusError{JobID: "j", Status: status.Successful, Reason: "r"}, failure.ErrFailed},
	} {
		assert.ErrorIs(t, tc.err, tc.class, "declared in its class, not only classed by default")
		assert.Equal(t, tc.class, failure.Class(tc.err), tc.err.Error())
	}
	se := &status.StatusError{JobID: "j", Status: status.Successful, Reason: "only an unfinished job can be cancelled"}
	assert.ErrorIs(t, se, status.ErrTransition, "its kind")
	assert.NoError(t, errors.Unwrap(se), "it has no cause")
	assert.Equal(t, "job j is successful: only an unfinished job can be cancelled", se.Error())
}

func TestDispatched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1", func(j *status.Job) { j.InstallationID = 0 })
	_, err := f.tracker.Dispatched(ctx, "job-1", status.Receipt{RunID: 42, RunURL: "https://x/runs/42", InstallationID: 777}, nil)
	require.NoError(t, err)
	j := f.get(t, "job-1")
	assert.Equal(t, status.InProgress, j.Status)
	assert.Equal(t, int64(42), j.RunID)
	assert.Equal(t, 1, j.RunAttempt)
	assert.Equal(t, int64(777), j.InstallationID, "the installation actually used guards the job")
	assert.Equal(t, "dispatched: run 42", j.Message)

	// The run's deliveries can beat the dispatch call's answer.
	f.job(t, "job-2")
	u := run("completed", "success", 3)
	u.RunID, u.DisplayTitle = 43, "Deploy job-2"
	_, err = f.tracker.ApplyRun(ctx, u)
	require.NoError(t, err)
	_, err = f.tracker.Dispatched(ctx, "job-2", status.Receipt{RunID: 43}, nil)
	require.NoError(t, err)
	j = f.get(t, "job-2")
	assert.Equal(t, status.Successful, j.Status)
	assert.Equal(t, "run 43 completed: success", j.Message)
}

func TestStatusForDispatchError(t *testing.T) {
	t.Parallel()
	wrap := func(kind error) error { return &dispatch.Error{Kind: kind, Op: "workflow_dispatch", Repo: "a/b"} }
	for _, tc := range []struct {
		err  error
		want status.Status
	}{
		{nil, status.InProgress},
		{wrap(dispatch.ErrRunNotFound), status.ExternalRunNotFound},
		{wrap(dispatch.ErrDispatchUncertain), status.Pending},
		{fmt.Errorf("%w: %w", dispatch.ErrInvalidIntegration, errors.New("no creds")), status.InvalidIntegration},
		{wrap(dispatch.ErrMissingPermission), status.InvalidIntegration},
		{wrap(dispatch.ErrRepoNotAccessible), status.InvalidIntegration},
		{fmt.Errorf("%w: %w", dispatch.ErrInvalidAgentConfig, template.ErrMissingKey), status.InvalidJobAgent},
		{wrap(dispatch.ErrWorkflowNotFound), status.InvalidJobAgent},
		{wrap(dispatch.ErrNoDispatchTrigger), status.InvalidJobAgent},
		{wrap(dispatch.ErrRefNotFound), status.InvalidJobAgent},
		{wrap(dispatch.ErrInvalidInputs), status.InvalidJobAgent},
		{wrap(dispatch.ErrWorkflowDisabled), status.InvalidJobAgent},
		{wrap(dispatch.ErrRateLimited), status.Pending},
		{wrap(dispatch.ErrUnavailable), status.Pending},
		{wrap(dispatch.ErrRejected), status.Failure},
		{errors.New("unclassified"), status.Failure},
	} {
		assert.Equal(t, tc.want, status.StatusForDispatchError(tc.err), "%v", tc.err)
	}
	f := newFixture(t)
	f.job(t, "job-1")
	_, err := f.tracker.Dispatched(context.Background(), "job-1", status.Receipt{}, wrap(dispatch.ErrWorkflowNotFound))
	require.NoError(t, err)
	j := f.get(t, "job-1")
	assert.Equal(t, status.InvalidJobAgent, j.Status)
	assert.Contains(t, j.Message, "workflow not found")
}

func TestApplyPullRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pr := func(merged bool) status.PullRequestUpdate {
		return status.PullRequestUpdate{Action: "closed", Number: 7, Merged: merged, Body: "Promote\n\n<!-- ghbridge-job: job-1 -->",
			HeadRef: "ghbridge/job-job-1", Repository: "acme/deployer", InstallationID: 777}
	}
	for merged, want := range map[bool]status.Status{true: status.Successful, false: status.Cancelled} {
		f := newFixture(t)
		f.job(t, "job-1", func(j *status.Job) { j.Kind, j.PullRequestNumber = "pull_request", 7 })
		res, err := f.tracker.ApplyPullRequest(ctx, pr(merged))
		require.NoError(t, err)
		assert.Equal(t, status.Applied, res.Effect)
		assert.Equal(t, want, f.get(t, "job-1").Status)
		res, err = f.tracker.ApplyPullRequest(ctx, pr(!merged))
		require.NoError(t, err)
		assert.Equal(t, status.Finished, res.Effect)
	}
	f := newFixture(t)
	f.job(t, "job-1", func(j *status.Job) { j.Kind, j.PullRequestNumber = "pull_request", 7 })
	for _, tc := range []struct {
		mutate func(*status.PullRequestUpdate)
		want   status.Effect
	}{
		{func(p *status.PullRequestUpdate) { p.Action = "opened" }, status.Unchanged},
		{func(p *status.PullRequestUpdate) { p.Body, p.HeadRef = "not ours", "feature" }, status.NoJob},
		{func(p *status.PullRequestUpdate) { p.Number = 8 }, status.NoJob},
		{func(p *status.PullRequestUpdate) { p.Repository = "evil/deployer" }, status.CrossTenant},
	} {
		p := pr(true)
		tc.mutate(&p)
		res, err := f.tracker.ApplyPullRequest(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, tc.want, res.Effect)
	}
	p := pr(true)
	p.Body = ""
	res, err := f.tracker.ApplyPullRequest(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, "the default head branch names the job too")

	// A tenant-qualified job id, as the reference server sends them.
	f = newFixture(t)
	f.job(t, "team-a.job-1", func(j *status.Job) { j.Kind, j.PullRequestNumber = "pull_request", 7 })
	p = pr(true)
	p.Body, p.HeadRef = "Promote\n\n<!-- ghbridge-job: team-a.job-1 -->", "release"
	res, err = f.tracker.ApplyPullRequest(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, res.Reason)
	assert.Equal(t, status.Successful, f.get(t, "team-a.job-1").Status)
}

func TestApplyDeploymentStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1", func(j *status.Job) { j.Kind, j.DeploymentID = "deployment", 42 })
	d := func(state string) status.DeploymentUpdate {
		return status.DeploymentUpdate{DeploymentID: 42, State: state, JobID: "job-1", LogURL: "https://ci/log", Repository: "acme/deployer", InstallationID: 777}
	}
	for _, tc := range []struct {
		state string
		want  status.Effect
		then  status.Status
	}{
		{"queued", status.Unchanged, status.Pending},
		{"in_progress", status.Applied, status.InProgress},
		{"in_progress", status.Unchanged, status.InProgress},
		{"pending", status.Unchanged, status.InProgress},
		{"weird", status.Unchanged, status.InProgress},
		{"success", status.Applied, status.Successful},
		{"failure", status.Finished, status.Successful},
	} {
		res, err := f.tracker.ApplyDeploymentStatus(ctx, d(tc.state))
		require.NoError(t, err)
		assert.Equal(t, tc.want, res.Effect, tc.state)
		assert.Equal(t, tc.then, f.get(t, "job-1").Status, tc.state)
	}
	assert.Equal(t, "https://ci/log", f.get(t, "job-1").RunURL)
	other := d("success")
	other.DeploymentID = 43
	res, err := f.tracker.ApplyDeploymentStatus(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, status.NoJob, res.Effect)
	other = d("success")
	other.JobID = ""
	res, err = f.tracker.ApplyDeploymentStatus(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, status.NoJob, res.Effect)
}

func TestNewJob(t *testing.T) {
	t.Parallel()
	j := status.NewJob("job-1", template.AgentConfig{Type: template.KindDeployment, Owner: "acme", Repo: "api", InstallationID: 5,
		Report: template.ReportSpec{DeploymentStatus: true, CheckRun: &template.CheckRunSpec{Name: "deploy", HeadSHA: "abc"}}})
	assert.Equal(t, status.Job{ID: "job-1", Status: status.Pending, Kind: "deployment", Owner: "acme", Repo: "api", InstallationID: 5,
		Report: status.Report{DeploymentStatus: true, CheckRunName: "deploy", HeadSHA: "abc"}}, j)
}

func TestWaitingIsActionRequired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.job(t, "job-1")
	res, err := f.tracker.ApplyRun(ctx, run("waiting", "", 5))
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, res.Reason)
	assert.Equal(t, status.ActionRequired, f.get(t, "job-1").Status, "a run waiting for an environment's approval needs a person")

	f = newFixture(t)
	f.job(t, "job-1", func(j *status.Job) { j.Kind, j.DeploymentID, j.Status = "deployment", 42, status.InProgress })
	res, err = f.tracker.ApplyDeploymentStatus(ctx, status.DeploymentUpdate{DeploymentID: 42, State: "waiting", JobID: "job-1",
		Repository: "acme/deployer", InstallationID: 777})
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect, res.Reason)
	assert.Equal(t, status.ActionRequired, f.get(t, "job-1").Status)
}

func TestOwnDeploymentStatusesDoNotMoveTheJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []status.TrackerOption
		job  status.Status
		echo status.DeploymentUpdate
	}{
		// ghbridge reports action_required as in_progress (GitHub takes no
		// waiting from clients) and external_run_not_found as error.
		{"action_required echo", nil, status.ActionRequired, status.DeploymentUpdate{State: status.DeploymentState(status.ActionRequired)}},
		{"external_run_not_found echo", nil, status.ExternalRunNotFound, status.DeploymentUpdate{State: status.DeploymentState(status.ExternalRunNotFound)}},
		{"posted by our App", []status.TrackerOption{status.WithAppID(4242)}, status.ActionRequired, status.DeploymentUpdate{State: "success", AppID: 4242}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			f.job(t, "job-1", func(j *status.Job) { j.Kind, j.DeploymentID, j.Status = "deployment", 42, tc.job })
			u := tc.echo
			u.DeploymentID, u.JobID, u.Repository, u.InstallationID = 42, "job-1", "acme/deployer", 777
			res, err := f.tracker.ApplyDeploymentStatus(ctx, u)
			require.NoError(t, err)
			assert.Equal(t, status.Unchanged, res.Effect, res.Reason)
			assert.Equal(t, tc.job, f.get(t, "job-1").Status)
		})
	}
	// A status another App posted still applies.
	f := newFixture(t, status.WithAppID(4242))
	f.job(t, "job-1", func(j *status.Job) { j.Kind, j.DeploymentID, j.Status = "deployment", 42, status.ActionRequired })
	res, err := f.tracker.ApplyDeploymentStatus(ctx, status.DeploymentUpdate{DeploymentID: 42, State: "success", AppID: 15368,
		JobID: "job-1", Repository: "acme/deployer", InstallationID: 777})
	require.NoError(t, err)
	assert.Equal(t, status.Applied, res.Effect)
	assert.Equal(t, status.Successful, f.get(t, "job-1").Status)
}
