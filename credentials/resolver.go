package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Target is what a credential is resolved for: a repository and what the
// job's agent config says about authentication.
type Target struct {
	Owner, Repo string
	// InstallationID is the installationId of the job config; 0 when unset.
	InstallationID int64
	// StaticToken is a token from the job config: a literal token, or a
	// reference "{{ secrets.NAME }}" resolved through the SecretStore.
	StaticToken Secret
	// JobID is recorded in the audit event.
	JobID string
}

// Resolver picks the credential for a Target. In order:
//
//  1. an explicit installation id in the target;
//  2. the installation the InstallationStore links to the repository;
//  3. the target's static token, literal or a secret reference;
//  4. otherwise ErrNotConfigured, naming what is missing.
//
// An installation that is suspended or deleted is an error
// (ErrInstallationSuspended, ErrInstallationDeleted), never a silent
// fallback to a static token: the fix is on GitHub, and hiding it would
// run the job as someone else.
type Resolver struct {
	tokens   TokenSource
	installs InstallationStore
	secrets  SecretStore
	audit    AuditSink
	now      func() time.Time
}

// ResolverOption configures a Resolver.
type ResolverOption func(*Resolver)

// WithTokenSource sets where installation tokens come from, normally a
// *TokenCache. Without one, no installation credential is resolved.
func WithTokenSource(src TokenSource) ResolverOption {
	return func(r *Resolver) { r.tokens = src }
}

// WithInstallationStore sets the store linking repositories to
// installations.
func WithInstallationStore(s InstallationStore) ResolverOption {
	return func(r *Resolver) { r.installs = s }
}

// WithSecretStore sets the store for "{{ secrets.NAME }}" references.
func WithSecretStore(s SecretStore) ResolverOption {
	return func(r *Resolver) { r.secrets = s }
}

// WithResolverAudit sends an EventResolve event for every resolution.
func WithResolverAudit(sink AuditSink) ResolverOption {
	return func(r *Resolver) { r.audit = sink }
}

// NewResolver returns a Resolver.
func NewResolver(opts ...ResolverOption) *Resolver {
	r := &Resolver{now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Resolve returns the credential for t, or an error saying what to fix.
func (r *Resolver) Resolve(ctx context.Context, t Target) (Credential, error) {
	cred, err := r.resolve(ctx, t)
	ev := AuditEvent{
		Name: EventResolve, CredentialType: cred.Type, InstallationID: cred.InstallationID,
		Repo: t.Owner + "/" + t.Repo, JobID: t.JobID, Attempt: 1, Outcome: OutcomeSuccess,
	}
	if err != nil {
		ev.Outcome, ev.Error = OutcomeFailure, err.Error()
	}
	emit(ctx, r.audit, r.now, ev)
	return cred, err
}

func (r *Resolver) resolve(ctx context.Context, t Target) (Credential, error) {
	if t.Owner == "" || t.Repo == "" {
		return Credential{}, fmt.Errorf("cannot resolve a credential without owner and repo (got %q/%q)", t.Owner, t.Repo)
	}
	if t.InstallationID < 0 {
		return Credential{}, fmt.Errorf("installationId must be positive, got %d", t.InstallationID)
	}
	repo := t.Owner + "/" + t.Repo

	if t.InstallationID > 0 {
		if r.tokens == nil {
			return Credential{}, fmt.Errorf("%w: the job config sets installationId %d but no GitHub App is configured (set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)", ErrNotConfigured, t.InstallationID)
		}
		if r.installs != nil {
			in, err := r.installs.GetInstallation(ctx, t.InstallationID)
			switch {
			case err == nil:
				if err := usable(in); err != nil {
					return Credential{}, err
				}
			case !errors.Is(err, ErrInstallationNotFound):
				return Credential{}, fmt.Errorf("looking up installation %d: %w", t.InstallationID, err)
			}
		}
		return ForInstallation(r.tokens, t.InstallationID, "installationId in job config"), nil
	}

	if r.tokens != nil && r.installs != nil {
		in, err := r.installs.FindInstallationByRepo(ctx, t.Owner, t.Repo)
		switch {
		case err == nil:
			if err := usable(in); err != nil {
				return Credential{}, err
			}
			return ForInstallation(r.tokens, in.ID, "installation linked to "+repo), nil
		case !errors.Is(err, ErrInstallationNotFound):
			return Credential{}, fmt.Errorf("looking up the installation for %s: %w", repo, err)
		}
	}

	if !t.StaticToken.IsZero() {
		return r.static(ctx, t.StaticToken)
	}

	var missing []string
	if r.tokens == nil {
		missing = append(missing, "no GitHub App is configured (set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)")
	} else {
		missing = append(missing, "the App has no installation linked to "+repo+" (install it on the repository, or set installationId in the job config)")
	}
	missing = append(missing, "the job config has no token")
	return Credential{}, fmt.Errorf("%w for %s: %s", ErrNotConfigured, repo, strings.Join(missing, ", and "))
}

func usable(in Installation) error {
	if in.Status == StatusActive {
		return nil
	}
	return &InstallationError{InstallationID: in.ID, Account: in.Account, Status: in.Status}
}

var secretRef = regexp.MustCompile(`^\{\{\s*secrets\.([^\s{}]*)\s*\}\}$`)

// ParseSecretRef reports whether s is a "{{ secrets.NAME }}" reference and
// returns NAME. A string that looks like a reference but names no valid
// secret is an error rather than a literal token.
func ParseSecretRef(s string) (name string, ok bool, err error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{{") {
		return "", false, nil
	}
	m := secretRef.FindStringSubmatch(s)
	if m == nil || !ValidSecretName(m[1]) {
		return "", false, fmt.Errorf("malformed secret reference: write {{ secrets.NAME }} with NAME made of letters, digits and underscores")
	}
	return m[1], true, nil
}

func (r *Resolver) static(ctx context.Context, tok Secret) (Credential, error) {
	name, isRef, err := ParseSecretRef(tok.Reveal())
	if err != nil {
		return Credential{}, err
	}
	if !isRef {
		if strings.ContainsAny(tok.Reveal(), " \t\r\n") {
			return Credential{}, errors.New("the static token contains white space; paste the token alone")
		}
		return StaticToken(tok, "static token in job config"), nil
	}
	if r.secrets == nil {
		return Credential{}, fmt.Errorf("%w: the job config refers to secret %s but no secret store is configured", ErrNotConfigured, name)
	}
	v, err := r.secrets.Secret(ctx, name)
	if err != nil {
		return Credential{}, fmt.Errorf("resolving the job config's token: %w", err)
	}
	if v.IsZero() {
		return Credential{}, fmt.Errorf("%w: secret %s is empty", ErrSecretNotFound, name)
	}
	return StaticToken(v, "secret "+name), nil
}

// LogValue implements slog.LogValuer without the token.
func (t Target) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("repo", t.Owner+"/"+t.Repo),
		slog.Int64("installation_id", t.InstallationID),
		slog.Bool("has_static_token", !t.StaticToken.IsZero()),
	)
}
