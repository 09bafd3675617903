package ghbridge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

type bridgeEnv struct {
	fake *githubtest.Server
	b    *ghbridge.Bridge
	log  *strings.Builder
	aud  *credentials.MemoryAuditLog
}

func newBridge(t *testing.T, opts ...ghbridge.Option) *bridgeEnv {
	t.Helper()
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	logs, aud := &strings.Builder{}, &credentials.MemoryAuditLog{}
	b, err := ghbridge.New(ghbridge.Config{App: fake.AppConfig(), WebhookSecrets: []string{"s3cret"}, Deliveries: webhook.NewMemoryDeliveryStore(0)},
		append([]ghbridge.Option{
			ghbridge.WithLogger(slog.New(slog.NewTextHandler(logs, nil))), ghbridge.WithAudit(aud),
			ghbridge.WithClientOptions(github.WithUserAgent("bridge-test")),
			ghbridge.WithDispatchOptions(dispatch.WithRunLookup(dispatch.RunLookup{Settle: time.Minute})),
			ghbridge.WithTrackerOptions(status.WithRerunPolicy(func(status.Job, int) bool { return false })),
			ghbridge.WithWebhookOptions(webhook.WithMaxBodySize(1 << 20)),
		}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, b.Installations.UpsertInstallation(context.Background(), credentials.Installation{ID: inst.ID, Account: "acme",
		Tenant: "team-a", Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll}))
	return &bridgeEnv{fake: fake, b: b, log: logs, aud: aud}
}

var deploy = json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}`)

func TestBridgeStepAndWebhooks(t *testing.T) {
	e := newBridge(t)
	ctx := context.Background()
	job := dispatch.Request{ID: "team-a.job-1", Tenant: "team-a", Agent: deploy}
	j, err := e.b.Accept(ctx, job)
	require.NoError(t, err)
	assert.Equal(t, status.Pending, j.Status)
	assert.Equal(t, "acme", j.Owner)

	var saved dispatch.State
	st, err := e.b.Step(ctx, job, saved, func(_ context.Context, st dispatch.State) error { saved = st; return nil })
	require.NoError(t, err)
	assert.True(t, st.Accepted)
	assert.Equal(t, 1, saved.Sends, "saved before the request")
	got, err := e.b.Jobs.GetJob(ctx, job.ID)
	require.NoError(t, err)
	assert.Equal(t, status.InProgress, got.Status)
	require.NotZero(t, got.RunID)

	// The run's deliveries move the job through the Bridge's handler.
	srv := httptest.NewServer(e.b.Webhooks)
	t.Cleanup(srv.Close)
	e.fake.SetWebhook(srv.URL, "s3cret")
	_, err = e.fake.SetRunStatus(got.RunID, "completed", "success")
	require.NoError(t, err)
	got, err = e.b.Jobs.GetJob(ctx, job.ID)
	require.NoError(t, err)
	assert.Equal(t, status.Successful, got.Status)

	assert.NotEmpty(t, e.aud.Events(), "the audit sink sees the token exchange and the dispatch")
	assert.Contains(t, e.fake.Requests()[0].Method, http.MethodPost)
}

func TestBridgeAcceptBadConfigAndTransientStep(t *testing.T) {
	e := newBridge(t)
	ctx := context.Background()
	bad := dispatch.Request{ID: "team-a.bad", Tenant: "team-a", Agent: json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "{{ .nope }}"}`)}
	_, err := e.b.Accept(ctx, bad)
	require.ErrorIs(t, err, failure.ErrInvalidJobAgent)
	j, err := e.b.Jobs.GetJob(ctx, bad.ID)
	require.NoError(t, err)
	assert.Equal(t, status.InvalidJobAgent, j.Status)

	job := dispatch.Request{ID: "team-a.job-2", Tenant: "team-a", Agent: deploy}
	_, err = e.b.Accept(ctx, job)
	require.NoError(t, err)
	e.fake.InjectFault(githubtest.Fault{Route: "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", Status: 503})
	st, err := e.b.Step(ctx, job, dispatch.State{}, func(context.Context, dispatch.State) error { return nil })
	require.True(t, failure.IsTransient(err), "%v", err)
	assert.False(t, st.SentAt.IsZero(), "a 5xx may have started a run: looked up before sending again")
	j, err = e.b.Jobs.GetJob(ctx, job.ID)
	require.NoError(t, err)
	assert.Equal(t, status.Pending, j.Status, "a transient failure leaves the job pending")
}

func TestBridgePollerFindsALostRun(t *testing.T) {
	now := time.Now()
	e := newBridge(t, ghbridge.WithTrackerOptions(status.WithClock(func() time.Time { return now })))
	ctx := context.Background()
	job := dispatch.Request{ID: "team-a.job-3", Tenant: "team-a", Agent: deploy}
	_, err := e.b.Accept(ctx, job)
	require.NoError(t, err)
	_, err = e.b.Dispatch(ctx, job)
	require.NoError(t, err)
	j, err := e.b.Jobs.GetJob(ctx, job.ID)
	require.NoError(t, err)
	_, err = e.fake.SetRunStatus(j.RunID, "completed", "failure") // no webhook set: the delivery is lost
	require.NoError(t, err)

	store := e.b.Jobs.(*status.MemoryJobStore)
	p := e.b.Poller(store, time.Minute, func(_ context.Context, j status.Job) (dispatch.Request, error) {
		return dispatch.Request{ID: j.ID, Tenant: j.Tenant, Agent: deploy}, nil
	})
	now = now.Add(time.Hour) // quiet for an hour
	rep, err := p.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Updated, "%+v", rep)
	j, err = e.b.Jobs.GetJob(ctx, job.ID)
	require.NoError(t, err)
	assert.Equal(t, status.Failure, j.Status)
}
