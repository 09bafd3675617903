package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/webhook"
)

func TestRecoverDeliveries(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	h := newHandler(t)
	var mu sync.Mutex
	applied := map[string]int{}
	h.On("workflow_run", func(_ context.Context, d *webhook.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		applied[d.ID]++
		return nil
	})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusBadGateway) // the receiver was down
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer recv.Close()
	fake := githubtest.New(t)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	fake.SetWebhook(recv.URL, secret)
	run, err := fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: fake.Workflows("acme", "api")[0].ID})
	require.NoError(t, err)
	for _, st := range [][2]string{{"in_progress", ""}, {"completed", "success"}} {
		_, err = fake.SetRunStatus(run.ID, st[0], st[1])
		require.Error(t, err, "delivery failed")
	}
	failing.Store(false)
	_, err = fake.SetRunStatus(run.ID, "queued", "") // a delivery that succeeds
	require.NoError(t, err)

	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL))
	require.NoError(t, err)
	app, err := clients.AppClient(fake.AppConfig())
	require.NoError(t, err)
	rep, err := webhook.RecoverDeliveries(context.Background(), app, webhook.RecoverOptions{})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverReport{Scanned: 3, Failed: 2, Redelivered: 2}, rep)
	fake.WaitDeliveries()
	mu.Lock()
	require.Len(t, applied, 3, "both failed deliveries arrive again")
	mu.Unlock()

	rep, err = webhook.RecoverDeliveries(context.Background(), app, webhook.RecoverOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, rep.Failed, "each GUID now has a successful attempt")
	assert.Equal(t, 5, rep.Scanned)

	rep, err = webhook.RecoverDeliveries(context.Background(), app, webhook.RecoverOptions{Since: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	assert.Zero(t, rep.Scanned, "older deliveries are not looked at")
	mu.Lock()
	defer mu.Unlock()
	for id, n := range applied {
		assert.Equal(t, 1, n, id)
	}
}
