package github_test

import (
	"context"
	"fmt"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func ExampleClientFactory_Client() {
	fake := githubtest.NewServer() // in production: the API of github.com or a GHES host
	defer fake.Close()
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", DefaultBranch: "trunk"})
	inst := fake.AddInstallation(githubtest.Installation{Account: "acme", Repositories: []string{"acme/api"}})

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
	if err != nil {
		fmt.Println(err)
		return
	}
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
