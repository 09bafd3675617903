package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/template"
)

const dispatchRoute = "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"

type env struct {
	srv     *githubtest.Server
	d       *dispatch.Dispatcher
	audit   *credentials.MemoryAuditLog
	inst    githubtest.AppInstallation
	store   *credentials.MemoryInstallationStore
	clients *github.ClientFactory
	tokens  *github.TokenCache
}

type envOptions struct {
	server   []githubtest.Option
	retry    github.RetryPolicy
	dispatch []dispatch.Option
	factory  []github.Option
	// volume leaves out the contract checks (githubtest.WithContract)
	// and lists lean runs (githubtest.WithLeanRuns), for a test about how
	// many runs are paged through: a few thousand runs' checks, or their
	// 8 KB of repositories each, take seconds under the race detector.
	// The answers of the same routes are checked by the other tests.
	volume bool
}

var fastRetry = github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, MaxRateLimitWait: 2 * time.Second}

// fastLookup looks every 5 ms: up to 61 looks for the run of an accepted
// dispatch, 5 after an ambiguous failure (the fake lists a run at once
// unless WithRunDelay says otherwise).
var fastLookup = dispatch.RunLookup{Interval: 5 * time.Millisecond, Timeout: 300 * time.Millisecond, Settle: 20 * time.Millisecond}

// giveUpLookup is for a test whose run never shows up: three looks, then
// ErrRunNotFound, instead of fastLookup's 61 listings.
var giveUpLookup = dispatch.WithRunLookup(dispatch.RunLookup{Interval: 5 * time.Millisecond, Timeout: 10 * time.Millisecond, Settle: 20 * time.Millisecond})

func deployerRepo() githubtest.Repo {
	return githubtest.Repo{
		Owner: "acme", Name: "deployer", Branches: []string{"release", "v1.4.0"},
		Workflows: []githubtest.Workflow{
			{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}",
				Inputs: []string{"job_id", "version", "environment"}},
			{Name: "plain", Path: ".github/workflows/plain.yml"},
			{Name: "manual-only", Path: ".github/workflows/push.yml", NoDispatch: true},
			{Name: "off", Path: ".github/workflows/off.yml", Disabled: true},
			{Name: "on-event", Path: ".github/workflows/event.yml", RepositoryDispatchTypes: []string{"deploy"},
				RunName: "Event ${{ github.event.client_payload.job_id }}"},
		},
	}
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	var opts []githubtest.Option
	if o.volume {
		opts = append(opts, githubtest.WithLeanRuns())
	} else {
		opts = append(opts, githubtest.WithContract(t))
	}
	srv := githubtest.NewServer(append(opts, o.server...)...)
	t.Cleanup(srv.Close)
	srv.AddRepo(deployerRepo())
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "secret"})
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	if o.retry == (github.RetryPolicy{}) {
		o.retry = fastRetry
	}
	clients, err := github.NewClientFactory(append([]github.Option{github.WithBaseURL(srv.URL), github.WithRetryPolicy(o.retry)}, o.factory...)...)
	require.NoError(t, err)
	tokens, err := clients.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	store := credentials.NewMemoryInstallationStore()
	require.NoError(t, store.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"},
	}))
	audit := &credentials.MemoryAuditLog{}
	resolver := credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(store))
	d := dispatch.New(github.NewClientSource(resolver, clients), append([]dispatch.Option{dispatch.WithAudit(audit), dispatch.WithRunLookup(fastLookup)}, o.dispatch...)...)
	return &env{srv: srv, d: d, audit: audit, inst: inst, store: store, clients: clients, tokens: tokens}
}

var jobContext = template.Context{
	Version:     template.Version{Tag: "v1.4.0"},
	Environment: template.Environment{Name: "production"},
}

func job(id, agent string) dispatch.Request {
	return dispatch.Request{ID: id, Agent: json.RawMessage(agent), Context: jobContext}
}

const deployAgent = `{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml",
	"inputs": {"version": "{{ .version.tag }}", "environment": "{{ .environment.name }}"}}`

func TestWorkflowDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.NoError(t, err)

	runs := e.srv.Runs()
	require.Len(t, runs, 1)
	assert.Equal(t, runs[0].ID, res.RunID)
	assert.Contains(t, res.HTMLURL, fmt.Sprintf("/acme/deployer/actions/runs/%d", res.RunID))
	assert.Contains(t, res.RunURL, fmt.Sprintf("/repos/acme/deployer/actions/runs/%d", res.RunID))
	assert.Equal(t, credentials.TypeInstallation, res.CredentialType)
	assert.Equal(t, e.inst.ID, res.InstallationID)
	assert.Equal(t, template.KindWorkflowDispatch, res.Kind)
	assert.Equal(t, "main", res.Ref, "ref defaults to main")
	assert.Equal(t, 1, res.Attempts)
	assert.Equal(t, "Deploy job-1", runs[0].DisplayTitle)

	ds := e.srv.Dispatches()
	require.Len(t, ds, 1)
	assert.Equal(t, map[string]string{"job_id": "job-1", "version": "v1.4.0", "environment": "production"}, ds[0].Inputs)
	assert.True(t, ds[0].ReturnRunDetails)
	assert.Equal(t, "main", ds[0].Ref)

	evs := e.audit.Events()
	require.Len(t, evs, 1)
	assert.Equal(t, credentials.AuditEvent{
		Time: evs[0].Time, Name: "dispatch.workflow_dispatch", CredentialType: credentials.TypeInstallation,
		Repo: "acme/deployer", InstallationID: e.inst.ID, JobID: "job-1", Attempt: 1, Outcome: credentials.OutcomeSuccess,
	}, evs[0])
}

func TestWorkflowDispatchByIDAndRef(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	wfID := workflowID(e, "deploy")
	res, err := e.d.Dispatch(context.Background(), job("job-2", fmt.Sprintf(`{"owner":"acme","repo":"deployer","workflowId":%d,"ref":"{{ .version.tag }}"}`, wfID)))
	require.NoError(t, err)
	run, ok := e.srv.GetRun(res.RunID)
	require.True(t, ok)
	assert.Equal(t, wfID, run.WorkflowID)
	assert.Equal(t, "v1.4.0", run.HeadBranch)
}

func TestStaticTokenDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.srv.AddStaticToken("ghp_static")
	res, err := e.d.Dispatch(context.Background(), job("job-3", `{"owner":"acme","repo":"secret","workflowId":"x.yml","token":"ghp_static"}`))
	require.ErrorIs(t, err, dispatch.ErrWorkflowNotFound, "the token sees the repository, which has no such workflow")
	assert.Equal(t, credentials.TypeStaticToken, res.CredentialType)
	assert.Equal(t, 1, res.Attempts)
}

// GitHub Enterprise Server 3.20 and older reject return_run_details; the
// run is then found by its job id, and the server is remembered.
func TestRunDetailsFallback(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t, envOptions{server: []githubtest.Option{githubtest.WithoutRunDetails(status), githubtest.WithRunDelay(40 * time.Millisecond)}})
			other, err := e.srv.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: workflowID(e, "deploy"), Event: "workflow_dispatch", DisplayTitle: "Deploy job-10"})
			require.NoError(t, err)

			res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
			require.NoError(t, err)
			assert.Equal(t, 2, res.Attempts, "the rejected request, then the plain one")
			require.NotEqual(t, other.ID, res.RunID, "job-10 is not job-1")
			run, ok := e.srv.GetRun(res.RunID)
			require.True(t, ok)
			assert.Equal(t, "Deploy job-1", run.DisplayTitle)
			assert.Contains(t, res.HTMLURL, fmt.Sprint(res.RunID))

			res, err = e.d.Dispatch(context.Background(), job("job-2", deployAgent))
			require.NoError(t, err)
			assert.Equal(t, 1, res.Attempts, "the server's answer is remembered")
			ds := e.srv.Dispatches()
			require.Len(t, ds, 2)
			assert.False(t, ds[1].ReturnRunDetails)

			evs := e.audit.Events()
			require.Len(t, evs, 3)
			assert.Equal(t, credentials.OutcomeFailure, evs[0].Outcome)
			assert.Contains(t, evs[0].Error, "return_run_details")
		})
	}
}

