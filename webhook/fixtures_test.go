package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// fixture returns a testdata payload compacted, as GitHub sends it.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, raw))
	return buf.Bytes()
}

// deliver sends a fixture through a handler and returns the status code.
func deliver(t *testing.T, h *webhook.Handler, event, file string) int {
	t.Helper()
	return serve(h, webhooktest.NewRequest(event, fixture(t, file), secret)).Code
}

func TestFixturesDecode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHandler(t)
	var (
		mu   sync.Mutex
		seen = map[string]any{}
	)
	keep := func(name string, v any) { mu.Lock(); seen[name] = v; mu.Unlock() }
	webhook.Handle(h, "workflow_run", func(_ context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		keep("workflow_run."+d.Action, e)
		ev, err := d.GitHubEvent()
		require.NoError(t, err)
		g := ev.(*gh.WorkflowRunEvent)
		assert.Equal(t, g.GetWorkflowRun().GetID(), e.WorkflowRun.ID)
		assert.Equal(t, g.GetWorkflowRun().GetStatus(), e.WorkflowRun.Status)
		assert.Equal(t, g.GetWorkflowRun().GetConclusion(), e.WorkflowRun.Conclusion)
		assert.Equal(t, g.GetWorkflowRun().GetDisplayTitle(), e.WorkflowRun.DisplayTitle)
		assert.Equal(t, g.GetWorkflowRun().GetUpdatedAt().Time, e.WorkflowRun.UpdatedAt)
		assert.Equal(t, g.GetRepo().GetFullName(), e.Repository.FullName)
		assert.Equal(t, g.GetInstallation().GetID(), e.Installation.ID)
		return nil
	})
	webhook.Handle(h, "workflow_job", func(_ context.Context, d *webhook.Delivery, e *webhook.WorkflowJobEvent) error {
		keep("workflow_job."+d.Action, e)
		return nil
	})
	webhook.Handle(h, "installation", func(_ context.Context, d *webhook.Delivery, e *webhook.InstallationEvent) error {
		keep("installation."+d.Action, e)
		return nil
	})
	webhook.Handle(h, "installation_repositories", func(_ context.Context, d *webhook.Delivery, e *webhook.InstallationRepositoriesEvent) error {
		keep("installation_repositories."+d.Action, e)
		return nil
	})
	webhook.Handle(h, "deployment_status", func(_ context.Context, d *webhook.Delivery, e *webhook.DeploymentStatusEvent) error {
		keep("deployment_status", e)
		return nil
	})
	webhook.Handle(h, "check_run", func(_ context.Context, d *webhook.Delivery, e *webhook.CheckRunEvent) error {
		keep("check_run", e)
		return nil
	})
	webhook.Handle(h, "pull_request", func(_ context.Context, d *webhook.Delivery, e *webhook.PullRequestEvent) error {
		keep("pull_request."+map[bool]string{true: "merged", false: "unmerged"}[e.PullRequest.Merged], e)
		ev, err := d.GitHubEvent()
		require.NoError(t, err)
		assert.Equal(t, ev.(*gh.PullRequestEvent).GetPullRequest().GetMerged(), e.PullRequest.Merged)
		return nil
	})
	for event, files := range map[string][]string{
		"workflow_run":              {"workflow_run_requested.json", "workflow_run_in_progress.json", "workflow_run_completed_success.json"},
		"workflow_job":              {"workflow_job_in_progress.json", "workflow_job_completed.json"},
		"installation":              {"installation_created.json", "installation_deleted.json", "installation_suspend.json", "installation_unsuspend.json"},
		"installation_repositories": {"installation_repositories_added.json", "installation_repositories_removed.json"},
		"deployment_status":         {"deployment_status_success.json"},
		"check_run":                 {"check_run_completed.json"},
		"pull_request":              {"pull_request_closed_merged.json", "pull_request_closed_unmerged.json"},
		"ping":                      {"ping.json"},
	} {
		for _, f := range files {
			assert.Equal(t, 200, deliver(t, h, event, f), f)
		}
	}
	_ = ctx

	run := seen["workflow_run.completed"].(*webhook.WorkflowRunEvent)
	assert.Equal(t, int64(30433642), run.WorkflowRun.ID)
	assert.Equal(t, int64(161335), run.WorkflowRun.WorkflowID)
	assert.Equal(t, "Deploy job-123", run.WorkflowRun.DisplayTitle)
	assert.Equal(t, "success", run.WorkflowRun.Conclusion)
	assert.Equal(t, 1, run.WorkflowRun.RunAttempt)
	assert.Equal(t, "workflow_dispatch", run.WorkflowRun.Event)
	assert.Equal(t, "acme/deployer", run.Repository.FullName)
	assert.Equal(t, int64(777), run.Installation.ID)
	assert.Empty(t, seen["workflow_run.requested"].(*webhook.WorkflowRunEvent).WorkflowRun.Conclusion, "null conclusion")

	job := seen["workflow_job.in_progress"].(*webhook.WorkflowJobEvent)
	assert.Equal(t, int64(30433642), job.WorkflowJob.RunID)
	assert.Nil(t, job.WorkflowJob.CompletedAt)
	require.Len(t, job.WorkflowJob.Steps, 3)
	assert.Equal(t, "in_progress", job.WorkflowJob.Steps[2].Status)

	in := seen["installation.created"].(*webhook.InstallationEvent)
	assert.Equal(t, int64(777), in.Installation.ID)
	assert.Equal(t, "acme", in.Installation.Account.Login)
	assert.Equal(t, "Organization", in.Installation.Account.Type)
	assert.Equal(t, "write", in.Installation.Permissions["actions"])
	assert.Len(t, in.Repositories, 2)
	assert.NotNil(t, seen["installation.suspend"].(*webhook.InstallationEvent).Installation.SuspendedAt)

	added := seen["installation_repositories.added"].(*webhook.InstallationRepositoriesEvent)
	assert.Equal(t, "acme/web", added.RepositoriesAdded[0].FullName)
	assert.Equal(t, "acme/api", seen["installation_repositories.removed"].(*webhook.InstallationRepositoriesEvent).RepositoriesRemoved[0].FullName)

	ds := seen["deployment_status"].(*webhook.DeploymentStatusEvent)
	assert.Equal(t, "success", ds.DeploymentStatus.State)
	assert.Equal(t, int64(42), ds.Deployment.ID)
	assert.JSONEq(t, `{"job_id":"job-123","version":"v1.4.0"}`, string(ds.Deployment.Payload))

	cr := seen["check_run"].(*webhook.CheckRunEvent)
	assert.Equal(t, "job-123", cr.CheckRun.ExternalID)
	assert.Equal(t, int64(4242), cr.CheckRun.App.ID)

	pr := seen["pull_request.merged"].(*webhook.PullRequestEvent)
	assert.Equal(t, 7, pr.Number)
	assert.Equal(t, "ghbridge/job-job-123", pr.PullRequest.Head.Ref)
	assert.Contains(t, pr.PullRequest.Body, "ghbridge-job: job-123")
	assert.NotNil(t, pr.PullRequest.MergedAt)
	assert.Nil(t, seen["pull_request.unmerged"].(*webhook.PullRequestEvent).PullRequest.MergedAt)
}

