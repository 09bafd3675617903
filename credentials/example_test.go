package credentials_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ghbridge/ghbridge/credentials"
)

func ExampleLoadAppConfig() {
	env := map[string]string{
		"GITHUB_APP_ID":  "12345",
		"GITHUB_API_URL": "https://ghe.example.com",
		// Normally os.LookupEnv; a PEM pasted with literal \n is repaired.
		"GITHUB_APP_PRIVATE_KEY": pkcs1PEM(),
	}
	cfg, err := credentials.LoadAppConfig(credentials.MapLookup(env))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg)

	_, err = credentials.LoadAppConfig(func(string) (string, bool) { return "", false })
	fmt.Println(errors.Is(err, credentials.ErrNotConfigured), err)
	// Output:
	// GitHub App 12345 (key [redacted]) at https://ghe.example.com/api/v3/
	// true GitHub bot not configured: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE)
}

func ExampleResolver() {
	ctx := context.Background()
	// In production the tokens come from package github's TokenCache; the
	// Resolver only hands the source to the credentials it returns.
	tokens := credentials.TokenSourceFunc(func(context.Context, int64) (credentials.InstallationToken, error) {
		return credentials.InstallationToken{Value: credentials.NewSecret("ghs_example")}, nil
	})
	inst := credentials.Installation{ID: 42}
	store := credentials.NewMemoryInstallationStore()
	_ = store.UpsertInstallation(ctx, credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"},
	})
	resolver := credentials.NewResolver(
		credentials.WithTokenSource(tokens),
		credentials.WithInstallationStore(store),
		credentials.WithSecretStore(credentials.NewMemorySecretStore(map[string]map[string]string{"": {"DEPLOY_TOKEN": "ghp_example"}})),
	)

	cred, _ := resolver.Resolve(ctx, credentials.Target{Owner: "acme", Repo: "api"})
	fmt.Println(cred.Type, cred.InstallationID == inst.ID)

	cred, _ = resolver.Resolve(ctx, credentials.Target{Owner: "other", Repo: "svc", StaticToken: credentials.NewSecret("{{ secrets.DEPLOY_TOKEN }}")})
	fmt.Println(cred)

	_, err := resolver.Resolve(ctx, credentials.Target{Owner: "other", Repo: "svc"})
	fmt.Println(errors.Is(err, credentials.ErrNotConfigured))
	// Output:
	// installation true
	// static_token (secret DEPLOY_TOKEN)
	// true
}

func ExampleSecret() {
	s := credentials.NewSecret("ghs_very_secret")
	fmt.Printf("%v %s %#v\n", s, s, s)
	fmt.Println(len(s.Reveal()))
	// Output:
	// [redacted] [redacted] [redacted]
	// 15
}
