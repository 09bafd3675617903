package githubtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContractCoversTheOperationsGhbridgeCalls(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	require.NoError(t, err)
	assert.Equal(t, "@octokit/openapi@23.0.2", c.source)
	var ops []string
	for _, r := range c.byShape {
		ops = append(ops, r.method+" "+r.path)
	}
	for _, op := range []string{
		"POST /app/installations/{installation_id}/access_tokens", "GET /app/installations", "GET /app/installations/{installation_id}",
		"DELETE /app/installations/{installation_id}", "GET /repos/{owner}/{repo}/installation", "GET /app", "GET /app/hook/config",
		"GET /app/hook/deliveries", "POST /app/hook/deliveries/{delivery_id}/attempts", "GET /installation/repositories",
		"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", "GET /repos/{owner}/{repo}/actions/runs",
		"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "GET /repos/{owner}/{repo}/actions/runs/{run_id}",
		"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}", "POST /repos/{owner}/{repo}/dispatches",
		"POST /repos/{owner}/{repo}/deployments", "GET /repos/{owner}/{repo}/deployments",
		"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
		"POST /repos/{owner}/{repo}/check-runs", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
		"GET /repos/{owner}/{repo}/git/ref/{ref}", "POST /repos/{owner}/{repo}/git/refs", "GET /repos/{owner}/{repo}/git/commits/{commit_sha}",
		"POST /repos/{owner}/{repo}/git/commits", "POST /repos/{owner}/{repo}/git/trees", "POST /repos/{owner}/{repo}/pulls",
		"GET /repos/{owner}/{repo}/pulls", "GET /repos/{owner}/{repo}/pulls/{pull_number}", "GET /repos/{owner}/{repo}",
		"GET /repos/{owner}/{repo}/contents/{path}",
	} {
		assert.Contains(t, ops, op)
	}
}
