package credentialstest_test

import (
	"testing"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/credentials/credentialstest"
)

// A host with its own installation and secret stores runs the suites from
// the stores' tests, with a fresh, empty store for each case:
//
//	func TestInstallationStore(t *testing.T) {
//		credentialstest.TestInstallationStore(t, openEmptyStore)
//		credentialstest.TestTenantRules(t, openEmptyStore)
//	}
//
// Here they run on the in-memory stores.
func Example() {
	suite := func(t *testing.T) {
		empty := func(*testing.T) credentials.InstallationStore { return new(credentials.MemoryInstallationStore) }
		credentialstest.TestInstallationStore(t, empty)
		credentialstest.TestTenantRules(t, empty)
		credentialstest.TestSecretStore(t, func(_ *testing.T, byTenant map[string]map[string]string) credentials.SecretStore {
			return credentials.NewMemorySecretStore(byTenant)
		})
	}
	_ = suite
}
