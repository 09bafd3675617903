package app_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// The server was killed while it processed a delivery: its claim stays
// in the database. Restarted, it processes GitHub's redelivery (same
// GUID) instead of answering "duplicate" until the claim's lease ends.
func TestRedeliveryAfterARestartIsProcessed(t *testing.T) {
	t.Parallel()
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return testdb.MigratedSQLite(t) },
		"postgres": postgresSchema,
	} {
		t.Run(name, func(t *testing.T) {
			fake, inst := fakeGitHub(t)
			vars := baseVars(fake, dbURL(t))
			vars["GHBRIDGE_INSTANCE"] = "web-1"
			e := start(t, fake, vars)
			e.inst = inst
			e.claimed(t, "tenant-a", inst)
			code, job := e.create(t, keyA, jobRequest("job-1"))
			require.Equal(t, 201, code)
			runID := int64(job["runId"].(float64))
			raw := lostCompletion(t, fake, runID)

			// The first run of web-1 claimed the delivery and was killed.
			killed := webhook.Holder{Name: "web-1", Incarnation: time.Now().Add(-time.Minute).UnixNano()}
			ok, err := e.srv.DB().Deliveries().Claim(context.Background(), "guid-1", killed, time.Hour)
			require.NoError(t, err)
			require.True(t, ok)
			send := func(e *env) int {
				r := webhooktest.NewRequestWithID("workflow_run", "guid-1", raw, secret)
				r.RequestURI = ""
				u, _ := url.Parse(e.http.URL + "/api/github/webhook")
				r.URL, r.Host = u, u.Host
				resp, err := e.http.Client().Do(r)
				require.NoError(t, err)
				resp.Body.Close()
				return resp.StatusCode
			}
			other := map[string]string{}
			for k, v := range vars {
				other[k] = v
			}
			other["GHBRIDGE_INSTANCE"] = "web-2"
			replica := start(t, nil, other)
			assert.Equal(t, http.StatusAccepted, send(replica), "another replica cannot know web-1 died")

			restarted := start(t, nil, vars) // releases web-1's old claims as it starts
			assert.Equal(t, http.StatusOK, send(replica), "processed at once")
			assert.Equal(t, http.StatusAccepted, send(restarted), "and once")
			_, job = e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
			assert.Equal(t, "successful", job["status"])
		})
	}
}

func TestRetentionSettings(t *testing.T) {
	t.Parallel()
	cfg, err := app.LoadConfig(lookup(map[string]string{}))
	require.NoError(t, err)
	assert.Equal(t, sqlstore.DefaultRetention, cfg.Retention)
	assert.NotEmpty(t, cfg.Instance)

	cfg, err = app.LoadConfig(lookup(map[string]string{
		"GHBRIDGE_RETENTION_DELIVERIES": "3d", "GHBRIDGE_RETENTION_AUDIT": "36h", "GHBRIDGE_RETENTION_JOBS": "0",
	}))
	require.NoError(t, err)
	assert.Equal(t, sqlstore.Retention{Deliveries: 72 * time.Hour, AuditEvents: 36 * time.Hour}, cfg.Retention)

	for _, bad := range []string{"7 days", "-1d", "soon", "-5h"} {
		_, err = app.LoadConfig(lookup(map[string]string{"GHBRIDGE_RETENTION_JOBS": bad}))
		assert.ErrorContains(t, err, "GHBRIDGE_RETENTION_JOBS", bad)
	}
}