// Both API versions dispatch in one request and read the run from the
// answer; 2026-03-10 never sends the removed return_run_details.
func TestAPIVersions(t *testing.T) {
	t.Parallel()
	for _, v := range []string{github.APIVersion20221128, github.APIVersion20260310} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t, envOptions{factory: []github.Option{github.WithAPIVersion(v)}})
			res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
			require.NoError(t, err)
			assert.Equal(t, 1, res.Attempts)
			run, ok := e.srv.GetRun(res.RunID)
			require.True(t, ok)
			assert.Equal(t, "Deploy job-1", run.DisplayTitle)
			ds := e.srv.Dispatches()
			require.Len(t, ds, 1)
			assert.Equal(t, v == github.APIVersion20221128, ds[0].ReturnRunDetails)
			assert.Zero(t, e.srv.RequestCount("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"), "the run came with the answer")
		})
	}
}

func workflowID(e *env, name string) int64 {
	for _, wf := range e.srv.Workflows("acme", "deployer") {
		if wf.Name == name {
			return wf.ID
		}
	}
	return 0
}

func TestRunNotFoundWithoutRunName(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{server: []githubtest.Option{githubtest.WithoutRunDetails(422)}, dispatch: []dispatch.Option{giveUpLookup}})
	res, err := e.d.Dispatch(context.Background(), job("job-1", `{"owner":"acme","repo":"deployer","workflowId":"plain.yml"}`))
	require.ErrorIs(t, err, dispatch.ErrRunNotFound)
	assert.Contains(t, err.Error(), "run-name")
	assert.Zero(t, res.RunID)
	assert.Equal(t, "acme", res.Owner, "the result is returned: the job was dispatched")
	assert.Len(t, e.srv.Dispatches(), 1)
}

func TestDispatchErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		agent  string
		setup  func(e *env)
		kind   error
		also   error
		hint   string
		audits int
	}{
		{name: "workflow not found", agent: `{"owner":"acme","repo":"deployer","workflowId":"nope.yml"}`,
			kind: dispatch.ErrWorkflowNotFound, hint: "check workflowId", audits: 1},
		{name: "no workflow_dispatch trigger", agent: `{"owner":"acme","repo":"deployer","workflowId":"push.yml"}`,
			kind: dispatch.ErrNoDispatchTrigger, hint: "on: workflow_dispatch", audits: 1},
		{name: "disabled workflow", agent: `{"owner":"acme","repo":"deployer","workflowId":"off.yml"}`,
			kind: dispatch.ErrWorkflowDisabled, audits: 1},
		{name: "ref not found", agent: `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml","ref":"nope"}`,
			kind: dispatch.ErrRefNotFound, hint: `"nope" does not exist`, audits: 1},
		{name: "undeclared input", agent: `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml","inputs":{"extra":"x"}}`,
			kind: dispatch.ErrInvalidInputs, hint: "declare every input", audits: 1},
		{name: "missing actions write", agent: deployAgent,
			setup: func(e *env) {
				e.srv.SetPermissions(e.inst.ID, map[string]string{"actions": "read", "metadata": "read"})
			},
			kind: dispatch.ErrMissingPermission, hint: "Actions: Read and write", audits: 1},
		{name: "no installation for the repo and no token", agent: `{"owner":"acme","repo":"secret","workflowId":"deploy.yml"}`,
			kind: dispatch.ErrInvalidIntegration, also: credentials.ErrNotConfigured, hint: "no installation linked to acme/secret", audits: 0},
		{name: "primary rate limit", agent: deployAgent,
			setup: func(e *env) {
				e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, PrimaryRateLimit: true, RetryAfter: time.Hour})
			},
			kind: dispatch.ErrRateLimited, hint: "retry after", audits: 1},
		{name: "secondary rate limit", agent: deployAgent,
			setup: func(e *env) {
				e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Hour})
			},
			kind: dispatch.ErrRateLimited, hint: "secondary rate limit", audits: 1},
		{name: "installation suspended on GitHub", agent: deployAgent,
			setup: func(e *env) { e.srv.SetSuspended(e.inst.ID, true) },
			kind:  dispatch.ErrInvalidIntegration, also: credentials.ErrInstallationToken, audits: 1},
		{name: "installation suspended in the store", agent: deployAgent,
			setup: func(e *env) {
				require.NoError(t, e.store.SetInstallationStatus(context.Background(), e.inst.ID, credentials.StatusSuspended))
			},
			kind: dispatch.ErrInvalidIntegration, also: credentials.ErrInstallationSuspended, audits: 0},
		{name: "template error", agent: `{"owner":"acme","repo":"deployer","workflowId":"deploy.yml","ref":"{{ .version.nope }}"}`,
			kind: dispatch.ErrInvalidAgentConfig, also: template.ErrMissingKey, audits: 0},
		{name: "validation error", agent: `{"owner":"acme","repo":"deployer","workflowId":"deploy"}`,
			kind: dispatch.ErrInvalidAgentConfig, also: template.ErrInvalidConfig, audits: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			if tc.setup != nil {
				tc.setup(e)
			}
			_, err := e.d.Dispatch(context.Background(), job("job-1", tc.agent))
			require.ErrorIs(t, err, tc.kind)
			if tc.also != nil {
				require.ErrorIs(t, err, tc.also)
			}
			assert.Contains(t, err.Error(), tc.hint)
			assert.Empty(t, e.srv.Runs(), "nothing ran")
			assert.Len(t, e.audit.Events(), tc.audits)
		})
	}
}

