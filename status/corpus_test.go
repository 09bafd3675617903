package status

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// TestCorpusThroughStatusHandlers sends GitHub's recorded payloads (the
// webhook package's corpus) through the tracker's own routes: every one
// is acknowledged, and every state and status they carry maps as
// GitHub documents it, never as unknown.
func TestCorpusThroughStatusHandlers(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "corpus", "webhooks-examples.json"))
	require.NoError(t, err)
	var c struct{ Events map[string][]json.RawMessage }
	require.NoError(t, json.Unmarshal(raw, &c))

	tr := NewTracker(NewMemoryJobStore())
	h, err := webhook.New([]string{"corpus"})
	require.NoError(t, err)
	tr.Register(h)
	n := 0
	for event, payloads := range c.Events {
		for i, p := range payloads {
			n++
			w := httptest.NewRecorder()
			h.ServeHTTP(w, webhooktest.NewRequest(event, p, "corpus"))
			assert.True(t, w.Code/100 == 2, "%s #%d: %d %s", event, i, w.Code, w.Body)
			switch event {
			case "workflow_run":
				var e webhook.WorkflowRunEvent
				require.NoError(t, json.Unmarshal(p, &e))
				_, known := fromRun(e.WorkflowRun.Status, e.WorkflowRun.Conclusion)
				assert.True(t, known, "run %s/%s", e.WorkflowRun.Status, e.WorkflowRun.Conclusion)
			case "deployment_status":
				var e webhook.DeploymentStatusEvent
				require.NoError(t, json.Unmarshal(p, &e))
				_, known := fromDeploymentState(e.DeploymentStatus.State)
				assert.True(t, known, "deployment state %s", e.DeploymentStatus.State)
			}
		}
	}
	assert.Equal(t, 69, n)
}
