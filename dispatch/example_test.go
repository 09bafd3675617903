package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/template"
)

func ExampleDispatcher_Dispatch() {
	// A fake GitHub with one repository and its deploy workflow; in
	// production the App config comes from credentials.LoadAppConfig.
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}"},
	}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})

	clients, _ := github.NewClientFactory(github.WithBaseURL(fake.URL))
	tokens, _ := clients.TokenCache(fake.AppConfig())
	// The host's record of installations: only a tenant's own ones are
	// used for its jobs.
	store := credentials.NewMemoryInstallationStore()
	_ = store.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive, Tenant: "team-a",
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"},
	})
	d := dispatch.New(github.NewClientSource(credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(store)), clients))

	res, err := d.Dispatch(context.Background(), dispatch.Request{
		ID: "job-42", Tenant: "team-a",
		Agent: json.RawMessage(fmt.Sprintf(`{"installationId": %d, "owner": "acme", "repo": "deployer",
			"workflowId": "deploy.yml", "inputs": {"version": "{{ .version.tag }}"}}`, inst.ID)),
		Context: template.Context{Version: template.Version{Tag: "v1.4.0"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	run, _ := fake.GetRun(res.RunID)
	fmt.Println(res.Kind, res.CredentialType, res.Attempts)
	fmt.Println(run.DisplayTitle, run.Inputs["version"])
	// Output:
	// workflow_dispatch installation 1
	// Deploy job-42 v1.4.0
}
