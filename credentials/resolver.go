package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/failure"
)

// Target is what a credential is resolved for: a job's tenant, its
// repository and what its agent config says about authentication. The
// dispatcher builds it from a job; hosts build one to resolve a
// credential outside a job.
type Target struct {
	// Tenant is the owner of the job in the host's terms (a team, an
	// organisation, a customer). Only installations claimed by this tenant
	// and secrets in its namespace are used. Single-tenant hosts leave it
	// empty: installations nobody claimed belong to the empty tenant.
	Tenant string
	Owner  string
	Repo   string
	// InstallationID is the installationId of the job config; 0 when unset.
	InstallationID int64
	// StaticToken is a token from the job config: a literal token, or a
	// reference "{{ secrets.NAME }}" resolved in the tenant's namespace
	// of the SecretStore.
	StaticToken Secret
	// JobID is recorded in the audit event.
	JobID string
}

// Resolver picks the credential for a Target, in this order:
//
//  1. an installationId in the job config: that installation, if the
//     InstallationStore records it as claimed by the target's tenant;
//  2. a token in the job config (literal, or "{{ secrets.NAME }}" from the
//     tenant's secrets): that token as it is;
//  3. both: ErrCredentialConflict;
//  4. neither: the installation linked to the repository, if it is the
//     tenant's;
//  5. none: ErrNotConfigured, naming what is missing.
//
// A refusal by the tenant rules matches ErrNotPermitted (see
// PermissionError) and says nothing of the installation's owner. An
// installation that is suspended or deleted is an error
// (ErrInstallationSuspended, ErrInstallationDeleted), never a silent
// fallback: the fix is on GitHub, and hiding it would run the job as
// someone else.
//
// Single-tenant hosts leave Target.Tenant empty; unclaimed installations
// are then theirs, and the rules hold trivially. ghbridge.New builds the
// Resolver; hosts that wire the packages themselves call NewResolver.
type Resolver struct {
	tokens   TokenSource
	installs InstallationLookup
	secrets  SecretStore
	audit    AuditSink
	now      func() time.Time
}

// InstallationLookup is the part of an InstallationStore a Resolver
// reads. Hosts pass their store, or wrap it to change what the Resolver
// sees (UnclaimedBelongTo does).
type InstallationLookup interface {
	GetInstallation(ctx context.Context, id int64) (Installation, error)
	FindInstallationByRepo(ctx context.Context, owner, repo string) (Installation, error)
}

// ResolverOption configures a Resolver. Hosts pass them to NewResolver,
// or to ghbridge.New with ghbridge.WithResolverOptions.
type ResolverOption func(*Resolver)

// WithTokenSource sets where installation tokens come from, normally a
// *github.TokenCache. Without one, no installation credential is resolved.
func WithTokenSource(src TokenSource) ResolverOption {
	return func(r *Resolver) { r.tokens = src }
}

// WithInstallationStore sets the store linking repositories to
// installations and installations to tenants. Without one, no
// installation credential is resolved: an installation id is never used
// unchecked.
func WithInstallationStore(s InstallationLookup) ResolverOption {
	return func(r *Resolver) { r.installs = s }
}

// WithSecretStore sets the store for "{{ secrets.NAME }}" references,
// looked up in the target's tenant namespace. Without one, a reference is
// ErrNotConfigured.
func WithSecretStore(s SecretStore) ResolverOption {
	return func(r *Resolver) { r.secrets = s }
}

// WithAudit sends an EventResolve event for every resolution to sink;
// nil sends none.
func WithAudit(sink AuditSink) ResolverOption {
	return func(r *Resolver) { r.audit = sink }
}

