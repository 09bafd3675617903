package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's first command, as a test.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out), out.String())
	for _, want := range []string{
		"POST /api/jobs -> pending",
		"the dispatch queue -> in_progress, dispatched: run",
		"job_id=demo-tenant.deploy-api-1-4-0 region=eu-west-1 target=cluster-eu-1 version=v1.4.0",
		`"Deploy demo-tenant.deploy-api-1-4-0"`,
		"completed   success  -> delivery",
		"GET /api/jobs/deploy-api-1-4-0: successful",
		"pending     -> in_progress  (dispatch)",
		"in_progress -> successful   (workflow_run)",
		"token exchanges: 1",
		"version_tag=v1.4.0",
		"POST /api/jobs/deploy-api-1-4-1/cancel -> in_progress (cancel requested by api:demo-tenant)",
		"then cancelled: run",
		"-> in_progress, run",
		"attempt 2",
		"attempt 2  failure     -> in_progress  (workflow_run)  api:demo-tenant",
		"deploy-api-1-4-2   successful",
	} {
		assert.Contains(t, out.String(), want)
	}
}
