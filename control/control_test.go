package control_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/control"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

const hookSecret = "s"

type fixture struct {
	fake    *githubtest.Server
	inst    githubtest.AppInstallation
	store   *status.MemoryJobStore
	tracker *status.Tracker
	ctl     *control.Controller
}

// newFixture wires a tracker and a controller to a fake GitHub that
// delivers to them.
func newFixture(t *testing.T, opts ...control.Option) *fixture {
	t.Helper()
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL), github.WithRetryPolicy(github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}))
	require.NoError(t, err)
	tokens, err := clients.TokenCache(fake.AppConfig())
	require.NoError(t, err)
	installs := credentials.NewMemoryInstallationStore()
	require.NoError(t, installs.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"},
	}))
	resolver := credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(installs))
	store := status.NewMemoryJobStore()
	tracker := status.NewTracker(store)
	ctl := control.New(tracker, github.NewClientSource(resolver, clients), append([]control.Option{control.WithAppID(fake.AppID)}, opts...)...)
	h, err := webhook.New([]string{hookSecret})
	require.NoError(t, err)
	tracker.Register(h)
	ctl.Register(h)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	fake.SetWebhook(srv.URL, hookSecret)
	return &fixture{fake: fake, inst: inst, store: store, tracker: tracker, ctl: ctl}
}

// runningJob makes a run and a job in progress on it.
func (f *fixture) runningJob(t *testing.T, id string, edit ...func(*status.Job)) (status.Job, githubtest.Run) {
	t.Helper()
	wf := f.fake.Workflows("acme", "deployer")[0]
	run, err := f.fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: wf.ID, Event: "workflow_dispatch", DisplayTitle: "Deploy " + id})
	require.NoError(t, err)
	j := status.Job{ID: id, Status: status.InProgress, Kind: "workflow_dispatch", Owner: "acme", Repo: "deployer", InstallationID: f.inst.ID, RunID: run.ID, RunAttempt: 1}
	for _, e := range edit {
		e(&j)
	}
	require.NoError(t, f.store.CreateJob(context.Background(), j))
	return j, run
}

func (f *fixture) get(t *testing.T, id string) status.Job {
	t.Helper()
	j, err := f.store.GetJob(context.Background(), id)
	require.NoError(t, err)
	return j
}

func TestProtectionPolicy(t *testing.T) {
	var asked []control.ProtectionRequest
	f := newFixture(t, control.WithProtectionPolicy(func(_ context.Context, j status.Job, r control.ProtectionRequest) (control.Decision, error) {
		asked = append(asked, r)
		switch r.Environment {
		case "staging":
			return control.Decision{Verdict: control.Approve, Comment: "staging is always fine"}, nil
		case "sandbox":
			return control.Decision{Verdict: control.Reject, Comment: "no sandbox deploys from " + j.ID}, nil
		}
		return control.Decision{}, nil
	}))
	_, run := f.runningJob(t, "to-staging")
	_, err := f.fake.RequestProtectionRule(run.ID, "staging")
	require.NoError(t, err)
	j := f.get(t, "to-staging")
	assert.Equal(t, status.InProgress, j.Status, "approved at once")
	assert.Equal(t, "approved by policy: staging is always fine", j.Message)
	got, _ := f.fake.GetRun(run.ID)
	assert.Equal(t, "in_progress", got.Status)
	require.NotEmpty(t, j.History)
	assert.Equal(t, status.ActionRequired, j.History[0].To)

	_, run = f.runningJob(t, "to-sandbox")
	_, err = f.fake.RequestProtectionRule(run.ID, "sandbox")
	require.NoError(t, err)
	assert.Equal(t, status.Failure, f.get(t, "to-sandbox").Status, "rejected: GitHub failed the run")

	_, run = f.runningJob(t, "to-production")
	_, err = f.fake.RequestProtectionRule(run.ID, "production")
	require.NoError(t, err)
	j = f.get(t, "to-production")
	assert.Equal(t, status.ActionRequired, j.Status, "left to a person")
	require.Len(t, asked, 3)
	assert.Equal(t, "production", asked[2].Environment)
	assert.Equal(t, run.ID, asked[2].RunID)

	// A request for a run of no job, or of another repository's job,
	// changes nothing.
	_, err = f.fake.RequestProtectionRule(run.ID+1000, "production")
	assert.Error(t, err, "no such run in the fake")
}

func TestCheckRunRerequested(t *testing.T) {
	f := newFixture(t)
	j, run := f.runningJob(t, "checked", func(j *status.Job) {
		j.Report.CheckRunName, j.Report.HeadSHA, j.Report.CheckRunID = "deploy", "abc", 77
	})
	_, err := f.fake.SetRunStatus(run.ID, "completed", "failure")
	require.NoError(t, err)
	require.Equal(t, status.Failure, f.get(t, j.ID).Status)
	event := func(appID, checkRunID int64, action string) map[string]any {
		return map[string]any{
			"action":       action,
			"check_run":    map[string]any{"id": checkRunID, "name": "deploy", "head_sha": "abc", "external_id": j.ID, "status": "completed", "app": map[string]any{"id": appID}},
			"repository":   map[string]any{"full_name": "acme/deployer", "name": "deployer", "owner": map[string]any{"login": "acme"}},
			"installation": map[string]any{"id": f.inst.ID},
			"sender":       map[string]any{"login": "octocat", "type": "User"},
		}
	}
	// Another App's check run, or another check run with the job's id:
	// ignored.
	for _, e := range []map[string]any{event(f.fake.AppID+1, 77, "rerequested"), event(f.fake.AppID, 78, "rerequested")} {
		_, err = f.fake.Deliver("check_run", e)
		require.NoError(t, err)
	}
	assert.Equal(t, status.Failure, f.get(t, j.ID).Status)
	assert.Equal(t, 0, f.fake.RequestCount("POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun"))

	_, err = f.fake.Deliver("check_run", event(f.fake.AppID, 77, "rerequested"))
	require.NoError(t, err)
	got := f.get(t, j.ID)
	assert.Equal(t, status.InProgress, got.Status)
	assert.Equal(t, 2, got.RunAttempt)
	assert.Equal(t, "github:octocat", got.History[len(got.History)-1].Actor)
}

func TestCancelDeploymentAndPullRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A deployment made through the API.
	require.NoError(t, f.store.CreateJob(ctx, status.Job{ID: "dep", Status: status.InProgress, Kind: "deployment", Owner: "acme", Repo: "deployer", InstallationID: f.inst.ID}))
	clients, err := github.NewClientFactory(github.WithBaseURL(f.fake.URL))
	require.NoError(t, err)
	f.fake.AddStaticToken("ghp_setup")
	cl, err := clients.Client(credentials.StaticToken(credentials.NewSecret("ghp_setup"), "test"))
	require.NoError(t, err)
	d, _, err := cl.Repositories.CreateDeployment(ctx, "acme", "deployer", &ghDeploymentRequest)
	require.NoError(t, err)
	_, err = f.store.UpdateJob(ctx, "dep", 1, status.Update{DeploymentID: d.GetID()})
	require.NoError(t, err)
	j, err := f.ctl.Cancel(ctx, "dep", "alice")
	require.NoError(t, err)
	assert.Equal(t, status.Cancelled, j.Status)
	deps := f.fake.Deployments()
	require.Len(t, deps, 1)
	require.NotEmpty(t, deps[0].Statuses)
	assert.Equal(t, "inactive", deps[0].Statuses[len(deps[0].Statuses)-1].State)
	assert.Equal(t, "cancelled by alice", deps[0].Statuses[len(deps[0].Statuses)-1].Description)

	// A pull request.
	f.fake.AddBranch("acme", "deployer", "ghbridge/job-pr")
	pr, _, err := cl.PullRequests.Create(ctx, "acme", "deployer", &ghPullRequest)
	require.NoError(t, err)
	require.NoError(t, f.store.CreateJob(ctx, status.Job{ID: "pr", Status: status.InProgress, Kind: "pull_request", Owner: "acme", Repo: "deployer",
		InstallationID: f.inst.ID, PullRequestNumber: pr.GetNumber()}))
	j, err = f.ctl.Cancel(ctx, "pr", "bob")
	require.NoError(t, err)
	assert.Equal(t, status.Cancelled, j.Status)
	assert.Equal(t, "bob", j.History[len(j.History)-1].Actor)
	pulls := f.fake.Pulls("acme", "deployer")
	require.Len(t, pulls, 1)
	assert.Equal(t, "closed", pulls[0].State)
	comments := f.fake.Comments("acme", "deployer", pr.GetNumber())
	require.Len(t, comments, 1)
	assert.Contains(t, comments[0].Body, "Cancelled by bob")

	_, err = f.ctl.Cancel(ctx, "pr", "bob")
	var se *status.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, status.Cancelled, se.Status)
	_, err = f.ctl.Rerun(ctx, "dep", false, "alice")
	assert.ErrorIs(t, err, control.ErrNotSupported, "a deployment job has no run to re-run")
}

var (
	ghDeploymentRequest = gh.DeploymentRequest{Ref: gh.String("main"), Environment: gh.String("production"), RequiredContexts: &[]string{}}
	ghPullRequest       = gh.NewPullRequest{Title: gh.String("Deploy"), Head: gh.String("ghbridge/job-pr"), Base: gh.String("main")}
)

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	for _, err := range []error{control.ErrRefused, control.ErrNotReviewer, control.ErrNotSupported} {
		assert.ErrorIs(t, err, failure.ErrFailed, "declared in its class, not only classed by default")
		assert.False(t, failure.IsTransient(err), err.Error())
	}
	assert.ErrorIs(t, control.ErrNotReviewer, control.ErrRefused, "a reviewer refused is a refusal")
	assert.NotErrorIs(t, control.ErrNotSupported, control.ErrRefused)
}

// GitHub's refusal of an action is ErrRefused, for the operator to read;
// a rate limit, a 5xx or no answer is transient, for the action to be
// tried again.
func TestRefusalAndTroubleAreTold(t *testing.T) {
	t.Parallel()
	const cancelRoute = "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel"
	for name, tc := range map[string]struct {
		fault     githubtest.Fault
		refused   bool
		transient bool
	}{
		"409 refused":          {githubtest.Fault{Route: cancelRoute, Status: 409}, true, false},
		"503":                  {githubtest.Fault{Route: cancelRoute, Status: 503, Times: -1}, false, true},
		"secondary rate limit": {githubtest.Fault{Route: cancelRoute, SecondaryRateLimit: true, RetryAfter: time.Hour}, false, true},
		"no answer":            {githubtest.Fault{Route: cancelRoute, ResetConnection: true, Times: -1}, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			j, _ := f.runningJob(t, "job-1")
			f.fake.InjectFault(tc.fault)
			_, err := f.ctl.Cancel(context.Background(), j.ID, "alice")
			require.Error(t, err)
			assert.Equal(t, tc.refused, errors.Is(err, control.ErrRefused), err.Error())
			assert.Equal(t, tc.transient, failure.IsTransient(err), err.Error())
		})
	}
}
