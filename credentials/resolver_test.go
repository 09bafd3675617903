package credentials_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
)

// stubTokens is a TokenSource that never talks to GitHub.
type stubTokens struct{}

func (stubTokens) Token(_ context.Context, id int64) (credentials.InstallationToken, error) {
	return credentials.InstallationToken{Value: credentials.NewSecret("inst-token")}, nil
}

func TestResolver(t *testing.T) {
	ctx := context.Background()
	store := credentials.NewMemoryInstallationStore()
	for _, in := range []credentials.Installation{
		{ID: 1, Account: "acme", Status: credentials.StatusActive, RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/api"}},
		{ID: 2, Account: "globex", Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll},
		{ID: 3, Account: "initech", Status: credentials.StatusSuspended, RepositorySelection: credentials.SelectionAll},
		{ID: 4, Account: "hooli", Status: credentials.StatusDeleted, RepositorySelection: credentials.SelectionAll},
	} {
		require.NoError(t, store.UpsertInstallation(ctx, in))
	}
	secrets := credentials.NewMemorySecretStore(map[string]map[string]string{"": {"DEPLOY_TOKEN": "pat-from-secret", "EMPTY": ""}})
	full := credentials.NewResolver(
		credentials.WithTokenSource(stubTokens{}),
		credentials.WithInstallationStore(store),
		credentials.WithSecretStore(secrets),
	)
	noApp := credentials.NewResolver(credentials.WithInstallationStore(store), credentials.WithSecretStore(secrets))
	noSecrets := credentials.NewResolver()
	tok := credentials.NewSecret

	for _, tc := range []struct {
		name      string
		r         *credentials.Resolver
		target    credentials.Target
		wantType  credentials.Type
		wantInst  int64
		wantToken string
		wantIs    error
		wantText  string
	}{
		{name: "explicit installation wins over the linked one", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "api", InstallationID: 2},
			wantType: credentials.TypeInstallation, wantInst: 2, wantToken: "inst-token"},
		{name: "explicit installation and a token conflict", r: full,
			target: credentials.Target{Owner: "acme", Repo: "api", InstallationID: 2, StaticToken: tok("pat")},
			wantIs: credentials.ErrCredentialConflict, wantText: "keep one"},
		{name: "explicit installation unknown to the store is refused", r: full,
			target: credentials.Target{Owner: "acme", Repo: "api", InstallationID: 77},
			wantIs: credentials.ErrNotPermitted, wantText: "installation 77 is not one of this tenant's installations"},
		{name: "explicit installation without a store is refused", r: credentials.NewResolver(credentials.WithTokenSource(stubTokens{})),
			target: credentials.Target{Owner: "acme", Repo: "api", InstallationID: 1},
			wantIs: credentials.ErrNotPermitted},
		{name: "explicit suspended installation", r: full,
			target: credentials.Target{Owner: "initech", Repo: "x", InstallationID: 3},
			wantIs: credentials.ErrInstallationSuspended, wantText: "unsuspend"},
		{name: "explicit deleted installation", r: full,
			target: credentials.Target{Owner: "hooli", Repo: "x", InstallationID: 4},
			wantIs: credentials.ErrInstallationDeleted, wantText: "install the App"},
		{name: "explicit installation without an App", r: noApp,
			target: credentials.Target{Owner: "acme", Repo: "api", InstallationID: 1},
			wantIs: credentials.ErrNotConfigured, wantText: "no GitHub App is configured"},
		{name: "installation linked to the repository", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "api"},
			wantType: credentials.TypeInstallation, wantInst: 1},
		{name: "a token in the config wins over the linked installation", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "api", StaticToken: tok("pat")},
			wantType: credentials.TypeStaticToken, wantToken: "pat"},
		{name: "installation for all repositories of the account", r: full,
			target:   credentials.Target{Owner: "Globex", Repo: "anything"},
			wantType: credentials.TypeInstallation, wantInst: 2},
		{name: "linked installation suspended", r: full,
			target: credentials.Target{Owner: "initech", Repo: "x"},
			wantIs: credentials.ErrInstallationSuspended},
		{name: "linked installation deleted", r: full,
			target: credentials.Target{Owner: "hooli", Repo: "x"},
			wantIs: credentials.ErrInstallationDeleted},
		{name: "another tenant's secret namespace", r: full,
			target: credentials.Target{Tenant: "tenant-b", Owner: "acme", Repo: "other", StaticToken: tok("{{ secrets.DEPLOY_TOKEN }}")},
			wantIs: credentials.ErrSecretNotFound},
		{name: "static token when no installation", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("pat-literal")},
			wantType: credentials.TypeStaticToken, wantToken: "pat-literal"},
		{name: "static token without an App", r: noApp,
			target:   credentials.Target{Owner: "acme", Repo: "api", StaticToken: tok("pat-literal")},
			wantType: credentials.TypeStaticToken, wantToken: "pat-literal"},
		{name: "secret reference", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{ secrets.DEPLOY_TOKEN }}")},
			wantType: credentials.TypeStaticToken, wantToken: "pat-from-secret"},
		{name: "secret reference without spaces", r: full,
			target:   credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{secrets.DEPLOY_TOKEN}}")},
			wantType: credentials.TypeStaticToken, wantToken: "pat-from-secret"},
		{name: "missing secret", r: full,
			target: credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{ secrets.NOPE }}")},
			wantIs: credentials.ErrSecretNotFound, wantText: "NOPE"},
		{name: "empty secret", r: full,
			target: credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{ secrets.EMPTY }}")},
			wantIs: credentials.ErrSecretNotFound, wantText: "empty"},
		{name: "malformed secret reference", r: full,
			target: credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{ secret.DEPLOY_TOKEN }}")},
			wantIs: failure.ErrInvalidJobAgent, wantText: "malformed secret reference"},
		{name: "secret reference without a secret store", r: noSecrets,
			target: credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("{{ secrets.X }}")},
			wantIs: credentials.ErrNotConfigured, wantText: "secret X"},
		{name: "token with white space", r: full,
			target: credentials.Target{Owner: "acme", Repo: "other", StaticToken: tok("ghp_abc def")},
			wantIs: failure.ErrInvalidJobAgent, wantText: "white space"},
		{name: "nothing configured", r: noSecrets,
			target: credentials.Target{Owner: "acme", Repo: "api"},
			wantIs: credentials.ErrNotConfigured, wantText: "for acme/api: the job config has no installationId and no token, and no GitHub App is configured"},
		{name: "App without installation and no token", r: full,
			target: credentials.Target{Owner: "acme", Repo: "other"},
			wantIs: credentials.ErrNotConfigured, wantText: "no installation linked to acme/other"},
		{name: "missing repo", r: full, target: credentials.Target{Owner: "acme"}, wantIs: failure.ErrInvalidJobAgent, wantText: "without owner and repo"},
		{name: "negative installation id", r: full, target: credentials.Target{Owner: "a", Repo: "b", InstallationID: -1}, wantIs: failure.ErrInvalidJobAgent, wantText: "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := tc.r.Resolve(ctx, tc.target)
			if tc.wantIs != nil || tc.wantText != "" {
				require.Error(t, err)
				if tc.wantIs != nil {
					assert.ErrorIs(t, err, tc.wantIs)
				}
				assert.Contains(t, err.Error(), tc.wantText)
				assert.True(t, cred.IsZero())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantType, cred.Type)
			assert.Equal(t, tc.wantInst, cred.InstallationID)
			assert.NotEmpty(t, cred.Source)
			if tc.wantToken != "" {
				got, err := cred.Token(ctx)
				require.NoError(t, err)
				assert.Equal(t, tc.wantToken, got.Reveal())
			}
		})
	}
}