func TestRepoNotAccessible(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	_, err := e.d.Dispatch(context.Background(), job("job-1", fmt.Sprintf(`{"owner":"acme","repo":"secret","workflowId":"deploy.yml","installationId":%d}`, e.inst.ID)))
	require.ErrorIs(t, err, dispatch.ErrRepoNotAccessible)
	assert.Contains(t, err.Error(), fmt.Sprintf("installation %d cannot see acme/secret", e.inst.ID))
	var de *dispatch.Error
	require.True(t, errors.As(err, &de))
	assert.Equal(t, 404, de.StatusCode)
}

func TestRateLimitErrorCarriesRetryTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, PrimaryRateLimit: true, RetryAfter: time.Hour})
	_, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	var de *dispatch.Error
	require.True(t, errors.As(err, &de))
	assert.WithinDuration(t, time.Now().Add(time.Hour), de.RetryAt, 5*time.Second)
}

// Every ambiguous fault must end with exactly one run: found when the
// failed attempt started it, retried when it provably did not.
func TestNeverDispatchTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		fault    githubtest.Fault
		ghes     bool
		attempts int
	}{
		{name: "502 after the run was created", fault: githubtest.Fault{Status: 502, AfterHandling: true}, attempts: 1},
		{name: "connection reset after the run was created", fault: githubtest.Fault{ResetConnection: true, AfterHandling: true}, attempts: 1},
		{name: "timeout after the run was created", fault: githubtest.Fault{Delay: time.Hour, AfterHandling: true}, attempts: 1},
		{name: "502 before anything happened", fault: githubtest.Fault{Status: 502}, attempts: 2},
		{name: "503 twice before anything happened", fault: githubtest.Fault{Status: 503, Times: 2}, attempts: 3},
		{name: "connection reset before anything happened", fault: githubtest.Fault{ResetConnection: true}, attempts: 2},
		{name: "timeout before anything happened", fault: githubtest.Fault{Delay: time.Hour}, attempts: 2},
		{name: "GHES: 502 after the run was created", fault: githubtest.Fault{Status: 502, AfterHandling: true}, ghes: true, attempts: 1},
		{name: "GHES: reset before anything happened", fault: githubtest.Fault{ResetConnection: true}, ghes: true, attempts: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A request GitHub holds (Delay) ends at the attempt timeout.
			o := envOptions{retry: github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, AttemptTimeout: 400 * time.Millisecond}}
			if tc.ghes {
				o.server = append(o.server, githubtest.WithoutRunDetails(422))
			}
			e := newEnv(t, o)
			// A first dispatch exchanges the installation token (and, on
			// GHES, learns the server's answer), so that the fault hits a
			// dispatch, not the exchange.
			_, err := e.d.Dispatch(context.Background(), job("warm-up", deployAgent))
			require.NoError(t, err)
			before := len(e.srv.Runs())
			tc.fault.Route = dispatchRoute
			e.srv.InjectFault(tc.fault)

			res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
			require.NoError(t, err)
			runs := e.srv.Runs()[before:]
			require.Len(t, runs, 1, "exactly one run")
			assert.Equal(t, runs[0].ID, res.RunID)
			assert.Equal(t, tc.attempts, res.Attempts)
			evs := e.audit.Events()
			assert.Len(t, evs[len(evs)-tc.attempts:], tc.attempts, "one audit event per attempt")
			assert.Equal(t, credentials.OutcomeFailure, evs[len(evs)-tc.attempts].Outcome)
		})
	}
}

