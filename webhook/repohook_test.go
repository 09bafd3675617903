package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/webhook"
)

func tokenSetup(t *testing.T) (*githubtest.Server, *github.ClientFactory) {
	t.Helper()
	fake := githubtest.New(t)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	fake.AddStaticToken("ghp_static")
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL))
	require.NoError(t, err)
	return fake, clients
}

// EnsureRepoHook creates the hook when missing, repairs it when it
// differs, and leaves it when it matches: running it again sends no write.
func TestEnsureRepoHookIsIdempotent(t *testing.T) {
	t.Parallel()
	fake, clients := tokenSetup(t)
	c, err := clients.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	require.NoError(t, err)
	spec := webhook.RepoHook{URL: "https://ghbridge.example.com/api/github/webhook", Secret: "s3cret"}
	ctx := context.Background()

	_, _, err = webhook.EnsureRepoHook(ctx, c, "acme", "deployer", webhook.RepoHook{URL: spec.URL})
	require.ErrorIs(t, err, failure.ErrInvalidIntegration, "a hook without a secret is refused")
	require.Empty(t, fake.RepoHooks("acme", "deployer"))

	id, out, err := webhook.EnsureRepoHook(ctx, c, "acme", "deployer", spec)
	require.NoError(t, err)
	assert.Equal(t, webhook.HookCreated, out)
	hooks := fake.RepoHooks("acme", "deployer")
	require.Len(t, hooks, 1)
	assert.Equal(t, githubtest.RepoHook{ID: id, Owner: "acme", Repo: "deployer", URL: spec.URL, Secret: "s3cret", ContentType: "json", InsecureSSL: "0",
		Events: []string{"deployment_status", "pull_request", "workflow_job", "workflow_run"}, Active: true}, hooks[0])

	writes := func() int {
		return fake.RequestCount("POST /repos/{owner}/{repo}/hooks") + fake.RequestCount("PATCH /repos/{owner}/{repo}/hooks/{hook_id}")
	}
	before := writes()
	again, out, err := webhook.EnsureRepoHook(ctx, c, "acme", "deployer", spec)
	require.NoError(t, err)
	assert.Equal(t, webhook.HookUnchanged, out)
	assert.Equal(t, id, again)
	assert.Equal(t, before, writes(), "a matching hook is left alone")

	// Someone turns it into a form hook with other events and disables it.
	fake.AddRepoHook(githubtest.RepoHook{Owner: "acme", Repo: "deployer", URL: "https://other.example/hook", Events: []string{"push"}, Active: true})
	c2, _ := clients.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	_, _, err = c2.Repositories.EditHook(ctx, "acme", "deployer", id, &gh.Hook{Active: gh.Bool(false), Events: []string{"push"},
		Config: &gh.HookConfig{ContentType: gh.String("form")}})
	require.NoError(t, err)
	again, out, err = webhook.EnsureRepoHook(ctx, c, "acme", "deployer", spec)
	require.NoError(t, err)
	assert.Equal(t, webhook.HookRepaired, out)
	assert.Equal(t, id, again)
	hooks = fake.RepoHooks("acme", "deployer")
	require.Len(t, hooks, 2, "the other hook is not touched")
	assert.True(t, hooks[0].Active)
	assert.Equal(t, "json", hooks[0].ContentType)
	assert.Equal(t, []string{"deployment_status", "pull_request", "workflow_job", "workflow_run"}, hooks[0].Events)
	assert.Equal(t, "https://other.example/hook", hooks[1].URL)

	_, _, err = webhook.EnsureRepoHook(ctx, c, "acme", "deployer", webhook.RepoHook{URL: spec.URL})
	assert.Error(t, err, "no secret: never an unsigned hook")
}

// A repository hook's failed deliveries are redelivered like the App's.
func TestRecoverRepoDeliveries(t *testing.T) {
	t.Parallel()
	fake, clients := tokenSetup(t)
	var failing atomic.Bool
	failing.Store(true)
	var handled atomic.Int32
	h := newHandler(t)
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { handled.Add(1); return nil })
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(recv.Close)
	c, err := clients.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	require.NoError(t, err)
	id, _, err := webhook.EnsureRepoHook(context.Background(), c, "acme", "deployer", webhook.RepoHook{URL: recv.URL, Secret: secret})
	require.NoError(t, err)

	run, err := fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: fake.Workflows("acme", "deployer")[0].ID})
	require.NoError(t, err)
	_, err = fake.SetRunStatus(run.ID, "completed", "success")
	require.NoError(t, err)
	require.Zero(t, handled.Load())

	failing.Store(false)
	rep, err := webhook.RecoverRepoDeliveries(context.Background(), c, "acme", "deployer", id, webhook.RecoverOptions{Since: fake.Now().Add(-time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Failed)
	assert.Equal(t, 1, rep.Redelivered)
	fake.WaitDeliveries()
	require.Equal(t, int32(1), handled.Load())
	redelivered := false
	for _, d := range fake.Deliveries() {
		redelivered = redelivered || (d.Redelivery && d.StatusCode == http.StatusOK)
	}
	require.True(t, redelivered, "GitHub logs the redelivery with its answer")

	rep, err = webhook.RecoverRepoDeliveries(context.Background(), c, "acme", "deployer", id, webhook.RecoverOptions{Since: fake.Now().Add(-time.Hour)})
	require.NoError(t, err)
	assert.Zero(t, rep.Failed, "a redelivered delivery that succeeded is not asked for again")
}