// failingStore fails every lookup, as a database that is down would.
type failingStore struct{ credentials.InstallationStore }

var errDown = errors.New("database is down")

func (failingStore) GetInstallation(context.Context, int64) (credentials.Installation, error) {
	return credentials.Installation{}, errDown
}

func (failingStore) FindInstallationByRepo(context.Context, string, string) (credentials.Installation, error) {
	return credentials.Installation{}, errDown
}

func TestResolverStoreFailureIsNotAFallback(t *testing.T) {
	r := credentials.NewResolver(credentials.WithTokenSource(stubTokens{}), credentials.WithInstallationStore(failingStore{}))
	_, err := r.Resolve(context.Background(), credentials.Target{Owner: "a", Repo: "b"})
	require.ErrorIs(t, err, errDown, "a store outage is an error, not 'no installation'")
	_, err = r.Resolve(context.Background(), credentials.Target{Owner: "a", Repo: "b", InstallationID: 5})
	require.ErrorIs(t, err, errDown, "a store outage is an error, not a refusal or a pass-through")
	assert.NotErrorIs(t, err, credentials.ErrNotPermitted)
	assert.Equal(t, failure.ErrTransient, failure.Class(err), "a store outage is retried, not a broken integration")
}

func TestResolverAudit(t *testing.T) {
	log := &credentials.MemoryAuditLog{}
	r := credentials.NewResolver(credentials.WithAudit(log))
	_, err := r.Resolve(context.Background(), credentials.Target{Owner: "a", Repo: "b", StaticToken: credentials.NewSecret("pat-xyz"), JobID: "job-1"})
	require.NoError(t, err)
	_, err = r.Resolve(context.Background(), credentials.Target{Owner: "a", Repo: "c"})
	require.Error(t, err)
	evs := log.Events()
	require.Len(t, evs, 2)
	assert.Equal(t, credentials.EventResolve, evs[0].Name)
	assert.Equal(t, credentials.TypeStaticToken, evs[0].CredentialType)
	assert.Equal(t, "a/b", evs[0].Repo)
	assert.Equal(t, "job-1", evs[0].JobID)
	assert.Equal(t, credentials.OutcomeSuccess, evs[0].Outcome)
	assert.Equal(t, credentials.OutcomeFailure, evs[1].Outcome)
	assert.Contains(t, evs[1].Error, "not configured")
}

