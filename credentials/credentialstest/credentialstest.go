// Package credentialstest holds conformance suites for implementations of
// the credentials package's storage interfaces. A host's SQL (or other)
// store runs the suite from its own tests:
//
//	func TestMyStore(t *testing.T) {
//		newStore := func(t *testing.T) credentials.InstallationStore { return newEmptyStore(t) }
//		credentialstest.TestInstallationStore(t, newStore)
//		credentialstest.TestTenantRules(t, newStore)
//	}
package credentialstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/contend"
)

// TestInstallationStore runs the InstallationStore conformance suite. A
// host's store implementation calls it from its tests; newStore must
// return an empty store for each call.
func TestInstallationStore(t *testing.T, newStore func(t *testing.T) credentials.InstallationStore) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s credentials.InstallationStore)
	}{
		{"GetMissing", getMissing},
		{"UpsertRoundTrip", upsertRoundTrip},
		{"UpsertSetsUpdatedAtWhenZero", upsertSetsUpdatedAtWhenZero},
		{"UpsertReplaces", upsertReplaces},
		{"UpsertRejectsInvalid", upsertRejectsInvalid},
		{"ReturnedValuesAreCopies", returnedValuesAreCopies},
		{"FindByRepoSelected", findByRepoSelected},
		{"FindByRepoAllSelection", findByRepoAllSelection},
		{"FindByRepoPrefersActive", func(t *testing.T, s credentials.InstallationStore) { findByRepoPrefersActive(t, s, newStore) }},
		{"SetStatus", setStatus},
		{"UpdateRepositories", updateRepositories},
		{"Claim", claim},
		{"ConcurrentClaims", concurrentClaims},
		{"ListOrdered", listOrdered},
		{"CanceledContext", canceledContext},
		{"Concurrent", concurrent},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

// baseInstallation returns the installation the cases store, or start
// from: active, with two selected repositories, claimed by tenant-a.
func baseInstallation() credentials.Installation {
	return credentials.Installation{
		ID: 101, Account: "Acme", AccountType: "Organization", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected,
		Repositories:        []string{"acme/api", "acme/web"},
		Tenant:              "tenant-a",
		UpdatedAt:           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// getMissing checks ErrInstallationNotFound from the lookups of an empty
// store, and an empty list.
func getMissing(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	_, err := s.GetInstallation(ctx, 999)
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
	_, err = s.FindInstallationByRepo(ctx, "acme", "api")
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
	list, err := s.ListInstallations(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// upsertRoundTrip checks that an upserted installation reads back field by
// field.
func upsertRoundTrip(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	got, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.Equal(t, base.ID, got.ID)
	assert.Equal(t, base.Account, got.Account)
	assert.Equal(t, base.AccountType, got.AccountType)
	assert.Equal(t, base.Status, got.Status)
	assert.Equal(t, base.RepositorySelection, got.RepositorySelection)
	assert.ElementsMatch(t, base.Repositories, got.Repositories)
	assert.Equal(t, base.Tenant, got.Tenant)
	assert.True(t, base.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt %v, want %v", got.UpdatedAt, base.UpdatedAt)
}

// upsertSetsUpdatedAtWhenZero checks that an upsert without UpdatedAt gets
// one.
func upsertSetsUpdatedAtWhenZero(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	in := base
	in.UpdatedAt = time.Time{}
	require.NoError(t, s.UpsertInstallation(ctx, in))
	got, err := s.GetInstallation(ctx, in.ID)
	require.NoError(t, err)
	assert.False(t, got.UpdatedAt.IsZero())
}

// upsertReplaces checks that an upsert replaces an installation but keeps
// its tenant.
func upsertReplaces(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	next := base
	next.Repositories = []string{"acme/other"}
	next.Status = credentials.StatusSuspended
	next.Tenant = "tenant-b"
	require.NoError(t, s.UpsertInstallation(ctx, next))
	got, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/other"}, got.Repositories)
	assert.Equal(t, credentials.StatusSuspended, got.Status)
	assert.Equal(t, "tenant-a", got.Tenant, "an upsert keeps the tenant of an existing installation")
	list, err := s.ListInstallations(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

// upsertRejectsInvalid checks that invalid installations are refused and
// not stored.
func upsertRejectsInvalid(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	for name, in := range map[string]credentials.Installation{
		"zero id":        {Status: credentials.StatusActive, RepositorySelection: credentials.SelectionAll},
		"bad status":     {ID: 1, Status: "gone", RepositorySelection: credentials.SelectionAll},
		"bad selection":  {ID: 1, Status: credentials.StatusActive, RepositorySelection: "some"},
		"bad repository": {ID: 1, Status: credentials.StatusActive, RepositorySelection: credentials.SelectionSelected, Repositories: []string{"noslash"}},
	} {
		assert.Error(t, s.UpsertInstallation(ctx, in), name)
	}
	list, err := s.ListInstallations(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "an invalid installation must not be stored")
}

// returnedValuesAreCopies checks that neither the caller's slices nor the
// returned ones alias the stored installation.
func returnedValuesAreCopies(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	in := base
	in.Repositories = []string{"acme/api"}
	require.NoError(t, s.UpsertInstallation(ctx, in))
	in.Repositories[0] = "evil/repo"
	got, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	got.Repositories[0] = "evil/repo"
	again, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme/api"}, again.Repositories)
}

// findByRepoSelected checks FindInstallationByRepo on an installation with
// selected repositories, names compared case-insensitively.
func findByRepoSelected(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	got, err := s.FindInstallationByRepo(ctx, "ACME", "Web")
	require.NoError(t, err, "repository names compare case-insensitively")
	assert.Equal(t, base.ID, got.ID)
	_, err = s.FindInstallationByRepo(ctx, "acme", "secret")
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
	_, err = s.FindInstallationByRepo(ctx, "other", "api")
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
}

// findByRepoAllSelection checks FindInstallationByRepo on an installation
// with all of an account's repositories.
func findByRepoAllSelection(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	all := base
	all.ID, all.RepositorySelection, all.Repositories = 202, credentials.SelectionAll, nil
	require.NoError(t, s.UpsertInstallation(ctx, all))
	got, err := s.FindInstallationByRepo(ctx, "acme", "anything")
	require.NoError(t, err)
	assert.Equal(t, int64(202), got.ID)
	_, err = s.FindInstallationByRepo(ctx, "acme-other", "anything")
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
}

// findByRepoPrefersActive checks that FindInstallationByRepo prefers an
// active installation to a newer inactive one, and still finds an inactive
// one alone; it makes a second store with newStore.
func findByRepoPrefersActive(t *testing.T, s credentials.InstallationStore, newStore func(t *testing.T) credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	old := base
	old.ID, old.Status = 1, credentials.StatusDeleted
	old.UpdatedAt = base.UpdatedAt.Add(time.Hour) // newer, but deleted
	require.NoError(t, s.UpsertInstallation(ctx, old))
	require.NoError(t, s.UpsertInstallation(ctx, base))
	got, err := s.FindInstallationByRepo(ctx, "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, base.ID, got.ID)

	s2 := newStore(t)
	require.NoError(t, s2.UpsertInstallation(ctx, old))
	got, err = s2.FindInstallationByRepo(ctx, "acme", "api")
	require.NoError(t, err, "an inactive installation is still found, so that callers can report it")
	assert.Equal(t, credentials.StatusDeleted, got.Status)
}

// setStatus checks SetInstallationStatus, which keeps the repositories.
func setStatus(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	for _, st := range []credentials.InstallationStatus{credentials.StatusSuspended, credentials.StatusActive, credentials.StatusDeleted} {
		require.NoError(t, s.SetInstallationStatus(ctx, base.ID, st))
		got, err := s.GetInstallation(ctx, base.ID)
		require.NoError(t, err)
		assert.Equal(t, st, got.Status)
		assert.ElementsMatch(t, base.Repositories, got.Repositories, "status change keeps repositories")
	}
	require.ErrorIs(t, s.SetInstallationStatus(ctx, 999, credentials.StatusActive), credentials.ErrInstallationNotFound)
	assert.Error(t, s.SetInstallationStatus(ctx, base.ID, "bogus"))
}

// updateRepositories checks UpdateRepositories: additions without
// duplicates, removals, and a change of selection.
func updateRepositories(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	require.NoError(t, s.UpdateRepositories(ctx, base.ID, "", []string{"acme/new", "ACME/API"}, []string{"acme/web"}))
	got, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"acme/api", "acme/new"}, got.Repositories, "no duplicates, removals applied")
	assert.Equal(t, credentials.SelectionSelected, got.RepositorySelection)
	_, err = s.FindInstallationByRepo(ctx, "acme", "web")
	require.ErrorIs(t, err, credentials.ErrInstallationNotFound)
	_, err = s.FindInstallationByRepo(ctx, "acme", "new")
	require.NoError(t, err)

	require.NoError(t, s.UpdateRepositories(ctx, base.ID, credentials.SelectionAll, nil, nil))
	got, err = s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.Equal(t, credentials.SelectionAll, got.RepositorySelection)

	require.ErrorIs(t, s.UpdateRepositories(ctx, 999, "", []string{"a/b"}, nil), credentials.ErrInstallationNotFound)
	assert.Error(t, s.UpdateRepositories(ctx, base.ID, "some", nil, nil))
}

// claim checks ClaimInstallation: once per installation, again by the same
// tenant, and kept by later upserts.
func claim(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	in := base
	in.Tenant = ""
	require.NoError(t, s.UpsertInstallation(ctx, in))
	require.NoError(t, s.ClaimInstallation(ctx, in.ID, "tenant-a"))
	require.NoError(t, s.ClaimInstallation(ctx, in.ID, "tenant-a"), "claiming again is a no-op")
	require.ErrorIs(t, s.ClaimInstallation(ctx, in.ID, "tenant-b"), credentials.ErrInstallationClaimed)
	got, err := s.GetInstallation(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, "tenant-a", got.Tenant)
	require.ErrorIs(t, s.ClaimInstallation(ctx, 999, "tenant-a"), credentials.ErrInstallationNotFound)
	assert.Error(t, s.ClaimInstallation(ctx, in.ID, ""))

	in.Repositories = []string{"acme/x"}
	require.NoError(t, s.UpsertInstallation(ctx, in))
	got, err = s.GetInstallation(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, "tenant-a", got.Tenant, "a webhook upsert cannot drop a claim")
}

// concurrentClaims checks that of concurrent claims of one installation
// exactly one wins.
func concurrentClaims(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	in := base
	in.Tenant = ""
	require.NoError(t, s.UpsertInstallation(ctx, in))
	won := contend.Winners(20, func(i int) bool {
		return s.ClaimInstallation(ctx, in.ID, fmt.Sprint("tenant-", i)) == nil
	})
	assert.Equal(t, 1, won, "exactly one tenant wins an installation")
}

// listOrdered checks that ListInstallations orders by id.
func listOrdered(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	for _, id := range []int64{30, 10, 20} {
		in := base
		in.ID = id
		require.NoError(t, s.UpsertInstallation(ctx, in))
	}
	list, err := s.ListInstallations(ctx)
	require.NoError(t, err)
	var ids []int64
	for _, in := range list {
		ids = append(ids, in.ID)
	}
	assert.Equal(t, []int64{10, 20, 30}, ids)
}

// canceledContext checks that a cancelled context fails the calls.
func canceledContext(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.GetInstallation(cctx, 1)
	assert.Error(t, err)
	assert.Error(t, s.UpsertInstallation(cctx, base))
}

// concurrent checks that concurrent calls succeed and lose no repository
// update.
func concurrent(t *testing.T, s credentials.InstallationStore) {
	ctx := context.Background()
	base := baseInstallation()
	require.NoError(t, s.UpsertInstallation(ctx, base))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("acme/r%d", i)
			errs <- s.UpdateRepositories(ctx, base.ID, "", []string{repo}, nil)
			_, err := s.FindInstallationByRepo(ctx, "acme", fmt.Sprintf("r%d", i))
			errs <- err
			in := base
			in.ID = int64(1000 + i)
			errs <- s.UpsertInstallation(ctx, in)
			_, err = s.ListInstallations(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetInstallation(ctx, base.ID)
	require.NoError(t, err)
	assert.Len(t, got.Repositories, 52, "no concurrent repository update may be lost")
}

// TestSecretStore runs the SecretStore conformance suite. A host's secret
// store implementation calls it from its tests; newStore must return a
// store holding exactly the given secrets, by tenant then name (tenant ""
// is a single-tenant host's namespace).
func TestSecretStore(t *testing.T, newStore func(t *testing.T, byTenant map[string]map[string]string) credentials.SecretStore) {
	ctx := context.Background()
	s := newStore(t, map[string]map[string]string{
		"tenant-a": {"DEPLOY_TOKEN": "tok-a", "ONLY_A": "a"},
		"tenant-b": {"DEPLOY_TOKEN": "tok-b"},
		"":         {"DEPLOY_TOKEN": "tok-host"},
	})

	t.Run("Found", func(t *testing.T) {
		for tenant, want := range map[string]string{"tenant-a": "tok-a", "tenant-b": "tok-b", "": "tok-host"} {
			v, err := s.Secret(ctx, tenant, "DEPLOY_TOKEN")
			require.NoError(t, err, "tenant %q", tenant)
			assert.Equal(t, want, v.Reveal(), "each tenant reads its own namespace (tenant %q)", tenant)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		_, err := s.Secret(ctx, "tenant-a", "NOPE")
		require.ErrorIs(t, err, credentials.ErrSecretNotFound)
	})
	t.Run("OtherTenantsSecretNotFound", func(t *testing.T) {
		_, err := s.Secret(ctx, "tenant-b", "ONLY_A")
		require.ErrorIs(t, err, credentials.ErrSecretNotFound)
		_, err = s.Secret(ctx, "", "ONLY_A")
		require.ErrorIs(t, err, credentials.ErrSecretNotFound, "the host namespace does not see tenants' secrets")
		_, err = s.Secret(ctx, "tenant-c", "DEPLOY_TOKEN")
		require.ErrorIs(t, err, credentials.ErrSecretNotFound, "a tenant without secrets does not fall back to another namespace")
	})
	t.Run("CaseSensitive", func(t *testing.T) {
		_, err := s.Secret(ctx, "tenant-a", "deploy_token")
		require.Error(t, err)
	})
	t.Run("CanceledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Secret(cctx, "tenant-a", "DEPLOY_TOKEN")
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("ValueNeverPrinted", func(t *testing.T) {
		v, err := s.Secret(ctx, "tenant-a", "DEPLOY_TOKEN")
		require.NoError(t, err)
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v %s", v, v, v, v), "tok-a")
	})
}

// TestTenantRules checks the tenant rules of credential resolution on top
// of an InstallationStore implementation: a credentials.Resolver over the
// store must use only installations claimed by the job's tenant, refuse
// unknown installation ids, and never let one tenant's job use another
// tenant's installation. A host's store implementation calls it next to
// TestInstallationStore; newStore must return an empty store per call.
func TestTenantRules(t *testing.T, newStore func(t *testing.T) credentials.InstallationStore) {
	r := tenantResolver(t, newStore(t))
	for _, tc := range []tenantCase{
		{"own explicit installation", credentials.Target{Tenant: "tenant-a", Owner: "acme", Repo: "api", InstallationID: 1}, 1, "", nil},
		{"own linked installation", credentials.Target{Tenant: "tenant-a", Owner: "acme", Repo: "api"}, 1, "", nil},
		{"other tenant's installation by id", credentials.Target{Tenant: "tenant-b", Owner: "acme", Repo: "api", InstallationID: 1}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"other tenant's installation for own repo name", credentials.Target{Tenant: "tenant-b", Owner: "beta", Repo: "web", InstallationID: 1}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"other tenant's repository", credentials.Target{Tenant: "tenant-b", Owner: "acme", Repo: "api"}, 0, credentials.RuleRepoNotClaimed, nil},
		{"unknown installation id", credentials.Target{Tenant: "tenant-a", Owner: "acme", Repo: "api", InstallationID: 999}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"unclaimed installation by id", credentials.Target{Tenant: "tenant-a", Owner: "gamma", Repo: "app", InstallationID: 3}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"unclaimed installation by repository", credentials.Target{Tenant: "tenant-a", Owner: "gamma", Repo: "app"}, 0, credentials.RuleRepoNotClaimed, nil},
		{"single-tenant host uses unclaimed installation", credentials.Target{Owner: "gamma", Repo: "app"}, 3, "", nil},
		{"single-tenant host cannot use a claimed one", credentials.Target{Owner: "acme", Repo: "api", InstallationID: 1}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"own suspended installation", credentials.Target{Tenant: "tenant-a", Owner: "delta", Repo: "svc"}, 0, "", credentials.ErrInstallationSuspended},
		{"other tenant's suspended installation looks unclaimed", credentials.Target{Tenant: "tenant-b", Owner: "delta", Repo: "svc", InstallationID: 4}, 0, credentials.RuleInstallationNotClaimed, nil},
		{"repository without installation", credentials.Target{Tenant: "tenant-a", Owner: "nobody", Repo: "x"}, 0, "", credentials.ErrNotConfigured},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTenantCase(t, r, tc) })
	}
}

// tenantResolver stores the installations of TestTenantRules in s, and
// returns a Resolver over s: acme/api is tenant-a's, beta/web tenant-b's,
// gamma/app unclaimed, delta/svc tenant-a's but suspended.
func tenantResolver(t *testing.T, s credentials.InstallationStore) *credentials.Resolver {
	t.Helper()
	ctx := context.Background()
	put := func(id int64, account, tenant string, status credentials.InstallationStatus, repos ...string) {
		t.Helper()
		require.NoError(t, s.UpsertInstallation(ctx, credentials.Installation{
			ID: id, Account: account, AccountType: "Organization", Status: credentials.StatusActive,
			RepositorySelection: credentials.SelectionSelected, Repositories: repos,
		}))
		if tenant != "" {
			require.NoError(t, s.ClaimInstallation(ctx, id, tenant))
		}
		if status != credentials.StatusActive {
			require.NoError(t, s.SetInstallationStatus(ctx, id, status))
		}
	}
	put(1, "acme", "tenant-a", credentials.StatusActive, "acme/api")
	put(2, "beta", "tenant-b", credentials.StatusActive, "beta/web")
	put(3, "gamma", "", credentials.StatusActive, "gamma/app")
	put(4, "delta", "tenant-a", credentials.StatusSuspended, "delta/svc")

	tokens := credentials.TokenSourceFunc(func(context.Context, int64) (credentials.InstallationToken, error) {
		return credentials.InstallationToken{Value: credentials.NewSecret("ghs_test"), ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	return credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(s))
}

// tenantCase is one case of TestTenantRules: a target to resolve, and
// the installation used or the refusal expected.
type tenantCase struct {
	name     string
	target   credentials.Target
	wantID   int64 // installation used; 0 when refused
	wantRule string
	wantErr  error
}

// checkTenantCase resolves tc's target with r and checks the outcome.
func checkTenantCase(t *testing.T, r *credentials.Resolver, tc tenantCase) {
	ctx := context.Background()
	cred, err := r.Resolve(ctx, tc.target)
	switch {
	case tc.wantRule != "":
		require.ErrorIs(t, err, credentials.ErrNotPermitted)
		var pe *credentials.PermissionError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, tc.wantRule, pe.Rule)
		for _, owner := range []string{"tenant-a", "tenant-b"} {
			if owner != tc.target.Tenant {
				assert.NotContains(t, err.Error(), owner, "a refusal never names the installation's owner")
			}
		}
		assert.True(t, cred.IsZero())
	case tc.wantErr != nil:
		require.ErrorIs(t, err, tc.wantErr)
		assert.True(t, cred.IsZero())
	default:
		require.NoError(t, err)
		assert.Equal(t, credentials.TypeInstallation, cred.Type)
		assert.Equal(t, tc.wantID, cred.InstallationID)
	}
}
