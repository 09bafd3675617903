package ghbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// The whole pipeline: a job of tenant team-a dispatched to GitHub, and its
// run's deliveries moving the job. A fake GitHub stands in for github.com.
func Example() {
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	ctx := context.Background()

	// The quick start: an App (credentials.LoadAppConfig(os.LookupEnv) in
	// production), the host's stores (in memory here), the webhook route.
	b, err := ghbridge.New(ghbridge.Config{App: fake.AppConfig(), WebhookSecrets: []string{"s3cret"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux() // the host's
	mux.Handle("POST /github/webhook", b.Webhooks)
	_ = b.Installations.UpsertInstallation(ctx, credentials.Installation{ID: inst.ID, Account: "acme", Tenant: "team-a",
		Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll}) // claimed by team-a
	job := dispatch.Request{ID: "team-a.job-1", Tenant: "team-a", Agent: json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}`)}
	if _, err := b.Accept(ctx, job); err != nil {
		fmt.Println(err)
		return
	}
	res, err := b.Dispatch(ctx, job)
	j, _ := b.Jobs.GetJob(ctx, job.ID)
	fmt.Println(err, res.RunID != 0, j.Status)

	// Another tenant cannot use team-a's installation: nothing is sent.
	other := dispatch.Request{ID: "team-b.job-1", Tenant: "team-b", Agent: job.Agent}
	_, _ = b.Accept(ctx, other)
	_, err = b.Dispatch(ctx, other)
	j, _ = b.Jobs.GetJob(ctx, other.ID)
	fmt.Println(j.Status, len(fake.Dispatches()))
	// Output:
	// <nil> true in_progress
	// invalid_integration 1
}
