package githubtest_test

import (
	"context"
	"fmt"
	"net/url"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

// A test starts a fake with githubtest.New(t, opts...), which also checks
// every request and answer against GitHub's OpenAPI description and
// closes the fake when the test ends. Outside a test (as here), NewServer
// and Close.
func Example() {
	fake := githubtest.NewServer()
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", Inputs: []string{"version"}},
	}})
	fake.AddStaticToken("ghp_example")

	// Any GitHub client works against fake.URL, the REST API's base URL.
	client := gh.NewClient(fake.Client()).WithAuthToken("ghp_example")
	client.BaseURL, _ = url.Parse(fake.URL)
	_, err := client.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "acme", "api", "deploy.yml",
		gh.CreateWorkflowDispatchEventRequest{Ref: "main", Inputs: map[string]any{"version": "v1.4.0"}})
	if err != nil {
		panic(err)
	}
	// The fake records what was asked of it, and starts the run.
	for _, d := range fake.Dispatches() {
		fmt.Println(d.Owner, d.Repo, d.Ref, d.Inputs["version"])
	}
	for _, r := range fake.Runs() {
		fmt.Println(r.Status)
	}
	// Output:
	// acme api main v1.4.0
	// queued
}