func TestAmbiguousFailureWithUnidentifiableRunIsNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	// A run of the same workflow without the job id in its title: it
	// could be ours, so a retry could start the job twice.
	_, err := e.srv.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: workflowID(e, "deploy"), Event: "workflow_dispatch", DisplayTitle: "deploy"})
	require.NoError(t, err)
	e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 502})
	res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.ErrorIs(t, err, dispatch.ErrDispatchUncertain)
	assert.Contains(t, err.Error(), "never start the job twice")
	assert.Equal(t, 1, res.Attempts)
	assert.Len(t, e.srv.Runs(), 1, "no second dispatch")
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{dispatch: []dispatch.Option{dispatch.WithMaxAttempts(3)}})
	e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 502, Times: -1})
	res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.ErrorIs(t, err, dispatch.ErrUnavailable)
	assert.Equal(t, 3, res.Attempts)
	assert.Equal(t, 3, e.srv.RequestCount(dispatchRoute))
	assert.Empty(t, e.srv.Runs())
	assert.Len(t, e.audit.Events(), 3)
}

func TestCanceledContextIsUncertain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Delay: time.Second, AfterHandling: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.d.Dispatch(ctx, job("job-1", deployAgent))
	require.ErrorIs(t, err, dispatch.ErrDispatchUncertain)
	assert.Equal(t, 1, e.srv.RequestCount(dispatchRoute))
}

func TestInvalidJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	_, err := e.d.Dispatch(context.Background(), dispatch.Request{Agent: json.RawMessage(deployAgent)})
	require.ErrorIs(t, err, dispatch.ErrInvalidJob)
}

func TestConcurrentDispatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	var wg sync.WaitGroup
	ids := make([]int64, 20)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.d.Dispatch(context.Background(), job(fmt.Sprintf("job-%d", i), deployAgent))
			assert.NoError(t, err)
			ids[i] = res.RunID
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], "each job has its own run")
		seen[id] = true
	}
	assert.Len(t, e.srv.Runs(), 20)
	assert.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokensPerInstallation(t *testing.T) {
	t.Parallel()
	// Three dispatches per installation, eight at a time: each
	// installation's token is asked for concurrently and exchanged once.
	const installations, dispatches = 10, 30
	e := newEnv(t, envOptions{})
	var ids []int64
	for i := range installations {
		owner := fmt.Sprintf("org%d", i)
		e.srv.AddRepo(githubtest.Repo{Owner: owner, Name: "app", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
		id := e.srv.AddInstallation(githubtest.AppInstallation{Account: owner, AllRepositories: true}).ID
		require.NoError(t, e.store.UpsertInstallation(context.Background(), credentials.Installation{
			ID: id, Account: owner, Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll}))
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range dispatches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := i % installations
			_, err := e.d.Dispatch(context.Background(), job(fmt.Sprint("job-", i),
				fmt.Sprintf(`{"installationId":%d,"owner":"org%d","repo":"app","workflowId":"deploy.yml"}`, ids[n], n)))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, installations, e.srv.TotalTokenExchanges())
}

func TestAuditNeverHoldsTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 502, AfterHandling: true})
	_, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.NoError(t, err)
	all := fmt.Sprintf("%+v", e.audit.Events())
	for _, tok := range e.srv.IssuedTokens() {
		assert.NotContains(t, all, tok)
	}
	assert.True(t, strings.Contains(all, "502"))
}

func TestFindRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	since := time.Now()
	res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.NoError(t, err)
	run, err := e.d.FindRun(context.Background(), job("job-1", deployAgent), since)
	require.NoError(t, err)
	require.NotNil(t, run)
	assert.Equal(t, res.RunID, run.GetID())
	run, err = e.d.FindRun(context.Background(), job("job-2", deployAgent), since)
	require.NoError(t, err)
	assert.Nil(t, run)
	_, err = e.d.FindRun(context.Background(), job("job-3", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"e"}`), since)
	require.ErrorIs(t, err, dispatch.ErrInvalidJob)
}
