// Command demo shows ghbridge working end to end without any GitHub
// credentials: it starts the fake GitHub (github/githubtest) in-process and
// walks through what the packages do.
//
//	go run ./examples/demo
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{
		Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy job ${{ inputs.job_id }}",
	}}})
	inst := fake.AddInstallation(githubtest.Installation{Account: "acme", Repositories: []string{"acme/deployer"}})
	fmt.Printf("fake GitHub at %s, App %d installed on acme (installation %d)\n", fake.URL, fake.AppID, inst.ID)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL), github.WithUserAgent("ghbridge-demo"), github.WithLogger(logger))
	if err != nil {
		return err
	}
	audit := &credentials.MemoryAuditLog{}
	tokens, err := credentials.NewTokenCache(fake.AppConfig(), credentials.WithTransport(clients.Transport()), credentials.WithAudit(audit))
	if err != nil {
		return err
	}
	resolver := credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithResolverAudit(audit))

	cred, err := resolver.Resolve(ctx, credentials.Target{Owner: "acme", Repo: "deployer", InstallationID: inst.ID})
	if err != nil {
		return err
	}
	fmt.Println("credential:", cred)
	client, err := clients.Client(cred)
	if err != nil {
		return err
	}
	if _, err := client.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "deployer", "deploy.yml",
		gh.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: map[string]any{"job_id": "job-1"}}); err != nil {
		return err
	}
	runs, _, err := client.Actions.ListRepositoryWorkflowRuns(ctx, "acme", "deployer", &gh.ListWorkflowRunsOptions{Event: "workflow_dispatch"})
	if err != nil {
		return err
	}
	run := runs.WorkflowRuns[0]
	fmt.Printf("dispatched run %d %q\n", run.GetID(), run.GetDisplayTitle())
	for _, st := range [][2]string{{"in_progress", ""}, {"completed", "success"}} {
		if _, err := fake.SetRunStatus(run.GetID(), st[0], st[1]); err != nil {
			return err
		}
		r, _, err := client.Actions.GetWorkflowRunByID(ctx, "acme", "deployer", run.GetID())
		if err != nil {
			return err
		}
		fmt.Printf("run %d: status=%s conclusion=%s\n", r.GetID(), r.GetStatus(), r.GetConclusion())
	}
	fmt.Printf("token exchanges: %d (one per installation per token lifetime)\n", fake.TokenExchanges(inst.ID))
	for _, e := range audit.Events() {
		fmt.Printf("audit: %s %s %s installation=%d\n", e.Name, e.Outcome, e.CredentialType, e.InstallationID)
	}
	return nil
}
