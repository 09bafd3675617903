package credentials

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// InstallationStatus is the lifecycle state of an App installation. Store
// implementations keep it as text.
type InstallationStatus string

// Installation statuses.
const (
	StatusActive    InstallationStatus = "active"
	StatusSuspended InstallationStatus = "suspended"
	StatusDeleted   InstallationStatus = "deleted"
)

// Valid reports whether s is one of the known statuses. Store
// implementations check a status with it before storing it.
func (s InstallationStatus) Valid() bool {
	return s == StatusActive || s == StatusSuspended || s == StatusDeleted
}

// Repository selections of an installation (Installation.RepositorySelection),
// as GitHub names them.
const (
	SelectionAll      = "all"
	SelectionSelected = "selected"
)

// Installation is what ghbridge remembers of a GitHub App installation.
// Store implementations keep every field; hosts read it to list a
// tenant's installations.
type Installation struct {
	ID int64
	// Account is the login of the user or organization the App is
	// installed on.
	Account string
	// AccountType is "User" or "Organization".
	AccountType string
	Status      InstallationStatus
	// RepositorySelection is SelectionAll (every repository of Account) or
	// SelectionSelected (only Repositories).
	RepositorySelection string
	// Repositories are the granted repositories as "owner/name", used when
	// RepositorySelection is SelectionSelected.
	Repositories []string
	// Tenant is the host's owner of the installation, empty when unclaimed.
	Tenant    string
	UpdatedAt time.Time
}

// Grants reports whether the installation covers owner/repo. Names compare
// case-insensitively, as on GitHub. Store implementations that match
// FindInstallationByRepo in memory use it.
func (in Installation) Grants(owner, repo string) bool {
	if in.RepositorySelection == SelectionAll {
		return strings.EqualFold(in.Account, owner)
	}
	full := owner + "/" + repo
	return slices.ContainsFunc(in.Repositories, func(r string) bool { return strings.EqualFold(r, full) })
}

// InstallationStore remembers App installations and the repositories they
// grant. Hosts implement it over their database (or use
// MemoryInstallationStore). Implementations must be safe for concurrent
// use; lookups of an unknown installation return an error matching
// ErrInstallationNotFound. credentialstest.TestInstallationStore checks
// an implementation.
type InstallationStore interface {
	// GetInstallation returns the installation with the id.
	GetInstallation(ctx context.Context, id int64) (Installation, error)
	// FindInstallationByRepo returns the installation granting owner/repo,
	// preferring an active one over suspended or deleted ones.
	FindInstallationByRepo(ctx context.Context, owner, repo string) (Installation, error)
	// ListInstallations returns every installation, ordered by id.
	ListInstallations(ctx context.Context) ([]Installation, error)
	// UpsertInstallation creates or replaces an installation, except for
	// its Tenant: a new installation gets in.Tenant, an existing one keeps
	// its own (tenants change only through ClaimInstallation, so that a
	// webhook racing an install callback cannot drop a claim).
	UpsertInstallation(ctx context.Context, in Installation) error
	// ClaimInstallation sets the tenant of a known installation that has
	// none, or already has this one. Another tenant's installation gives
	// an error matching ErrInstallationClaimed.
	ClaimInstallation(ctx context.Context, id int64, tenant string) error
	// SetInstallationStatus changes the status of a known installation.
	SetInstallationStatus(ctx context.Context, id int64, status InstallationStatus) error
	// UpdateRepositories records a change of granted repositories: the
	// selection (ignored when empty), then added and removed "owner/name"
	// entries, atomically.
	UpdateRepositories(ctx context.Context, id int64, selection string, added, removed []string) error
}

// SecretStore resolves the secret names used in "{{ secrets.NAME }}"
// references. Hosts implement it over their secret manager (or use
// EnvSecretStore or MemorySecretStore), each tenant in a namespace of its
// own: a name that only
// another tenant has is not found. A missing name returns an error
// matching ErrSecretNotFound that does not say whether another tenant has
// it. Single-tenant hosts pass the empty tenant.
// credentialstest.TestSecretStore checks an implementation.
type SecretStore interface {
	Secret(ctx context.Context, tenant, name string) (Secret, error)
}

var (
	secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envTenant  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// validSecretName reports whether name may be used in a secret reference:
// letters, digits and underscores, not starting with a digit.
func validSecretName(name string) bool { return secretName.MatchString(name) }

// EnvTenantName reports whether a tenant name maps to an environment
// namespace of EnvSecretStore: lower-case letters and digits in words
// joined by single hyphens, so that no two tenants share one. Hosts that
// use EnvSecretStore check their tenant names with it at startup.
func EnvTenantName(tenant string) bool { return envTenant.MatchString(tenant) }

// EnvSecretStore resolves secrets from environment variables, for hosts
// configured by their environment. Tenant T's
// secret NAME is read from Prefix + ENV(T) + "__" + NAME, where ENV(T) is
// T upper-cased with '-' turned into '_' (tenant "team-a", secret TOKEN:
// GHBRIDGE_SECRET_TEAM_A__TOKEN). The empty tenant reads Prefix + NAME.
// Only tenant names of lower-case letters and digits in words joined by
// single hyphens map to variables, so that no two tenants share one.
type EnvSecretStore struct {
	// Prefix is prepended to every variable, e.g. "GHBRIDGE_SECRET_".
	Prefix string
	// Lookup reads a variable; os.LookupEnv for the process environment.
	Lookup LookupFunc
	// SharedWith, when set, lets the tenants for which it returns true
	// also read the unscoped Prefix + NAME variables, after their own.
	// Nil shares nothing: a server-wide secret is reachable only where
	// the host says so.
	SharedWith func(tenant string) bool
}

// Secret implements SecretStore.
func (s EnvSecretStore) Secret(ctx context.Context, tenant, name string) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	if !validSecretName(name) {
		return Secret{}, fmt.Errorf("invalid secret name %q: use letters, digits and underscores", name)
	}
	vars := make([]string, 0, 2)
	if tenant == "" {
		vars = append(vars, s.Prefix+name)
	} else {
		if !EnvTenantName(tenant) {
			return Secret{}, fmt.Errorf("%w: tenant %q has no environment namespace (use lower-case letters, digits and single hyphens)", ErrSecretNotFound, tenant)
		}
		vars = append(vars, s.Prefix+strings.ToUpper(strings.ReplaceAll(tenant, "-", "_"))+"__"+name)
		if s.SharedWith != nil && s.SharedWith(tenant) {
			vars = append(vars, s.Prefix+name)
		}
	}
	if s.Lookup != nil {
		for _, k := range vars {
			if v, ok := s.Lookup(k); ok && v != "" {
				return NewSecret(v), nil
			}
		}
	}
	return Secret{}, fmt.Errorf("%w: %s (set the environment variable %s)", ErrSecretNotFound, name, vars[0])
}
