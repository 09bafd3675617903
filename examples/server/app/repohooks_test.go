package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// A job run through a static token gets its repository a webhook, which
// reconcile re-checks and repairs.
func TestStaticTokenRepositoryWebhook(t *testing.T) {
	t.Parallel()
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "solo", Name: "app", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id"}}}})
	fake.AddStaticToken("ghp_solo")
	vars := map[string]string{
		"GITHUB_API_URL":           fake.URL,
		"GITHUB_WEBHOOK_SECRET":    secret,
		"GHBRIDGE_API_KEYS":        "tenant-a:" + keyA,
		"GHBRIDGE_DATABASE_URL":    testdb.MigratedSQLite(t),
		"GHBRIDGE_PUBLIC_URL":      "https://ghbridge.example.com",
		"GHBRIDGE_SECRET_GH_TOKEN": "ghp_solo",
	}
	e := start(t, fake, vars)
	code, job := e.create(t, keyA, map[string]any{"id": "job-1", "agent": json.RawMessage(
		`{"owner": "solo", "repo": "app", "workflowId": "deploy.yml", "token": "{{ secrets.GH_TOKEN }}"}`)})
	require.Equal(t, 201, code, job)
	require.Equal(t, "in_progress", job["status"], job)

	var hooks []githubtest.RepoHook
	require.Eventually(t, func() bool { hooks = fake.RepoHooks("solo", "app"); return len(hooks) == 1 }, 5*time.Second, 5*time.Millisecond)
	h := hooks[0]
	assert.Equal(t, "https://ghbridge.example.com/api/github/webhook", h.URL)
	assert.Equal(t, secret, h.Secret)
	assert.Equal(t, "json", h.ContentType)
	assert.True(t, h.Active)
	assert.Contains(t, h.Events, "workflow_run")

	// A second job on the same repository leaves the hook alone.
	posts := fake.RequestCount("POST /repos/{owner}/{repo}/hooks")
	code, _ = e.create(t, keyA, map[string]any{"id": "job-2", "agent": json.RawMessage(
		`{"owner": "solo", "repo": "app", "workflowId": "deploy.yml", "token": "{{ secrets.GH_TOKEN }}"}`)})
	require.Equal(t, 201, code)
	assert.Equal(t, posts, fake.RequestCount("POST /repos/{owner}/{repo}/hooks"))

	// Someone switches it off; reconcile turns it back on.
	patches := fake.RequestCount("PATCH /repos/{owner}/{repo}/hooks/{hook_id}")
	e.srv.Reconcile(context.Background())
	assert.Equal(t, patches, fake.RequestCount("PATCH /repos/{owner}/{repo}/hooks/{hook_id}"), "a matching hook is not written")
	require.True(t, fake.EditRepoHook(h.ID, func(h *githubtest.RepoHook) { h.Active = false }))
	e.srv.Reconcile(context.Background())
	hooks = fake.RepoHooks("solo", "app")
	require.Len(t, hooks, 1)
	assert.True(t, hooks[0].Active, "reconcile repaired the hook")
}
