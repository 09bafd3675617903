package github_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func ExampleClientFactory_Client() {
	fake := githubtest.NewServer() // in production: the API of github.com or a GHES host
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", DefaultBranch: "trunk"})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})

	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL), github.WithUserAgent("acme-deployer"))
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := clients.TokenCache(fake.AppConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	// The credential comes from the Resolver; here a direct installation
	// credential (a host resolves one per job and tenant).
	cred := credentials.ForInstallation(tokens, inst.ID, "example")
	client, err := clients.Client(cred)
	if err != nil {
		fmt.Println(err)
		return
	}
	repo, _, err := client.Repositories.Get(context.Background(), "acme", "api")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(repo.GetFullName(), repo.GetDefaultBranch(), cred.Type)
	// Output: acme/api trunk installation
}

func ExampleClientSource_For() {
	fake := githubtest.NewServer() // in production: the API of github.com or a GHES host
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", DefaultBranch: "trunk"})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})

	ctx := context.Background()
	clients, err := github.NewClientFactory(github.WithBaseURL(fake.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := clients.TokenCache(fake.AppConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	// The host's record of which tenant claimed which installation.
	installs := credentials.NewMemoryInstallationStore()
	_ = installs.UpsertInstallation(ctx, credentials.Installation{
		ID: inst.ID, Tenant: "team-a", Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"},
	})
	resolver := credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(installs))
	// What dispatch.New, status.NewGitHubReporter, status.NewPoller and
	// control.New take.
	source := github.NewClientSource(resolver, clients)

	client, cred, err := source.For(ctx, credentials.Target{Tenant: "team-a", Owner: "acme", Repo: "api"})
	if err != nil {
		fmt.Println(err)
		return
	}
	repo, _, err := client.Repositories.Get(ctx, "acme", "api")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(repo.GetFullName(), cred.Type, cred.InstallationID == inst.ID)

	// Another tenant's job is refused before anything is sent to GitHub.
	_, _, err = source.For(ctx, credentials.Target{Tenant: "team-b", Owner: "acme", Repo: "api"})
	fmt.Println(errors.Is(err, credentials.ErrNotPermitted))
	// Output:
	// acme/api installation true
	// true
}

func ExampleWithBaseURL() {
	// github.com, and a GitHub Enterprise Server host given with or
	// without its API path.
	for _, base := range []string{"", "https://ghe.example.com", "https://ghe.example.com/api/v3"} {
		clients, err := github.NewClientFactory(github.WithBaseURL(base))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(clients.BaseURL())
	}
	_, err := github.NewClientFactory(github.WithBaseURL("ghe.example.com"))
	fmt.Println(err != nil)
	// Output:
	// https://api.github.com/
	// https://ghe.example.com/api/v3/
	// https://ghe.example.com/api/v3/
	// true
}
