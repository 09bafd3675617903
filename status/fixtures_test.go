package status_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// Real-shaped payloads live with the webhook package.
func payload(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", name))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, raw))
	return buf.Bytes()
}

func hookFor(t *testing.T, tr *status.Tracker) *webhook.Handler {
	t.Helper()
	h, err := webhook.New([]string{"s"})
	require.NoError(t, err)
	tr.Register(h)
	return h
}

func send(t *testing.T, h *webhook.Handler, event, file string) int {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, webhooktest.NewRequest(event, payload(t, file), "s"))
	return w.Code
}

func TestFixtureDeliveries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.job(t, "job-123")
	h := hookFor(t, f.tracker)
	for _, file := range []string{"workflow_run_requested.json", "workflow_job_in_progress.json", "workflow_run_in_progress.json", "workflow_run_completed_success.json"} {
		require.Equal(t, 200, send(t, h, map[bool]string{true: "workflow_job", false: "workflow_run"}[file[:12] == "workflow_job"], file), file)
	}
	j := f.get(t, "job-123")
	assert.Equal(t, status.Successful, j.Status)
	assert.Equal(t, int64(30433642), j.RunID)
	assert.Equal(t, "https://github.com/acme/deployer/actions/runs/30433642", j.RunURL)
	history := len(j.History)

	// Late and contradicting deliveries change nothing.
	for _, file := range []string{"workflow_run_in_progress.json", "workflow_run_completed_failure.json", "workflow_run_requested.json", "workflow_job_completed.json"} {
		event := "workflow_run"
		if file[:12] == "workflow_job" {
			event = "workflow_job"
		}
		require.Equal(t, 200, send(t, h, event, file), file)
	}
	j = f.get(t, "job-123")
	assert.Equal(t, status.Successful, j.Status)
	assert.Len(t, j.History, history)
}

func TestFixtureOtherTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.job(t, "job-123", func(j *status.Job) { j.Owner = "globex" })
	h := hookFor(t, f.tracker)
	require.Equal(t, 200, send(t, h, "workflow_run", "workflow_run_completed_success.json"), "acknowledged")
	assert.Equal(t, status.Pending, f.get(t, "job-123").Status)
}

func TestFixturePullRequestAndDeployment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.job(t, "job-123", func(j *status.Job) { j.Kind, j.PullRequestNumber = "pull_request", 7 })
	h := hookFor(t, f.tracker)
	require.Equal(t, 200, send(t, h, "pull_request", "pull_request_closed_merged.json"))
	assert.Equal(t, status.Successful, f.get(t, "job-123").Status)

	f = newFixture(t)
	f.job(t, "job-123", func(j *status.Job) { j.Kind, j.PullRequestNumber = "pull_request", 7 })
	h = hookFor(t, f.tracker)
	require.Equal(t, 200, send(t, h, "pull_request", "pull_request_closed_unmerged.json"))
	assert.Equal(t, status.Cancelled, f.get(t, "job-123").Status)

	f = newFixture(t)
	f.job(t, "job-123", func(j *status.Job) { j.Kind, j.DeploymentID = "deployment", 42 })
	h = hookFor(t, f.tracker)
	require.Equal(t, 200, send(t, h, "deployment_status", "deployment_status_success.json"))
	j := f.get(t, "job-123")
	assert.Equal(t, status.Successful, j.Status)
	assert.Contains(t, j.Message, "deployment success")
}
