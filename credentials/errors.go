package credentials

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ghbridge/ghbridge/failure"
)

// Errors of this package, matched with errors.Is: hosts tell users what
// to fix by them, and store implementations return ErrInstallationNotFound,
// ErrInstallationClaimed and ErrSecretNotFound. Each is also in a class of
// package failure (all ErrInvalidIntegration, but ErrCredentialConflict:
// ErrInvalidJobAgent, and ErrInstallationToken, which has none of its
// own: a *TokenError is ErrTransient when GitHub could not answer and
// ErrInvalidIntegration when it refused).
var (
	// ErrNotConfigured means no credential can be built: no GitHub App
	// (id and key) and no static token. The wrapping error names what is
	// missing.
	ErrNotConfigured = failure.New(failure.ErrInvalidIntegration, "GitHub bot not configured")

	// ErrInstallationToken means GitHub refused or failed to issue an
	// installation token. A *TokenError matches it, holding GitHub's
	// status and message; its class says whether to retry.
	ErrInstallationToken = errors.New("failed to get installation token")

	// ErrInstallationNotFound is returned by an InstallationStore that
	// knows no installation for the id or repository asked for.
	ErrInstallationNotFound = failure.New(failure.ErrInvalidIntegration, "installation not found")

	// ErrInstallationSuspended means the installation picked for a job has
	// been suspended by the account owner; it must be unsuspended in the
	// account's installation settings before jobs can run.
	ErrInstallationSuspended = failure.New(failure.ErrInvalidIntegration, "GitHub App installation is suspended")

	// ErrInstallationDeleted means the installation picked for a job was
	// uninstalled; the App has to be installed again.
	ErrInstallationDeleted = failure.New(failure.ErrInvalidIntegration, "GitHub App installation was deleted")

	// ErrSecretNotFound is returned by a SecretStore that has no secret of
	// the name asked for.
	ErrSecretNotFound = failure.New(failure.ErrInvalidIntegration, "secret not found")

	// ErrInstallationClaimed means the installation belongs to another
	// tenant of the host.
	ErrInstallationClaimed = failure.New(failure.ErrInvalidIntegration, "installation is claimed by another tenant")

	// ErrInvalidKey means the App private key could not be used.
	ErrInvalidKey = failure.New(failure.ErrInvalidIntegration, "invalid GitHub App private key")

	// ErrNotPermitted means the tenant of a job may not use the
	// installation its config names or its repository is linked to. It
	// comes wrapped in a *PermissionError naming the rule; nothing was
	// sent to GitHub, and who owns the installation is not said.
	ErrNotPermitted = failure.New(failure.ErrInvalidIntegration, "credential not permitted for this tenant")

	// ErrCredentialConflict means a job config names both an
	// installation and a token: it must choose one.
	ErrCredentialConflict = failure.New(failure.ErrInvalidJobAgent, "the job config sets both installationId and token; keep one")
)

// Rules a Resolver refuses a credential by, in PermissionError.Rule.
// Hosts that word refusals their own way switch on them.
const (
	// RuleInstallationNotClaimed: the installationId of the job config is
	// not recorded in the InstallationStore as claimed by the job's
	// tenant. An id the store does not know falls under this rule too
	// (ids are never passed through to GitHub), and so does another
	// tenant's: the two look the same.
	RuleInstallationNotClaimed = "installation-not-claimed"
	// RuleRepoNotClaimed: the installation linked to the repository is not
	// claimed by the job's tenant.
	RuleRepoNotClaimed = "repository-installation-not-claimed"
)

// PermissionError is a credential refused by the tenant rules. It
// matches ErrNotPermitted and failure.ErrInvalidIntegration with
// errors.Is; hosts that need the rule get it with errors.As. It
// deliberately holds nothing about the installation's owner.
type PermissionError struct {
	Tenant string
	// Rule is one of the Rule constants.
	Rule string
	// InstallationID is the id the job config named
	// (RuleInstallationNotClaimed); Repo the repository
	// (RuleRepoNotClaimed).
	InstallationID int64
	Repo           string
}

// Error names the rule and what the tenant can do, never the owner.
func (e *PermissionError) Error() string {
	who := "this tenant"
	if e.Tenant != "" {
		who = fmt.Sprintf("tenant %q", e.Tenant)
	}
	switch e.Rule {
	case RuleInstallationNotClaimed:
		return fmt.Sprintf("%s: installation %d is not one of %s's installations (%s); install the App through the install URL, or leave installationId out", ErrNotPermitted, e.InstallationID, who, e.Rule)
	case RuleRepoNotClaimed:
		return fmt.Sprintf("%s: the App installation on %s is not %s's (%s); claim it through the install URL, or set a token", ErrNotPermitted, e.Repo, who, e.Rule)
	}
	return fmt.Sprintf("%s (%s)", ErrNotPermitted, e.Rule)
}

// Is reports whether target is ErrNotPermitted or its class.
func (e *PermissionError) Is(target error) bool {
	return target == ErrNotPermitted || target == failure.ErrInvalidIntegration
}

