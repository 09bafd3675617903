package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/control"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// A host's "cancel" button: the controller asks GitHub to cancel the run,
// and the job becomes cancelled when the run's workflow_run delivery says
// it completed so.
func ExampleController_Cancel() {
	// Runs ignore cancel requests until the example ends one itself, so
	// that Cancel's answer always comes before the run's end.
	fake := githubtest.NewServer(githubtest.WithCancelDelay(-1))
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	ctx := context.Background()

	b, _ := ghbridge.New(ghbridge.Config{App: fake.AppConfig(), WebhookSecrets: []string{"s3cret"}})
	hooks := httptest.NewServer(b.Webhooks) // the host's webhook route
	defer hooks.Close()
	fake.SetWebhook(hooks.URL, "s3cret")
	_ = b.Installations.UpsertInstallation(ctx, credentials.Installation{ID: inst.ID, Account: "acme",
		Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll})
	job := dispatch.Request{ID: "job-1", Agent: json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml"}`)}
	_, _ = b.Accept(ctx, job)
	res, _ := b.Dispatch(ctx, job)

	c := control.New(b.Tracker, b.Source)
	j, err := c.Cancel(ctx, job.ID, "alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(j.Status, j.Control.Cancelling(), j.Control.CancelRequestedBy)

	// GitHub cancels the run asynchronously, and tells the host.
	_, _ = fake.SetRunStatus(res.RunID, "completed", "cancelled")
	fake.WaitDeliveries()
	run, _ := fake.GetRun(res.RunID)
	j, _ = b.Jobs.GetJob(ctx, job.ID)
	fmt.Println(run.Conclusion, j.Status)
	// Output:
	// in_progress true alice
	// cancelled cancelled
}
