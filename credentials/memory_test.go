package credentials_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/credentials/credentialstest"
)

func TestMemoryInstallationStore(t *testing.T) {
	newStore := func(*testing.T) credentials.InstallationStore { return credentials.NewMemoryInstallationStore() }
	credentialstest.TestInstallationStore(t, newStore)
	credentialstest.TestTenantRules(t, newStore)
}

func TestMemorySecretStore(t *testing.T) {
	credentialstest.TestSecretStore(t, func(_ *testing.T, byTenant map[string]map[string]string) credentials.SecretStore {
		return credentials.NewMemorySecretStore(byTenant)
	})
}

func TestEnvSecretStore(t *testing.T) {
	credentialstest.TestSecretStore(t, func(_ *testing.T, byTenant map[string]map[string]string) credentials.SecretStore {
		env := map[string]string{}
		for tenant, secrets := range byTenant {
			ns := ""
			if tenant != "" {
				ns = strings.ToUpper(strings.ReplaceAll(tenant, "-", "_")) + "__"
			}
			for k, v := range secrets {
				env["TEST_SECRET_"+ns+k] = v
			}
		}
		return credentials.EnvSecretStore{Prefix: "TEST_SECRET_", Lookup: credentials.MapLookup(env)}
	})
}

func TestEnvSecretStoreNamespaces(t *testing.T) {
	ctx := context.Background()
	env := credentials.MapLookup(map[string]string{
		"P_TEAM_A__TOKEN": "team-a", "P_TOKEN": "shared",
	})
	s := credentials.EnvSecretStore{Prefix: "P_", Lookup: env}
	v, err := s.Secret(ctx, "team-a", "TOKEN")
	require.NoError(t, err)
	assert.Equal(t, "team-a", v.Reveal())

	_, err = s.Secret(ctx, "team-b", "TOKEN")
	require.ErrorIs(t, err, credentials.ErrSecretNotFound, "unscoped variables are not shared unless the host says so")
	assert.Contains(t, err.Error(), "P_TEAM_B__TOKEN", "the error names the variable to set")

	for _, tenant := range []string{"Team-A", "team_a", "team--a", "-a", "a-", "a.b"} {
		_, err = s.Secret(ctx, tenant, "TOKEN")
		require.ErrorIs(t, err, credentials.ErrSecretNotFound, "tenant %q has no namespace: two tenants could share one", tenant)
	}

	s.SharedWith = func(tenant string) bool { return tenant == "team-b" }
	v, err = s.Secret(ctx, "team-b", "TOKEN")
	require.NoError(t, err)
	assert.Equal(t, "shared", v.Reveal())
	v, err = s.Secret(ctx, "team-a", "TOKEN")
	require.NoError(t, err)
	assert.Equal(t, "team-a", v.Reveal(), "a tenant's own variable wins over the shared one")
	_, err = s.Secret(ctx, "team-c", "TOKEN")
	require.ErrorIs(t, err, credentials.ErrSecretNotFound)
}
