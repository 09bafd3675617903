package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

// GitHub never retries a failed delivery: a host asks for them again,
// say every few minutes and when it starts. Here the receiver was down
// while a run completed.
func ExampleRecoverDeliveries() {
	const secret = "It's a Secret to Everybody"
	h, err := webhook.New([]string{secret})
	if err != nil {
		panic(err)
	}
	var handled atomic.Int32
	h.On("workflow_run", func(context.Context, *webhook.Delivery) error { handled.Add(1); return nil })
	var down atomic.Bool
	down.Store(true)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer receiver.Close()

	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	fake.SetWebhook(receiver.URL, secret)
	run, _ := fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: fake.Workflows("acme", "api")[0].ID})
	_, err = fake.SetRunStatus(run.ID, "completed", "success")
	fmt.Println("delivered:", err == nil)
	down.Store(false)

	// The App's own client lists and redelivers its deliveries.
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL))
	if err != nil {
		panic(err)
	}
	app, err := clients.AppClient(fake.AppConfig())
	if err != nil {
		panic(err)
	}
	rep, err := webhook.RecoverDeliveries(context.Background(), app, webhook.RecoverOptions{})
	if err != nil {
		panic(err)
	}
	fake.WaitDeliveries() // the fake redelivers in the background
	fmt.Printf("failed %d, redelivered %d, handled %d\n", rep.Failed, rep.Redelivered, handled.Load())
	// Output:
	// delivered: false
	// failed 1, redelivered 1, handled 1
}

// SyncInstallations keeps the host's record of its App's installations
// (which the credential resolver reads) in step with installation events.
func ExampleSyncInstallations() {
	const secret = "It's a Secret to Everybody"
	h, err := webhook.New([]string{secret})
	if err != nil {
		panic(err)
	}
	store := credentials.NewMemoryInstallationStore()
	// A *github.TokenCache as the last argument drops the cached token of
	// an installation that changed.
	webhook.SyncInstallations(h, store, nil)

	for _, payload := range []string{
		`{"action":"created","installation":{"id":7,"account":{"login":"acme","type":"Organization"},"repository_selection":"selected"},
			"repositories":[{"full_name":"acme/api"}]}`,
		`{"action":"suspend","installation":{"id":7,"account":{"login":"acme","type":"Organization"},"repository_selection":"selected",
			"suspended_at":"2026-01-10T10:00:00Z"}}`,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, webhooktest.NewRequest("installation", []byte(payload), secret))
		in, err := store.GetInstallation(context.Background(), 7)
		if err != nil {
			panic(err)
		}
		fmt.Println(w.Code, in.Account, in.Status, in.Repositories)
	}
	// Output:
	// 200 acme active [acme/api]
	// 200 acme suspended [acme/api]
}
