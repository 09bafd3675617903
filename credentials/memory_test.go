package credentials_test

import (
	"testing"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/credentials/credentialstest"
)

func TestMemoryInstallationStore(t *testing.T) {
	credentialstest.TestInstallationStore(t, func(*testing.T) credentials.InstallationStore {
		return credentials.NewMemoryInstallationStore()
	})
}

func TestMemorySecretStore(t *testing.T) {
	credentialstest.TestSecretStore(t, func(_ *testing.T, secrets map[string]string) credentials.SecretStore {
		return credentials.NewMemorySecretStore(secrets)
	})
}

func TestEnvSecretStore(t *testing.T) {
	credentialstest.TestSecretStore(t, func(_ *testing.T, secrets map[string]string) credentials.SecretStore {
		env := map[string]string{}
		for k, v := range secrets {
			env["TEST_SECRET_"+k] = v
		}
		return credentials.EnvSecretStore{Prefix: "TEST_SECRET_", Lookup: credentials.MapLookup(env)}
	})
}
