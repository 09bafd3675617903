package github_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
)

func TestClientSource(t *testing.T) {
	t.Parallel()
	s := newSetup(t, github.WithAPIVersion(github.APIVersion20260310))
	ctx := context.Background()
	installs := credentials.NewMemoryInstallationStore()
	require.NoError(t, installs.UpsertInstallation(ctx, credentials.Installation{
		ID: s.inst.ID, Tenant: "team-a", Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"},
	}))
	const pat = "ghp_SOURCETEST"
	s.srv.AddStaticToken(pat)
	audit := &credentials.MemoryAuditLog{}
	source := github.NewClientSource(credentials.NewResolver(credentials.WithTokenSource(s.tokens),
		credentials.WithInstallationStore(installs), credentials.WithAudit(audit)), s.f)
	assert.Equal(t, github.APIVersion20260310, source.APIVersion())

	t.Run("installation", func(t *testing.T) {
		client, cred, err := source.For(ctx, credentials.Target{Tenant: "team-a", Owner: "acme", Repo: "api", JobID: "j1"})
		require.NoError(t, err)
		assert.Equal(t, credentials.TypeInstallation, cred.Type)
		assert.Equal(t, s.inst.ID, cred.InstallationID)
		repo, _, err := client.Repositories.Get(ctx, "acme", "api")
		require.NoError(t, err)
		assert.Equal(t, "acme/api", repo.GetFullName())
		assert.Equal(t, github.APIVersion20260310, s.headers.last(t, "/repos/acme/api").Header.Get("X-GitHub-Api-Version"),
			"the client is the factory's")
	})
	t.Run("static token", func(t *testing.T) {
		client, cred, err := source.For(ctx, credentials.Target{Tenant: "team-a", Owner: "acme", Repo: "api", StaticToken: credentials.NewSecret(pat)})
		require.NoError(t, err)
		assert.Equal(t, credentials.TypeStaticToken, cred.Type)
		_, _, err = client.Repositories.Get(ctx, "acme", "api")
		require.NoError(t, err)
		assert.Equal(t, "Bearer "+pat, s.headers.last(t, "/repos/acme/api").Header.Get("Authorization"))
	})
	t.Run("refused: nothing sent", func(t *testing.T) {
		before := len(s.srv.Requests())
		client, cred, err := source.For(ctx, credentials.Target{Tenant: "team-b", Owner: "acme", Repo: "api", JobID: "j2"})
		require.ErrorIs(t, err, credentials.ErrNotPermitted)
		assert.Nil(t, client)
		assert.True(t, cred.IsZero())
		assert.Len(t, s.srv.Requests(), before, "nothing was sent to GitHub")
		evs := audit.Events()
		require.NotEmpty(t, evs)
		assert.Equal(t, credentials.OutcomeFailure, evs[len(evs)-1].Outcome, "the resolution is audited")
		assert.Equal(t, "j2", evs[len(evs)-1].JobID)
	})
}
