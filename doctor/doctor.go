// Package doctor checks a GitHub App setup for ghbridge step by step and
// says what is wrong and how to fix it: the App's key and id, its webhook
// (URL, content type, secret, recent deliveries), the events it
// subscribes to, each installation's permissions, and for a repository
// its installation and workflow.
//
// The reference server's "doctor" command prints a Diagnosis as it runs;
// hosts can run the same checks in their own health endpoints:
//
//	rep := doctor.Run(ctx, doctor.Config{App: app, WebhookSecrets: secrets}, nil)
//	if !rep.OK() { ... }
//
// Every check has its own timeout, and a failure to reach GitHub (DNS,
// refused, TLS, timeout) is told apart from GitHub's 401, 403 and 404
// answers (see Explained).
package doctor

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/template"
)

// DefaultTimeout bounds each check when Config.Timeout is zero. Hosts
// show it when they say how long a check may take.
const DefaultTimeout = 5 * time.Second

// Grade is a check's outcome. Hosts that show a Diagnosis their own
// way (a health endpoint, a page) switch on it.
type Grade string

// Grades of a check. Only Fail makes a Diagnosis fail.
const (
	Pass Grade = "ok"
	Warn Grade = "warn"
	Fail Grade = "FAIL"
	Skip Grade = "skip"
)

// Finding is one check's outcome, as Run reports it to its progress
// function and in the Diagnosis.
type Finding struct {
	// Check names the check ("app", "webhook config", ...).
	Check string
	Grade Grade
	// Detail says what was found; Fix what to do about it (empty on Pass).
	Detail, Fix string
	// Err is the error behind a failure, when there is one; *Explained
	// for a GitHub call.
	Err      error
	Duration time.Duration
}

// Diagnosis is the outcome of Run: one Finding per check, in order.
type Diagnosis struct {
	Findings []Finding
}

// OK reports whether no check failed: what a host's health endpoint
// answers.
func (r Diagnosis) OK() bool {
	return !slices.ContainsFunc(r.Findings, func(x Finding) bool { return x.Grade == Fail })
}

// Count returns how many checks had verdict v, for a host's own summary.
func (r Diagnosis) Count(v Grade) int {
	n := 0
	for _, x := range r.Findings {
		if x.Grade == v {
			n++
		}
	}
	return n
}

// Summary is the one line that ends a printed report; hosts that print
// findings with Printer end with it.
func (r Diagnosis) Summary() string {
	verdict := "all checks passed"
	if !r.OK() {
		verdict = "some checks failed: fix them and run the doctor again"
	}
	return fmt.Sprintf("%d ok, %d warn, %d failed, %d skipped: %s",
		r.Count(Pass), r.Count(Warn), r.Count(Fail), r.Count(Skip), verdict)
}

// Target is a repository and workflow the setup should be able to run;
// hosts list the ones they care about in Config.Targets.
type Target struct {
	Owner, Repo string
	// Workflow is the workflow's file name (deploy.yml) or numeric id;
	// empty skips the workflow checks.
	Workflow string
	// Ref is the branch the workflow runs on (default main).
	Ref string
	// InstallationID picks the installation; 0 finds the repository's.
	InstallationID int64
}

