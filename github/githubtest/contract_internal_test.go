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

// A later API version's change is served in that version only: the
// workflow dispatch answers 204 and takes return_run_details in
// 2022-11-28, neither in 2026-03-10.
func TestContractServesEachVersionsOperation(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	require.NoError(t, err)
	rt := c.byShape["POST /repos/{}/{}/actions/workflows/{}/dispatches"]
	require.NotEmpty(t, rt.path)
	for _, tc := range []struct {
		version string
		old     bool
	}{{apiVersion20221128, true}, {"", true}, {"1999-01-01", true}, {apiVersion20260310, false}} {
		op := c.pathItem(tc.version, rt).Post
		require.NotNil(t, op, tc.version)
		assert.Equal(t, tc.old, op.Responses.Status(204) != nil, "204 in %q", tc.version)
		props := op.RequestBody.Value.Content.Get("application/json").Schema.Value.Properties
		assert.Equal(t, tc.old, props["return_run_details"] != nil, "return_run_details in %q", tc.version)
		assert.NotNil(t, props["ref"], tc.version)
	}
	// Uninstalling answers 202 since 2026-03-10: GitHub writes that
	// change as a JSON Merge Patch, not a list of operations.
	del := c.byShape["DELETE /app/installations/{}"]
	require.NotEmpty(t, del.path)
	for version, want := range map[string]int{apiVersion20221128: 204, apiVersion20260310: 202} {
		op := c.pathItem(version, del).Delete
		require.NotNil(t, op, version)
		assert.NotNil(t, op.Responses.Status(want), "%d in %s", want, version)
		assert.Nil(t, op.Responses.Status(406-want), "%d in %s", 406-want, version)
		assert.NotNil(t, op.Responses.Status(404), "404 in %s", version)
	}
	// Everything else is the same operation in every version.
	get := c.byShape["GET /repos/{}/{}/actions/runs/{}"]
	assert.Same(t, c.pathItem(apiVersion20221128, get), c.pathItem(apiVersion20260310, get))
}
