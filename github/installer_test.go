package github_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func TestVerifyInstaller(t *testing.T) {
	t.Parallel()
	srv := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(srv.Close)
	var many []int64
	for i := range 150 {
		many = append(many, srv.AddInstallation(githubtest.AppInstallation{Account: "org" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), AllRepositories: true}).ID)
	}
	mine := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	other := srv.AddInstallation(githubtest.AppInstallation{Account: "beta", AllRepositories: true})
	srv.AddUser("alice", append(many, mine.ID)...)
	srv.AddUser("bob", other.ID)

	clients, err := github.NewClientFactory(github.WithBaseURL(srv.URL))
	require.NoError(t, err)
	app := srv.AppConfig()
	ctx := context.Background()

	t.Run("listed on a later page", func(t *testing.T) {
		require.NoError(t, clients.VerifyInstaller(ctx, app, srv.AuthorizeUser("alice"), mine.ID))
	})
	t.Run("spoofed installation id", func(t *testing.T) {
		err := clients.VerifyInstaller(ctx, app, srv.AuthorizeUser("alice"), other.ID)
		require.ErrorIs(t, err, github.ErrNotInstaller)
		assert.Equal(t, failure.ErrInvalidIntegration, failure.Class(err))
	})
	t.Run("replayed code", func(t *testing.T) {
		code := srv.AuthorizeUser("bob")
		require.NoError(t, clients.VerifyInstaller(ctx, app, code, other.ID))
		require.ErrorIs(t, clients.VerifyInstaller(ctx, app, code, other.ID), github.ErrAuthorizationCode)
	})
	t.Run("forged or missing code", func(t *testing.T) {
		require.ErrorIs(t, clients.VerifyInstaller(ctx, app, "forged", mine.ID), github.ErrAuthorizationCode)
		err := clients.VerifyInstaller(ctx, app, "", mine.ID)
		require.ErrorIs(t, err, github.ErrAuthorizationCode)
		assert.Equal(t, failure.ErrFailed, failure.Class(err))
		assert.Contains(t, err.Error(), "Request user authorization")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		bad := app
		bad.ClientSecret = credentials.NewSecret("wrong")
		require.ErrorIs(t, clients.VerifyInstaller(ctx, bad, srv.AuthorizeUser("alice"), mine.ID), github.ErrAuthorizationCode)
	})
	t.Run("no OAuth client", func(t *testing.T) {
		bad := app
		bad.ClientSecret = credentials.Secret{}
		require.ErrorIs(t, clients.VerifyInstaller(ctx, bad, srv.AuthorizeUser("alice"), mine.ID), github.ErrNoOAuthClient)
		_, err := clients.AuthorizeURL(bad, "s")
		require.ErrorIs(t, err, github.ErrNoOAuthClient)
		assert.Equal(t, failure.ErrInvalidIntegration, failure.Class(err))
	})
}

func TestWebURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ api, web, install string }{
		{"https://api.github.com/", "https://github.com", "https://github.com/apps/my-app/installations/new?state=s+1"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com", "https://ghe.example.com/github-apps/my-app/installations/new?state=s+1"},
	} {
		f, err := github.NewClientFactory(github.WithBaseURL(tc.api))
		require.NoError(t, err)
		assert.Equal(t, tc.web, f.WebURL())
		assert.Equal(t, tc.install, f.InstallURL("my-app", "s 1"))
		u, err := f.AuthorizeURL(credentials.AppConfig{ClientID: "Iv1.x", ClientSecret: credentials.NewSecret("y")}, "st")
		require.NoError(t, err)
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		assert.Equal(t, tc.web+"/login/oauth/authorize", parsed.Scheme+"://"+parsed.Host+parsed.Path)
		assert.Equal(t, "Iv1.x", parsed.Query().Get("client_id"))
		assert.Equal(t, "st", parsed.Query().Get("state"))
		assert.Empty(t, parsed.Query().Get("client_secret"), "the client secret never goes into a URL")
	}
}