// EnvError reports an environment variable whose value cannot be used;
// LoadAppConfig returns it. Its class is failure.ErrInvalidIntegration.
// Hosts that point at the variable to fix (a setup page) get it with
// errors.As.
type EnvError struct {
	Var string // the variable, e.g. GITHUB_APP_ID
	Err error
}

// Error names the variable and what is wrong with its value.
func (e *EnvError) Error() string { return e.Var + ": " + e.Err.Error() }

// Is matches the class failure.ErrInvalidIntegration: the App's setup is
// wrong, whatever the cause.
func (e *EnvError) Is(target error) bool { return target == failure.ErrInvalidIntegration }

// Unwrap returns the underlying error.
func (e *EnvError) Unwrap() error { return e.Err }

// InstallationError reports an installation that cannot be used because
// of its status. It matches ErrInstallationSuspended or
// ErrInstallationDeleted with errors.Is; hosts that tell the account's
// owner get the account with errors.As.
type InstallationError struct {
	InstallationID int64
	Account        string
	Status         InstallationStatus
}

// Error names the installation and what its owner has to do.
func (e *InstallationError) Error() string {
	who := fmt.Sprintf("installation %d", e.InstallationID)
	if e.Account != "" {
		who += " (" + e.Account + ")"
	}
	switch e.Status {
	case StatusSuspended:
		return fmt.Sprintf("%s: %s; an owner of the account can unsuspend it under Settings > GitHub Apps", ErrInstallationSuspended, who)
	case StatusDeleted:
		return fmt.Sprintf("%s: %s; install the App on the account again", ErrInstallationDeleted, who)
	}
	return fmt.Sprintf("%s has status %q", who, e.Status)
}

// Is matches the sentinel for the installation's status, and the class
// failure.ErrInvalidIntegration.
func (e *InstallationError) Is(target error) bool {
	if target == failure.ErrInvalidIntegration {
		return true
	}
	switch e.Status {
	case StatusSuspended:
		return target == ErrInstallationSuspended
	case StatusDeleted:
		return target == ErrInstallationDeleted
	}
	return false
}

// TokenError reports a failed installation token exchange. It matches
// ErrInstallationToken with errors.Is, and its class (see Is). It is the
// failure of a TokenSource: package github's TokenCache returns it, and
// a host's own TokenSource should too, so that callers classify every
// source's failures alike.
type TokenError struct {
	InstallationID int64
	// StatusCode is GitHub's HTTP status, 0 when GitHub was not reached.
	StatusCode int
	// Status is GitHub's status line, such as "404 Not Found", as in
	// http.Response.Status; StatusCode alone is shown without it.
	Status string
	// Message is GitHub's error message, if it sent one.
	Message string
	// Err is the underlying error (a go-github error, or a transport one).
	Err error
	// RateLimited is set when GitHub refused the exchange for a rate
	// limit: a 403 that is worth retrying later.
	RateLimited bool
}

// Error gives GitHub's answer and a hint at the fix.
func (e *TokenError) Error() string {
	s := fmt.Sprintf("%s for installation %d", ErrInstallationToken, e.InstallationID)
	if e.StatusCode != 0 {
		status := e.Status
		if status == "" {
			status = strconv.Itoa(e.StatusCode)
		}
		s += ": GitHub answered " + status
		if e.Message != "" {
			s += fmt.Sprintf(" (%q)", e.Message)
		}
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if hint := e.hint(); hint != "" {
		s += "; " + hint
	}
	return s
}

func (e *TokenError) hint() string {
	switch {
	case e.StatusCode == statusUnauthorized:
		return "GitHub rejected the App's JWT: check that the App id matches the private key and that this machine's clock is right"
	case e.StatusCode == statusForbidden:
		return "the installation may be suspended, or the App lacks a permission it asked for"
	case e.StatusCode == statusNotFound:
		return "this App has no such installation: it was uninstalled or the installation id is wrong"
	case e.transient():
		return "GitHub could not be reached, failed or rate-limited the request; it is retried"
	}
	return ""
}

// Is reports whether target is ErrInstallationToken, or the error's
// class: failure.ErrTransient when GitHub did not answer, failed (5xx) or
// rate-limited the exchange, failure.ErrInvalidIntegration when it
// refused it (bad key or App id, installation gone).
func (e *TokenError) Is(target error) bool {
	switch target {
	case ErrInstallationToken:
		return true
	case failure.ErrTransient:
		return e.transient()
	case failure.ErrInvalidIntegration:
		return !e.transient()
	}
	return false
}

// transient reports whether the exchange may work when tried again.
func (e *TokenError) transient() bool {
	switch c := e.StatusCode; {
	case c == 0:
		// Not answered (network, timeout) or answered without a token; a
		// key that cannot sign is a setup problem.
		return e.Err != nil && !errors.Is(e.Err, ErrInvalidKey)
	case c >= 500, c == statusTooManyRequests:
		return true
	case c == statusForbidden:
		return e.RateLimited
	}
	return false
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

// HTTP statuses TokenError tells apart; this package does not import
// net/http (it sends no request).
const (
	statusUnauthorized    = 401
	statusForbidden       = 403
	statusNotFound        = 404
	statusTooManyRequests = 429
)