// A token of the job config is a secret reference only in the exact form
// "{{ secrets.NAME }}"; anything else that starts like one is the job
// config's error, never sent as a literal token.
func TestResolverSecretReferences(t *testing.T) {
	ctx := context.Background()
	r := credentials.NewResolver(credentials.WithSecretStore(credentials.NewMemorySecretStore(map[string]map[string]string{
		"": {"A_1": "tok-a1", "x": "tok-x", "A": "tok-a"},
	})))
	for in, want := range map[string]string{
		"ghp_plain":         "ghp_plain",
		"{{ secrets.A_1 }}": "tok-a1",
		"  {{secrets.x}}  ": "tok-x",
	} {
		cred, err := r.Resolve(ctx, credentials.Target{Owner: "a", Repo: "b", StaticToken: credentials.NewSecret(in)})
		require.NoError(t, err, in)
		got, err := cred.Token(ctx)
		require.NoError(t, err, in)
		assert.Equal(t, want, got.Reveal(), in)
	}
	for _, in := range []string{"{{ secrets.1A }}", "{{ secrets. }}", "{{ env.HOME }}", "{{ secrets.A }} extra", "{{ secrets.A-B }}"} {
		cred, err := r.Resolve(ctx, credentials.Target{Owner: "a", Repo: "b", StaticToken: credentials.NewSecret(in)})
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), "malformed secret reference", in)
		assert.Equal(t, failure.ErrInvalidJobAgent, failure.Class(err), in)
		assert.True(t, cred.IsZero(), in)
	}
}

func TestUnclaimedBelongTo(t *testing.T) {
	ctx := context.Background()
	store := credentials.NewMemoryInstallationStore()
	require.NoError(t, store.UpsertInstallation(ctx, credentials.Installation{ID: 1, Account: "acme", Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll}))
	require.NoError(t, store.UpsertInstallation(ctx, credentials.Installation{ID: 2, Account: "beta", Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll, Tenant: "other"}))
	r := credentials.NewResolver(credentials.WithTokenSource(stubTokens{}), credentials.WithInstallationStore(credentials.UnclaimedBelongTo(store, "only")))

	cred, err := r.Resolve(ctx, credentials.Target{Tenant: "only", Owner: "acme", Repo: "x"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), cred.InstallationID)
	_, err = r.Resolve(ctx, credentials.Target{Tenant: "only", Owner: "beta", Repo: "x"})
	require.ErrorIs(t, err, credentials.ErrNotPermitted, "a claimed installation stays its tenant's")
	_, err = r.Resolve(ctx, credentials.Target{Tenant: "someone", Owner: "acme", Repo: "x", InstallationID: 1})
	require.ErrorIs(t, err, credentials.ErrNotPermitted)
}
