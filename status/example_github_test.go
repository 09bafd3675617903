package status_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
)

// exampleGitHub starts a fake GitHub with the repository acme/deployer
// and the App installed on it, and returns what a host builds to talk to
// it: the client source (a credential resolver over a client factory).
func exampleGitHub() (*githubtest.Server, githubtest.AppInstallation, *github.ClientSource) {
	fake := githubtest.NewServer()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL))
	if err != nil {
		panic(err)
	}
	tokens, err := clients.TokenCache(fake.AppConfig())
	if err != nil {
		panic(err)
	}
	installs := credentials.NewMemoryInstallationStore()
	if err := installs.UpsertInstallation(context.Background(), credentials.Installation{ID: inst.ID, Account: "acme",
		Status: credentials.StatusActive, RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"}}); err != nil {
		panic(err)
	}
	resolver := credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(installs))
	return fake, inst, github.NewClientSource(resolver, clients)
}

// A Poller finds what webhook deliveries missed: here the run finished
// while no delivery reached the host, and the next pass over the jobs
// that have been quiet for a while reads the run from GitHub.
func ExamplePoller() {
	fake, inst, source := exampleGitHub()
	defer fake.Close()
	ctx := context.Background()
	run, err := fake.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: fake.Workflows("acme", "deployer")[0].ID})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	store := status.NewMemoryJobStore()
	_ = store.CreateJob(ctx, status.Job{ID: "job-1", Status: status.InProgress, Kind: "workflow_dispatch",
		Owner: "acme", Repo: "deployer", InstallationID: inst.ID, RunID: run.ID, CreatedAt: now})
	// The run completes; its deliveries are lost (no webhook is set).
	if _, err := fake.SetRunStatus(run.ID, "completed", "success"); err != nil {
		panic(err)
	}

	tracker := status.NewTracker(store, status.WithClock(func() time.Time { return now }))
	poller := status.NewPoller(tracker, store, source, status.WithQuietAfter(time.Minute), status.WithPollLimit(100))
	// In a server: call poller.Poll every minute or so.
	now = now.Add(2 * time.Minute)
	rep, err := poller.Poll(ctx)
	if err != nil {
		panic(err)
	}
	j, _ := store.GetJob(ctx, "job-1")
	fmt.Printf("checked %d, updated %d: %s\n", rep.Checked, rep.Updated, j.Status)
	// Output:
	// checked 1, updated 1: successful
}

// A GitHubReporter mirrors a job's status to GitHub, here as a check run
// on the commit the job deploys. A Tracker calls it on every change
// (status.WithReporter); this example calls it directly.
func ExampleNewGitHubReporter() {
	fake, inst, source := exampleGitHub()
	defer fake.Close()
	ctx := context.Background()
	reporter := status.NewGitHubReporter(source)
	j := status.Job{ID: "job-1", Status: status.InProgress, Owner: "acme", Repo: "deployer", InstallationID: inst.ID,
		Report: status.Report{CheckRunName: "Deploy to production", HeadSHA: "0123456789abcdef0123456789abcdef01234567"}}
	u, err := reporter.Report(ctx, j)
	if err != nil {
		panic(err)
	}
	j.Report.CheckRunID = u.CheckRunID // a Tracker stores it with the job

	j.Status = status.Successful
	if _, err := reporter.Report(ctx, j); err != nil {
		panic(err)
	}
	for _, cr := range fake.CheckRuns() {
		fmt.Println(cr.Name, cr.Status, cr.Conclusion, cr.Updates)
	}
	// Output:
	// Deploy to production completed success 1
}