// revocations records Revoke calls.
type revocations struct {
	mu  sync.Mutex
	ids []int64
}

func (r *revocations) Revoke(id int64) { r.mu.Lock(); r.ids = append(r.ids, id); r.mu.Unlock() }

func TestSyncInstallations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := credentials.NewMemoryInstallationStore()
	rev := &revocations{}
	h := newHandler(t)
	webhook.SyncInstallations(h, store, rev)
	get := func() credentials.Installation {
		in, err := store.GetInstallation(ctx, 777)
		require.NoError(t, err)
		return in
	}

	require.Equal(t, 200, deliver(t, h, "installation", "installation_created.json"))
	in := get()
	assert.Equal(t, credentials.StatusActive, in.Status)
	assert.Equal(t, "acme", in.Account)
	assert.Equal(t, "Organization", in.AccountType)
	assert.Equal(t, credentials.SelectionSelected, in.RepositorySelection)
	assert.ElementsMatch(t, []string{"acme/deployer", "acme/api"}, in.Repositories)
	require.NoError(t, store.ClaimInstallation(ctx, 777, "tenant-a"))

	require.Equal(t, 200, deliver(t, h, "installation_repositories", "installation_repositories_added.json"))
	assert.ElementsMatch(t, []string{"acme/deployer", "acme/api", "acme/web"}, get().Repositories)
	require.Equal(t, 200, deliver(t, h, "installation_repositories", "installation_repositories_removed.json"))
	assert.ElementsMatch(t, []string{"acme/deployer", "acme/web"}, get().Repositories)

	require.Equal(t, 200, deliver(t, h, "installation", "installation_suspend.json"))
	assert.Equal(t, credentials.StatusSuspended, get().Status)
	require.Equal(t, 200, deliver(t, h, "installation", "installation_unsuspend.json"))
	assert.Equal(t, credentials.StatusActive, get().Status)
	require.Equal(t, 200, deliver(t, h, "installation", "installation_deleted.json"))
	assert.Equal(t, credentials.StatusDeleted, get().Status)
	assert.Equal(t, "tenant-a", get().Tenant, "webhooks never drop a tenant's claim")
	assert.Equal(t, []int64{777, 777, 777, 777, 777, 777}, rev.ids, "every change revokes the cached token")
}

func TestSyncInstallationsMissedCreated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := credentials.NewMemoryInstallationStore()
	h := newHandler(t)
	webhook.SyncInstallations(h, store, nil)
	require.Equal(t, 200, deliver(t, h, "installation", "installation_suspend.json"))
	in, err := store.GetInstallation(ctx, 777)
	require.NoError(t, err)
	assert.Equal(t, credentials.StatusSuspended, in.Status, "an unknown installation is recorded from the event")

	store = credentials.NewMemoryInstallationStore()
	h = newHandler(t)
	webhook.SyncInstallations(h, store, nil)
	require.Equal(t, 200, deliver(t, h, "installation_repositories", "installation_repositories_added.json"))
	in, err = store.GetInstallation(ctx, 777)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/web"}, in.Repositories)
}

func TestTimestampsDecodeAsUTC(t *testing.T) {
	t.Parallel()
	var e webhook.WorkflowRunEvent
	d := &webhook.Delivery{Event: "workflow_run", Payload: fixture(t, "workflow_run_completed_success.json")}
	require.NoError(t, d.Decode(&e))
	assert.Equal(t, time.Date(2026, 1, 10, 10, 3, 0, 0, time.UTC), e.WorkflowRun.UpdatedAt.UTC())
	assert.Error(t, (&webhook.Delivery{Event: "x", Payload: []byte(`{"workflow_run":{"updated_at":"yesterday"}}`)}).Decode(&e))
}
