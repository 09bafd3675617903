package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/template"
	"github.com/ghbridge/ghbridge/webhook"
)

type world struct {
	clients    *github.ClientSource
	fake       *githubtest.Server
	inst       githubtest.AppInstallation
	dispatcher *dispatch.Dispatcher
	renderer   *template.Renderer
	tracker    *status.Tracker
	store      *status.MemoryJobStore
	hook       *webhook.Handler
}

const hookSecret = "hook-secret"

func newWorld(t *testing.T, opts ...status.TrackerOption) *world {
	t.Helper()
	fake := githubtest.New(t)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}"},
		{Name: "on-deploy", Path: ".github/workflows/on-deploy.yml", OnDeployment: true, RunName: "Deployment ${{ github.event.deployment.payload.job_id }}"},
	}})
	fake.AddRepo(githubtest.Repo{Owner: "evil", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", RunName: "Deploy ${{ inputs.job_id }}"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "evil", AllRepositories: true})
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL), github.WithRetryPolicy(github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}))
	require.NoError(t, err)
	tokens, err := clients.TokenCache(fake.AppConfig())
	require.NoError(t, err)
	installs := credentials.NewMemoryInstallationStore()
	require.NoError(t, installs.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"},
	}))
	source := github.NewClientSource(credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(installs)), clients)
	store := status.NewMemoryJobStore()
	tracker := status.NewTracker(store, append([]status.TrackerOption{status.WithReporter(status.NewGitHubReporter(source))}, opts...)...)
	h, err := webhook.New([]string{hookSecret})
	require.NoError(t, err)
	tracker.Register(h)
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)
	fake.SetWebhook(recv.URL, hookSecret)
	renderer := template.NewRenderer()
	return &world{fake: fake, inst: inst, store: store, tracker: tracker, hook: h, renderer: renderer, clients: source,
		dispatcher: dispatch.New(source, dispatch.WithRenderer(renderer),
			dispatch.WithRunLookup(dispatch.RunLookup{Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond, Settle: 20 * time.Millisecond}))}
}

// start creates and dispatches a job the way a host does.
func (w *world) start(t *testing.T, id, agent string) status.Job {
	t.Helper()
	ctx := context.Background()
	jc := template.Context{JobID: id, Version: template.Version{Tag: "v1.4.0"}, Environment: template.Environment{Name: "production"}}
	cfg, err := w.renderer.Render(ctx, json.RawMessage(agent), jc)
	require.NoError(t, err)
	require.NoError(t, w.store.CreateJob(ctx, status.NewJob(id, cfg)))
	res, derr := w.dispatcher.Dispatch(ctx, dispatch.Request{ID: id, Agent: json.RawMessage(agent), Context: jc})
	_, err = w.tracker.Dispatched(ctx, id, ghbridge.Dispatched(res), derr)
	require.NoError(t, err)
	j, err := w.store.GetJob(ctx, id)
	require.NoError(t, err)
	return j
}

func (w *world) job(t *testing.T, id string) status.Job {
	t.Helper()
	j, err := w.store.GetJob(context.Background(), id)
	require.NoError(t, err)
	return j
}

func TestEndToEndWorkflowRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	j := w.start(t, "job-1", `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`)
	require.Equal(t, status.InProgress, j.Status)
	require.NotZero(t, j.RunID)
	for _, st := range [][2]string{{"queued", ""}, {"in_progress", ""}, {"completed", "success"}} {
		_, err := w.fake.SetRunStatus(j.RunID, st[0], st[1])
		require.NoError(t, err, "delivery answered 2xx")
	}
	j = w.job(t, "job-1")
	assert.Equal(t, status.Successful, j.Status)
	assert.Equal(t, "run "+itoa(j.RunID)+" completed: success", j.Message)

	// GitHub redelivers the last delivery: acknowledged, not applied again.
	deliveries := w.fake.Deliveries()
	last := deliveries[len(deliveries)-1]
	again, err := w.fake.Deliver("workflow_run", last.Payload)
	require.NoError(t, err, "a fresh delivery id with the same content is applied idempotently")
	assert.Equal(t, 200, again.StatusCode)
	assert.Len(t, w.job(t, "job-1").History, len(j.History))
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestEndToEndCrossTenantRunIsIgnored(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	j := w.start(t, "job-1", `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`)
	// Another tenant dispatches a run titled with our job's id.
	evil, err := w.fake.CreateRun(githubtest.Run{Owner: "evil", Repo: "deployer", WorkflowID: w.fake.Workflows("evil", "deployer")[0].ID,
		Event: "workflow_dispatch", DisplayTitle: "Deploy job-1"})
	require.NoError(t, err)
	_, err = w.fake.SetRunStatus(evil.ID, "completed", "success")
	require.NoError(t, err)
	got := w.job(t, "job-1")
	assert.Equal(t, status.InProgress, got.Status, "another tenant's run cannot finish our job")
	assert.Equal(t, j.RunID, got.RunID)
}

func TestReportsDeploymentStatuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	j := w.start(t, "job-5", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production"}`)
	require.NotZero(t, j.DeploymentID)
	require.Equal(t, status.InProgress, j.Status)
	deps := w.fake.Deployments()
	require.Len(t, deps, 1)
	require.Len(t, deps[0].RunIDs, 1, "the on: deployment workflow started")
	runID := deps[0].RunIDs[0]
	_, err := w.fake.SetRunStatus(runID, "completed", "success")
	require.NoError(t, err)

	j = w.job(t, "job-5")
	assert.Equal(t, status.Successful, j.Status, "found by the job id in the run-name")
	assert.Equal(t, status.Successful, j.Report.Reported)
	var states []string
	for _, s := range w.fake.Deployments()[0].Statuses {
		states = append(states, s.State)
	}
	assert.Equal(t, []string{"in_progress", "success"}, states)
	last := w.fake.Deployments()[0].Statuses[1]
	assert.Contains(t, last.LogURL, "/actions/runs/")
	assert.Contains(t, last.Description, "completed: success")
}

func TestReportsCheckRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sha := strings.Repeat("ab", 20)
	j := w.start(t, "job-6", `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml","report":{"checkRun":{"name":"Deploy to {{ .environment.name }}","headSha":"`+sha+`"}}}`)
	crs := w.fake.CheckRuns()
	require.Len(t, crs, 1)
	assert.Equal(t, "Deploy to production", crs[0].Name)
	assert.Equal(t, sha, crs[0].HeadSHA)
	assert.Equal(t, "job-6", crs[0].ExternalID)
	assert.Equal(t, "in_progress", crs[0].Status)
	assert.Equal(t, crs[0].ID, w.job(t, "job-6").Report.CheckRunID)

	_, err := w.fake.SetRunStatus(j.RunID, "completed", "failure")
	require.NoError(t, err)
	crs = w.fake.CheckRuns()
	require.Len(t, crs, 1, "the check run is updated, not created again")
	assert.Equal(t, "completed", crs[0].Status)
	assert.Equal(t, "failure", crs[0].Conclusion)
	assert.Equal(t, 1, crs[0].Updates)
	assert.Contains(t, crs[0].Summary, "**failure**")
}

// flakyReporter fails its first n reports.
type flakyReporter struct {
	fails   int
	reports []status.Status
}

func (r *flakyReporter) Report(_ context.Context, j status.Job) (*status.Update, error) {
	if r.fails > 0 {
		r.fails--
		return nil, errors.New("GitHub unavailable")
	}
	r.reports = append(r.reports, j.Status)
	return nil, nil
}

func TestFailedReportIsRetriedByTheNextUpdate(t *testing.T) {
	t.Parallel()
	rep := &flakyReporter{fails: 1}
	f := newFixture(t, status.WithReporter(rep))
	f.job(t, "job-1", func(j *status.Job) { j.Report.DeploymentStatus = true })
	ctx := context.Background()
	_, err := f.tracker.ApplyRun(ctx, run("completed", "success", 10))
	require.Error(t, err, "the delivery fails, so that it is redelivered")
	j := f.get(t, "job-1")
	assert.Equal(t, status.Successful, j.Status, "the status itself is stored")
	assert.Empty(t, j.Report.Reported)

	res, err := f.tracker.ApplyRun(ctx, run("completed", "success", 10))
	require.NoError(t, err)
	assert.Equal(t, status.Unchanged, res.Effect)
	assert.Equal(t, []status.Status{status.Successful}, rep.reports, "the redelivery reports what was missed")
	assert.Equal(t, status.Successful, f.get(t, "job-1").Report.Reported)
	_, err = f.tracker.ApplyRun(ctx, run("completed", "success", 10))
	require.NoError(t, err)
	assert.Len(t, rep.reports, 1, "reported once")
}

func TestStateMappings(t *testing.T) {
	t.Parallel()
	for s, want := range map[status.Status]string{
		status.Pending: "queued", status.InProgress: "in_progress", status.ActionRequired: "in_progress",
		status.Successful: "success", status.Failure: "failure", status.Cancelled: "inactive", status.Skipped: "inactive",
		status.InvalidJobAgent: "error", status.InvalidIntegration: "error", status.ExternalRunNotFound: "error",
	} {
		assert.Equal(t, want, status.DeploymentState(s), s)
	}
	for s, want := range map[status.Status][2]string{
		status.Pending: {"queued", ""}, status.InProgress: {"in_progress", ""}, status.ActionRequired: {"in_progress", ""},
		status.ExternalRunNotFound: {"in_progress", ""}, status.Successful: {"completed", "success"},
		status.Failure: {"completed", "failure"}, status.Cancelled: {"completed", "cancelled"}, status.Skipped: {"completed", "skipped"},
		status.InvalidJobAgent: {"completed", "failure"}, status.InvalidIntegration: {"completed", "failure"},
	} {
		st, c := status.CheckRunState(s)
		assert.Equal(t, want, [2]string{st, c}, s)
	}
}

func TestEndToEndPullRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	j := w.start(t, "job-8", `{"type":"pull_request","owner":"acme","repo":"deployer","title":"Deploy {{ .version.tag }}","files":{"VERSION":"{{ .version.tag }}"}}`)
	require.NotZero(t, j.PullRequestNumber)
	_, err := w.fake.MergePull("acme", "deployer", j.PullRequestNumber, true)
	require.NoError(t, err)
	assert.Equal(t, status.Successful, w.job(t, "job-8").Status)
}

func TestPollerCatchesUpOnLostDeliveries(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	w := newWorld(t, status.WithClock(clock))
	ctx := context.Background()
	run := w.start(t, "job-run", `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`)
	dep := w.start(t, "job-dep", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production","report":{"deploymentStatus":false}}`)
	pr := w.start(t, "job-pr", `{"type":"pull_request","owner":"acme","repo":"deployer","title":"t","files":{"a":"b"}}`)
	lost := w.start(t, "job-lost", `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`)
	w.fake.SetWebhook("", "") // from here on, every delivery is lost

	_, err := w.fake.SetRunStatus(run.RunID, "completed", "success")
	require.NoError(t, err)
	_, err = w.fake.SetRunStatus(w.fake.Deployments()[0].RunIDs[0], "completed", "failure")
	require.NoError(t, err)
	_, err = w.fake.MergePull("acme", "deployer", pr.PullRequestNumber, false)
	require.NoError(t, err)
	_, err = w.fake.SetRunStatus(lost.RunID, "completed", "cancelled")
	require.NoError(t, err)
	// Forget job-lost's run id, as after an uncertain dispatch.
	_, err = w.store.UpdateJob(ctx, "job-lost", w.job(t, "job-lost").Version, status.Update{Status: status.Pending})
	require.NoError(t, err)

	source := func(_ context.Context, j status.Job) (dispatch.Request, error) {
		return dispatch.Request{ID: j.ID, Agent: json.RawMessage(`{"owner":"acme","repo":"deployer","workflowId":"deploy.yml"}`)}, nil
	}
	p := status.NewPoller(w.tracker, w.store, w.clients, status.WithRunFinder(ghbridge.NewRunFinder(w.dispatcher, source)),
		status.WithQuietAfter(time.Minute), status.WithPollLimit(10))
	rep, err := p.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, rep.Checked, "nothing is quiet yet")

	now = now.Add(time.Hour)
	rep, err = p.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, status.PollReport{Checked: 4, Updated: 3}, rep)
	assert.Equal(t, status.Successful, w.job(t, "job-run").Status)
	assert.Equal(t, status.Cancelled, w.job(t, "job-pr").Status)
	assert.Equal(t, status.Cancelled, w.job(t, "job-lost").Status, "found by its job id")
	assert.Equal(t, status.InProgress, w.job(t, "job-dep").Status, "no deployment status was posted: nothing to learn")
	assert.NotZero(t, dep.DeploymentID)
}

// GitHub counts a deployment status description in characters (140) and
// a check run's output in bytes (65535); what is cut stays valid UTF-8.
func TestReportLimitsInGitHubsUnits(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	sha := strings.Repeat("ab", 20)
	j := w.start(t, "job-7", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production",
		"report":{"checkRun":{"name":"deploy","headSha":"`+sha+`"}}}`)
	require.NotZero(t, j.DeploymentID)
	j.Message = strings.Repeat("é", 200) + strings.Repeat("€", 30000)
	r := status.NewGitHubReporter(w.clients)
	_, err := r.Report(ctx, j)
	require.NoError(t, err, "GitHub takes what is reported")

	sts := w.fake.Deployments()[0].Statuses
	desc := sts[len(sts)-1].Description
	assert.Equal(t, 140, utf8.RuneCountInString(desc), "140 characters, not 140 bytes")
	assert.Equal(t, strings.Repeat("é", 139)+"…", desc)

	crs := w.fake.CheckRuns()
	summary := crs[len(crs)-1].Summary
	assert.LessOrEqual(t, len(summary), 65535)
	assert.Greater(t, len(summary), 65535-4, "cut at the limit, not well before it")
	assert.True(t, utf8.ValidString(summary))
	assert.True(t, strings.HasSuffix(summary, "€…"), "cut between characters")
}