// NewResolver returns a Resolver; without options it resolves literal
// static tokens only.
func NewResolver(opts ...ResolverOption) *Resolver {
	r := &Resolver{now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Resolve returns the credential for t, or an error saying what to fix.
// The dispatcher calls it through github.ClientSource for every job.
func (r *Resolver) Resolve(ctx context.Context, t Target) (Credential, error) {
	cred, err := r.resolve(ctx, t)
	ev := AuditEvent{
		Name: EventResolve, CredentialType: cred.Type, InstallationID: cred.InstallationID,
		Tenant: t.Tenant, Repo: t.Owner + "/" + t.Repo, JobID: t.JobID, Attempt: 1, Outcome: OutcomeSuccess,
	}
	if err != nil {
		ev.Outcome, ev.Error = OutcomeFailure, err.Error()
	}
	emit(ctx, r.audit, r.now, ev)
	return cred, err
}

func (r *Resolver) resolve(ctx context.Context, t Target) (Credential, error) {
	if t.Owner == "" || t.Repo == "" {
		return Credential{}, jobConfigError(fmt.Errorf("cannot resolve a credential without owner and repo (got %q/%q)", t.Owner, t.Repo))
	}
	if t.InstallationID < 0 {
		return Credential{}, jobConfigError(fmt.Errorf("installationId must be positive, got %d", t.InstallationID))
	}
	hasToken := !t.StaticToken.IsZero()
	switch {
	case t.InstallationID > 0 && hasToken:
		return Credential{}, ErrCredentialConflict
	case t.InstallationID > 0:
		return r.explicitInstallation(ctx, t)
	case hasToken:
		return r.static(ctx, t.Tenant, t.StaticToken)
	}
	return r.linkedInstallation(ctx, t)
}

// explicitInstallation checks the installationId of a job config against
// the store: only the tenant's own installation is used.
func (r *Resolver) explicitInstallation(ctx context.Context, t Target) (Credential, error) {
	if r.tokens == nil {
		return Credential{}, fmt.Errorf("%w: the job config sets installationId %d but no GitHub App is configured", ErrNotConfigured, t.InstallationID)
	}
	refused := &PermissionError{Tenant: t.Tenant, Rule: RuleInstallationNotClaimed, InstallationID: t.InstallationID}
	if r.installs == nil {
		return Credential{}, refused
	}
	in, err := r.installs.GetInstallation(ctx, t.InstallationID)
	switch {
	case errors.Is(err, ErrInstallationNotFound):
		return Credential{}, refused
	case err != nil:
		return Credential{}, fmt.Errorf("looking up installation %d: %w", t.InstallationID, failure.Mark(failure.ErrTransient, err))
	case in.Tenant != t.Tenant:
		return Credential{}, refused
	}
	if err := usable(in); err != nil {
		return Credential{}, err
	}
	return ForInstallation(r.tokens, t.InstallationID, "installationId in job config"), nil
}

// linkedInstallation uses the installation linked to the repository, if
// it is the tenant's.
func (r *Resolver) linkedInstallation(ctx context.Context, t Target) (Credential, error) {
	repo := t.Owner + "/" + t.Repo
	if r.tokens == nil {
		return Credential{}, fmt.Errorf("%w for %s: the job config has no installationId and no token, and no GitHub App is configured", ErrNotConfigured, repo)
	}
	if r.installs != nil {
		in, err := r.installs.FindInstallationByRepo(ctx, t.Owner, t.Repo)
		switch {
		case err == nil && in.Tenant != t.Tenant:
			return Credential{}, &PermissionError{Tenant: t.Tenant, Rule: RuleRepoNotClaimed, Repo: repo}
		case err == nil:
			if err := usable(in); err != nil {
				return Credential{}, err
			}
			return ForInstallation(r.tokens, in.ID, "installation linked to "+repo), nil
		case !errors.Is(err, ErrInstallationNotFound):
			return Credential{}, fmt.Errorf("looking up the installation for %s: %w", repo, failure.Mark(failure.ErrTransient, err))
		}
	}
	return Credential{}, fmt.Errorf("%w for %s: the App has no installation linked to %s (install the App on it, or set installationId or a token in the job config)", ErrNotConfigured, repo, repo)
}

// jobConfigError puts err, a fault of the job config's credential
// settings, in class failure.ErrInvalidJobAgent.
func jobConfigError(err error) error { return failure.Mark(failure.ErrInvalidJobAgent, err) }

func usable(in Installation) error {
	if in.Status == StatusActive {
		return nil
	}
	return &InstallationError{InstallationID: in.ID, Account: in.Account, Status: in.Status}
}

var secretRef = regexp.MustCompile(`^\{\{\s*secrets\.([^\s{}]*)\s*\}\}$`)

// parseSecretRef reports whether s is a "{{ secrets.NAME }}" reference and
// returns NAME. A string that looks like a reference but names no valid
// secret is an error rather than a literal token.
func parseSecretRef(s string) (name string, ok bool, err error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{{") {
		return "", false, nil
	}
	m := secretRef.FindStringSubmatch(s)
	if m == nil || !validSecretName(m[1]) {
		return "", false, jobConfigError(errors.New("malformed secret reference: write {{ secrets.NAME }} with NAME made of letters, digits and underscores"))
	}
	return m[1], true, nil
}

func (r *Resolver) static(ctx context.Context, tenant string, tok Secret) (Credential, error) {
	name, isRef, err := parseSecretRef(tok.Reveal())
	if err != nil {
		return Credential{}, err
	}
	if !isRef {
		if strings.ContainsAny(tok.Reveal(), " \t\r\n") {
			return Credential{}, jobConfigError(errors.New("the static token contains white space; paste the token alone"))
		}
		return StaticToken(tok, "static token in job config"), nil
	}
	if r.secrets == nil {
		return Credential{}, fmt.Errorf("%w: the job config refers to secret %s but no secret store is configured", ErrNotConfigured, name)
	}
	v, err := r.secrets.Secret(ctx, tenant, name)
	if err != nil {
		return Credential{}, fmt.Errorf("resolving the job config's token: %w", failure.Mark(failure.ErrTransient, err))
	}
	if v.IsZero() {
		return Credential{}, fmt.Errorf("%w: secret %s is empty", ErrSecretNotFound, name)
	}
	return StaticToken(v, "secret "+name), nil
}

// LogValue implements slog.LogValuer without the token.
func (t Target) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", t.Tenant),
		slog.String("repo", t.Owner+"/"+t.Repo),
		slog.Int64("installation_id", t.InstallationID),
		slog.Bool("has_static_token", !t.StaticToken.IsZero()),
	)
}

// UnclaimedBelongTo returns an InstallationLookup over l in which every
// installation that no tenant claimed belongs to tenant. A host with one
// tenant of its own name uses it so that installations arriving by
// webhook are usable without a claim; a host with several tenants must
// not.
func UnclaimedBelongTo(l InstallationLookup, tenant string) InstallationLookup {
	return unclaimedLookup{l: l, tenant: tenant}
}

type unclaimedLookup struct {
	l      InstallationLookup
	tenant string
}

func (u unclaimedLookup) own(in Installation, err error) (Installation, error) {
	if err == nil && in.Tenant == "" {
		in.Tenant = u.tenant
	}
	return in, err
}

func (u unclaimedLookup) GetInstallation(ctx context.Context, id int64) (Installation, error) {
	return u.own(u.l.GetInstallation(ctx, id))
}

func (u unclaimedLookup) FindInstallationByRepo(ctx context.Context, owner, repo string) (Installation, error) {
	return u.own(u.l.FindInstallationByRepo(ctx, owner, repo))
}
