package credentials

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryInstallationStore is an InstallationStore held in memory, for tests
// and single-process hosts; ghbridge.New uses one when the host gives no
// store. The zero value is ready to use.
type MemoryInstallationStore struct {
	mu   sync.RWMutex
	byID map[int64]Installation
}

// NewMemoryInstallationStore returns an empty store, the same as the zero
// value.
func NewMemoryInstallationStore() *MemoryInstallationStore {
	return &MemoryInstallationStore{}
}

func cloneInstallation(in Installation) Installation {
	in.Repositories = slices.Clone(in.Repositories)
	return in
}

func notFound(id int64) error { return fmt.Errorf("%w: %d", ErrInstallationNotFound, id) }

// GetInstallation implements InstallationStore.
func (s *MemoryInstallationStore) GetInstallation(ctx context.Context, id int64) (Installation, error) {
	if err := ctx.Err(); err != nil {
		return Installation{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byID[id]
	if !ok {
		return Installation{}, notFound(id)
	}
	return cloneInstallation(in), nil
}

// FindInstallationByRepo implements InstallationStore.
func (s *MemoryInstallationStore) FindInstallationByRepo(ctx context.Context, owner, repo string) (Installation, error) {
	if err := ctx.Err(); err != nil {
		return Installation{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best Installation
	found := false
	for _, in := range s.byID {
		if !in.Grants(owner, repo) {
			continue
		}
		if !found || betterMatch(in, best) {
			best, found = in, true
		}
	}
	if !found {
		return Installation{}, fmt.Errorf("%w: none grants %s/%s", ErrInstallationNotFound, owner, repo)
	}
	return cloneInstallation(best), nil
}

// betterMatch orders candidate installations for one repository: active
// first, then the most recently updated, then the highest id.
func betterMatch(a, b Installation) bool {
	if (a.Status == StatusActive) != (b.Status == StatusActive) {
		return a.Status == StatusActive
	}
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	return a.ID > b.ID
}

// ListInstallations implements InstallationStore.
func (s *MemoryInstallationStore) ListInstallations(ctx context.Context) ([]Installation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	out := make([]Installation, 0, len(s.byID))
	for _, in := range s.byID {
		out = append(out, cloneInstallation(in))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Installation) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpsertInstallation implements InstallationStore.
func (s *MemoryInstallationStore) UpsertInstallation(ctx context.Context, in Installation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckInstallation(in); err != nil {
		return err
	}
	in = cloneInstallation(in)
	in.Repositories = normalizeRepos(in.Repositories)
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = make(map[int64]Installation)
	}
	if old, ok := s.byID[in.ID]; ok {
		in.Tenant = old.Tenant
	}
	s.byID[in.ID] = in
	return nil
}

// ClaimInstallation implements InstallationStore.
func (s *MemoryInstallationStore) ClaimInstallation(ctx context.Context, id int64, tenant string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tenant == "" {
		return fmt.Errorf("claiming installation %d: empty tenant", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.byID[id]
	switch {
	case !ok:
		return notFound(id)
	case in.Tenant != "" && in.Tenant != tenant:
		return fmt.Errorf("%w: installation %d", ErrInstallationClaimed, id)
	}
	in.Tenant, in.UpdatedAt = tenant, time.Now()
	s.byID[id] = in
	return nil
}

// SetInstallationStatus implements InstallationStore.
func (s *MemoryInstallationStore) SetInstallationStatus(ctx context.Context, id int64, status InstallationStatus) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !status.Valid() {
		return fmt.Errorf("invalid installation status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.byID[id]
	if !ok {
		return notFound(id)
	}
	in.Status, in.UpdatedAt = status, time.Now()
	s.byID[id] = in
	return nil
}

// UpdateRepositories implements InstallationStore.
func (s *MemoryInstallationStore) UpdateRepositories(ctx context.Context, id int64, selection string, added, removed []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSelection(selection, true); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.byID[id]
	if !ok {
		return notFound(id)
	}
	in.Repositories = applyRepositoryChange(in.Repositories, added, removed)
	if selection != "" {
		in.RepositorySelection = selection
	}
	in.UpdatedAt = time.Now()
	s.byID[id] = in
	return nil
}

// CheckInstallation validates an installation before it is stored: store
// implementations call it from UpsertInstallation, so that they refuse
// what the conformance suite expects refused.
func CheckInstallation(in Installation) error {
	if in.ID <= 0 {
		return fmt.Errorf("installation id must be positive, got %d", in.ID)
	}
	if !in.Status.Valid() {
		return fmt.Errorf("installation %d: invalid status %q", in.ID, in.Status)
	}
	if err := checkSelection(in.RepositorySelection, false); err != nil {
		return fmt.Errorf("installation %d: %w", in.ID, err)
	}
	for _, r := range in.Repositories {
		if o, n, ok := strings.Cut(r, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
			return fmt.Errorf("installation %d: repository %q is not owner/name", in.ID, r)
		}
	}
	return nil
}

func checkSelection(sel string, emptyOK bool) error {
	if sel == SelectionAll || sel == SelectionSelected || (emptyOK && sel == "") {
		return nil
	}
	return fmt.Errorf("repository selection must be %q or %q, got %q", SelectionAll, SelectionSelected, sel)
}

// applyRepositoryChange returns repos with added appended and removed taken
// out, compared case-insensitively, without duplicates, sorted. Store
// implementations may use it to implement UpdateRepositories.
func applyRepositoryChange(repos, added, removed []string) []string {
	out := make([]string, 0, len(repos)+len(added))
	drop := func(r string) bool {
		return slices.ContainsFunc(removed, func(x string) bool { return strings.EqualFold(x, r) })
	}
	for _, r := range append(slices.Clone(repos), added...) {
		if drop(r) || slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, r) }) {
			continue
		}
		out = append(out, r)
	}
	return normalizeRepos(out)
}

func normalizeRepos(repos []string) []string {
	if len(repos) == 0 {
		return nil
	}
	slices.SortFunc(repos, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return slices.CompactFunc(repos, strings.EqualFold)
}

// MemorySecretStore is a SecretStore backed by maps, one per tenant, for
// tests and small hosts. The zero value is an empty store.
type MemorySecretStore struct {
	mu      sync.RWMutex
	secrets map[string]map[string]string // tenant -> name -> value
}

// NewMemorySecretStore returns a store holding a copy of byTenant, which
// maps a tenant ("" for a single-tenant host) to its secrets.
func NewMemorySecretStore(byTenant map[string]map[string]string) *MemorySecretStore {
	s := &MemorySecretStore{}
	for tenant, secrets := range byTenant {
		for k, v := range secrets {
			s.Set(tenant, k, v)
		}
	}
	return s
}

// Set adds or replaces a tenant's secret, for hosts whose secrets change
// at run time.
func (s *MemorySecretStore) Set(tenant, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets == nil {
		s.secrets = make(map[string]map[string]string)
	}
	if s.secrets[tenant] == nil {
		s.secrets[tenant] = make(map[string]string)
	}
	s.secrets[tenant][name] = value
}

// Secret implements SecretStore.
func (s *MemorySecretStore) Secret(ctx context.Context, tenant, name string) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	s.mu.RLock()
	v, ok := s.secrets[tenant][name]
	s.mu.RUnlock()
	if !ok {
		return Secret{}, fmt.Errorf("%w: %s", ErrSecretNotFound, name)
	}
	return NewSecret(v), nil
}