// Config says what to check; hosts fill it from their own configuration
// and pass it to Run.
type Config struct {
	// App is the GitHub App (credentials.LoadAppConfig).
	App credentials.AppConfig
	// AppErr, when set, is why App could not be loaded (LoadAppConfig's
	// error, naming the variable); the first check reports it.
	AppErr error
	// WebhookSecrets are the secrets the server verifies deliveries with.
	WebhookSecrets []string
	// WebhookSecretName is what findings call the setting that holds
	// WebhookSecrets, e.g. the environment variable a host reads them from
	// (default "the webhook secret").
	WebhookSecretName string
	// WebhookURL, when set, is the URL GitHub should deliver to.
	WebhookURL string
	// Kinds are the job kinds in use; they decide the events and
	// permissions needed (default workflow_dispatch).
	Kinds []template.Kind
	// ReportChecks adds the checks: write permission that mirroring job
	// status as check runs needs.
	ReportChecks bool
	// Targets are repositories to check end to end.
	Targets []Target
	// Timeout bounds each check (default DefaultTimeout).
	Timeout time.Duration
	// Clients builds the GitHub clients; default a factory for App.BaseURL
	// that does not retry, so that each check fails within its timeout.
	Clients *github.ClientFactory
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run runs the checks in order and returns the diagnosis. progress, when
// not nil, is called with each finding as soon as its check ends, so that
// a person sees the checks as they run (see Printer). Checks that need
// what an earlier one could not establish are reported as Skip.
func Run(ctx context.Context, cfg Config, progress func(Finding)) Diagnosis {
	d := &run{cfg: cfg, progress: progress}
	if d.cfg.Timeout <= 0 {
		d.cfg.Timeout = DefaultTimeout
	}
	if d.cfg.Now == nil {
		d.cfg.Now = time.Now
	}
	if len(d.cfg.Kinds) == 0 {
		d.cfg.Kinds = []template.Kind{template.KindWorkflowDispatch}
	}
	d.all(ctx)
	return d.rep
}

// printFinding writes a finding as the doctor command does.
func printFinding(w io.Writer, r Finding) {
	fmt.Fprintf(w, "  %-4s  %s: %s", r.Grade, r.Check, r.Detail)
	if r.Duration >= time.Second {
		fmt.Fprintf(w, " [%s]", r.Duration.Round(100*time.Millisecond))
	}
	fmt.Fprintln(w)
	if r.Fix != "" {
		fmt.Fprintf(w, "        fix: %s\n", r.Fix)
	}
}

// Printer returns a progress function for Run that prints each finding
// to w, as the reference server's doctor command does. Hosts with a
// command of their own pass it to Run.
func Printer(w io.Writer) func(Finding) { return func(r Finding) { printFinding(w, r) } }

type run struct {
	cfg      Config
	progress func(Finding)
	rep      Diagnosis

	host    string
	clients *github.ClientFactory
	app     *gh.Client // nil when the App's JWT is not accepted
	meta    *gh.App
}

func (d *run) add(r Finding) {
	d.rep.Findings = append(d.rep.Findings, r)
	if d.progress != nil {
		d.progress(r)
	}
}

// check runs fn with the check's own timeout and records its result.
func (d *run) check(ctx context.Context, name string, fn func(ctx context.Context) Finding) Finding {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	start := time.Now()
	r := fn(ctx)
	r.Check, r.Duration = name, time.Since(start)
	if r.Grade == Fail {
		if ex, ok := r.Err.(*Explained); ok && (ex.Cause == CauseTimeout || ctx.Err() != nil) {
			ex.Cause, ex.Text = CauseTimeout, fmt.Sprintf("no answer from %s within %s", d.host, d.cfg.Timeout)
			ex.Meaning = "a firewall or proxy drops the traffic, or the host is down"
			r.Detail = ex.Error()
		}
	}
	d.add(r)
	return r
}

func (d *run) skip(name, why string) { d.add(Finding{Check: name, Grade: Skip, Detail: why}) }

// failed turns a GitHub call's error into a failed result.
func (d *run) failed(err error, authAs, what, fix string) Finding {
	ex := explain(err, d.host, authAs)
	if ex.Network() {
		fix = "make " + d.host + " reachable from this machine (GITHUB_API_URL, DNS, firewall, proxy)"
	}
	detail := ex.Error()
	if what != "" {
		detail = what + ": " + detail
	}
	return Finding{Grade: Fail, Detail: detail, Fix: fix, Err: ex}
}

func (d *run) all(ctx context.Context) {
	if r := d.check(ctx, "app config", d.appConfig); r.Grade == Fail {
		for _, n := range []string{"app", "webhook config", "webhook secret", "deliveries", "events", "permissions"} {
			d.skip(n, "needs a valid App configuration")
		}
		d.skipTargets("needs a valid App configuration")
		return
	}
	if r := d.check(ctx, "app", d.appJWT); r.Grade == Fail {
		why := "needs GitHub to accept the App's JWT"
		if ex, ok := r.Err.(*Explained); ok && ex.Network() {
			why = "needs " + d.host + " to be reachable"
		}
		for _, n := range []string{"webhook config", "webhook secret", "deliveries", "events", "permissions"} {
			d.skip(n, why)
		}
		d.skipTargets(why)
		return
	}
	d.check(ctx, "webhook config", d.webhookConfig)
	d.check(ctx, "webhook secret", d.webhookSecret)
	d.check(ctx, "deliveries", d.deliveries)
	d.check(ctx, "events", d.events)
	d.check(ctx, "permissions", d.permissions)
	for _, t := range d.cfg.Targets {
		d.target(ctx, t)
	}
}

func (d *run) skipTargets(why string) {
	for _, t := range d.cfg.Targets {
		d.skip(t.Owner+"/"+t.Repo, why)
	}
}

func (d *run) appConfig(context.Context) Finding {
	err := d.cfg.AppErr
	if err == nil {
		err = d.cfg.App.Validate()
	}
	if err != nil {
		return Finding{Grade: Fail, Detail: err.Error(), Err: err,
			Fix: "set GITHUB_APP_ID to the numeric App ID and GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE) to the .pem from the App's settings page"}
	}
	d.clients = d.cfg.Clients
	if d.clients == nil {
		var err error
		d.clients, err = github.NewClientFactory(github.WithBaseURL(d.cfg.App.BaseURL), github.WithUserAgent("ghbridge-doctor"),
			github.WithRetryPolicy(github.RetryPolicy{MaxRetries: -1, AttemptTimeout: d.cfg.Timeout}))
		if err != nil {
			return Finding{Grade: Fail, Detail: err.Error(), Err: err, Fix: "set GITHUB_API_URL to https://api.github.com or https://HOST/api/v3"}
		}
	}
	d.host = hostOf(d.clients.BaseURL())
	return Finding{Grade: Pass, Detail: fmt.Sprintf("App id %d, private key parses, API %s", d.cfg.App.AppID, d.clients.BaseURL())}
}

func hostOf(u *url.URL) string { return u.Host }

func (d *run) appJWT(ctx context.Context) Finding {
	app, err := d.clients.AppClient(d.cfg.App)
	if err != nil {
		return Finding{Grade: Fail, Detail: err.Error(), Err: err, Fix: "check the App configuration"}
	}
	meta, _, err := app.Apps.Get(ctx, "")
	if err != nil {
		fix := "the App id must belong to the private key (App settings > General: App ID, and generate a new key there); check this machine's clock"
		if ex := explain(err, d.host, "the App's JWT"); ex.Cause == CauseUnauthorized {
			switch {
			case strings.Contains(ex.Text, "could not be decoded"):
				ex.Meaning = "the private key is not the App's: its signature does not verify (a key of another App, or a revoked key)"
				fix = "download a private key from the App's settings page (General > Private keys) and set GITHUB_APP_PRIVATE_KEY"
			case strings.Contains(ex.Text, "Integration not found"):
				ex.Meaning = fmt.Sprintf("no App has the id %d (or client id %q) on %s", d.cfg.App.AppID, d.cfg.App.ClientID, d.host)
				fix = "set GITHUB_APP_ID to the App ID on the App's settings page (and GITHUB_APP_CLIENT_ID to its client id)"
			case strings.Contains(ex.Text, "'iat'") || strings.Contains(ex.Text, "'exp'"):
				ex.Meaning = "this machine's clock is off by more than a minute"
				fix = "synchronise the clock (NTP)"
			}
			return Finding{Grade: Fail, Detail: ex.Error(), Fix: fix, Err: ex}
		}
		return d.failed(err, "the App's JWT", "", fix)
	}
	if meta.GetID() != 0 && meta.GetID() != d.cfg.App.AppID {
		return Finding{Grade: Fail, Detail: fmt.Sprintf("the key belongs to App %d (%s), but GITHUB_APP_ID is %d", meta.GetID(), meta.GetSlug(), d.cfg.App.AppID),
			Fix: fmt.Sprintf("set GITHUB_APP_ID=%d, or use the key of App %d", meta.GetID(), d.cfg.App.AppID)}
	}
	d.app, d.meta = app, meta
	return Finding{Grade: Pass, Detail: fmt.Sprintf("GitHub accepts the App's JWT: App %q (id %d)", meta.GetSlug(), meta.GetID())}
}

// secretName names the webhook secret's setting in findings.
func (d *run) secretName() string {
	return cmp.Or(d.cfg.WebhookSecretName, "the webhook secret")
}
