// Package dispatch turns a job into a GitHub run: a workflow_dispatch (the
// usual case), a repository_dispatch, a GitHub deployment or a pull
// request, and finds the run it started.
//
// Dispatcher.Dispatch renders the job's agent config (package template),
// resolves the credential for its repository (package credentials), sends
// the request with a client from package github, and returns a Receipt
// with the run id and URLs, the credential type and installation used.
//
// # Finding the run
//
// A workflow_dispatch is sent with return_run_details, and GitHub answers
// with the run's id. GitHub Enterprise Server 3.20 and older reject that
// field; the Dispatcher remembers this per API base URL and falls back to
// listing the workflow's runs (event workflow_dispatch, the ref's branch,
// created since the dispatch less a clock skew margin) and matching the job
// id in each run's display title, then its name. For that fallback the
// workflow must put the job id in its run-name:
//
//	on:
//	  workflow_dispatch:
//	    inputs:
//	      job_id:
//	        description: ghbridge job id
//	        required: true
//	run-name: Deploy ${{ inputs.job_id }}
//
// repository_dispatch runs are found the same way, from
// ${{ github.event.client_payload.job_id }} in the run-name.
//
// # Never twice
//
// A dispatch is not idempotent on GitHub's side, so it is never retried
// blindly. When an attempt fails in a way that leaves open whether GitHub
// acted on it (a timeout, a reset connection, a 5xx answer), the
// Dispatcher looks for the job's run before anything else: found, the
// dispatch succeeded; provably absent, it tries again; undecidable, it
// stops with ErrDispatchUncertain rather than risk a second run. Every
// attempt is recorded as one audit event.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
	ghclient "github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/internal/otelx"
	"github.com/ghbridge/ghbridge/template"
)

// Request is a job to run on GitHub: what a host passes to Dispatch and
// Step for each job it sends.
type Request struct {
	// ID is the job's id; it travels to GitHub as the job_id input (or
	// payload key) and identifies the run later, so it must be unique
	// across the host's tenants (a multi-tenant host qualifies its
	// tenants' ids, e.g. "tenant.id").
	ID string
	// Tenant owns the job: credentials are resolved for this tenant only
	// (see credentials.Resolver). Single-tenant hosts leave it empty.
	Tenant string
	// Agent is the job agent config as JSON; string values may be
	// templates (see package template).
	Agent json.RawMessage
	// Context is what the templates are rendered against. Its JobID
	// defaults to ID.
	Context template.Context
}

// Receipt is what a dispatch started on GitHub (run, deployment or pull
// request) and with which credential; hosts record it with the job
// (ghbridge.Dispatched turns it into a status.Receipt).
type Receipt struct {
	Kind        template.Kind
	Owner, Repo string
	Ref         string
	// CredentialType and InstallationID say how the request was made.
	CredentialType credentials.Type
	InstallationID int64
	// RunID, RunURL (API) and HTMLURL (web) identify the run, when known.
	RunID   int64
	RunURL  string
	HTMLURL string
	// DeploymentID is set for deployments.
	DeploymentID int64
	// PullRequestNumber and PullRequestURL are set for pull requests.
	PullRequestNumber int
	PullRequestURL    string
	// Attempts counts the requests sent to start the job.
	Attempts int
	// Config is the rendered agent config.
	Config template.AgentConfig
}

// ClientSource gives the GitHub client for a job's target and the
// credential it authenticates with; *github.ClientSource is the
// implementation hosts pass to New. A resolution error is classified with package failure
// (see credentials.Resolver), and nothing is sent to GitHub after one.
// When it also has an APIVersion() string method, as *github.ClientSource
// does, a version of 2026-03-10 or later makes every workflow dispatch
// expect the run in GitHub's answer.
type ClientSource interface {
	For(ctx context.Context, t credentials.Target) (*gh.Client, credentials.Credential, error)
}

// RunLookup bounds the search for a dispatched run (see WithRunLookup).
// Hosts rarely need it: the defaults suit github.com; a host whose GitHub
// lists new runs late (GitHub Enterprise Server under load) raises Settle.
type RunLookup struct {
	// Interval between two listings (default 2 s).
	Interval time.Duration
	// Timeout for finding the run of a dispatch that GitHub accepted
	// without returning its id (default 60 s).
	Timeout time.Duration
	// Settle is how long runs are looked for after an ambiguous failure
	// before concluding that none was started and sending again (default
	// 2 min): GitHub lists a new run some time after its dispatch, usually
	// seconds, under load minutes. It must exceed that delay, or a job
	// may run twice.
	Settle time.Duration
	// ClockSkew is subtracted from the dispatch time in the created
	// filter, for a GitHub clock behind ours (default 2 min).
	ClockSkew time.Duration
}

func (l RunLookup) withDefaults() RunLookup {
	if l.Interval <= 0 {
		l.Interval = 2 * time.Second
	}
	if l.Timeout <= 0 {
		l.Timeout = time.Minute
	}
	if l.Settle <= 0 {
		l.Settle = 2 * time.Minute
	}
	if l.ClockSkew <= 0 {
		l.ClockSkew = 2 * time.Minute
	}
	return l
}

// Dispatcher starts jobs on GitHub. Hosts make one with New and share it.
// It is safe for concurrent use.
type Dispatcher struct {
	clients     ClientSource
	renderer    *template.Renderer
	audit       credentials.AuditSink
	log         *slog.Logger
	now         func() time.Time
	lookup      RunLookup
	maxAttempts int
	contexts    []string
	autoMerge   bool
	// alwaysRunDetails: the clients request API version 2026-03-10 or
	// later, whose dispatch answers the run and takes no
	// return_run_details.
	alwaysRunDetails bool

	// noRunDetails remembers API base URLs (GitHub Enterprise Server
	// 3.20 and older) that reject return_run_details.
	noRunDetails sync.Map
	tracer       trace.Tracer
}

// WithTracerProvider traces dispatches (render, credential resolution,
// the dispatch step) with tp; default the global provider. Hosts that
// export traces set it.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(d *Dispatcher) { d.tracer = otelx.Tracer(tp) }
}

// Option configures a Dispatcher; hosts pass options to New.
type Option func(*Dispatcher)

// WithRenderer sets the template renderer (default: a new one). Hosts
// pass the Renderer they use elsewhere, so that its limits and cache are
// shared.
func WithRenderer(r *template.Renderer) Option { return func(d *Dispatcher) { d.renderer = r } }

// WithAudit sends one audit event per dispatch attempt. Hosts that keep
// an audit trail set it.
func WithAudit(sink credentials.AuditSink) Option { return func(d *Dispatcher) { d.audit = sink } }

// WithLogger sets the logger of failed attempts (default: none).
func WithLogger(l *slog.Logger) Option {
	return func(d *Dispatcher) {
		if l != nil {
			d.log = l
		}
	}
}

// WithRunLookup bounds the search for runs; zero fields take the
// defaults of RunLookup.
func WithRunLookup(l RunLookup) Option { return func(d *Dispatcher) { d.lookup = l.withDefaults() } }

// WithMaxAttempts bounds the requests sent for one dispatch, retries
// after a provably failed attempt included (default 3). Hosts rarely
// need it.
func WithMaxAttempts(n int) Option {
	return func(d *Dispatcher) {
		if n > 0 {
			d.maxAttempts = n
		}
	}
}

// WithRequiredContexts sets the commit status contexts that must pass
// before a deployment whose config names none is created (default none,
// so a deployment is not blocked by unrelated checks; nil means all
// contexts, GitHub's default). Hosts whose deployments must wait for
// their CI set it.
func WithRequiredContexts(contexts []string) Option {
	return func(d *Dispatcher) { d.contexts = contexts }
}

// WithAutoMerge sets whether GitHub may merge the default branch into the
// ref of a deployment whose config does not say (default false). Hosts
// rarely need it.
func WithAutoMerge(merge bool) Option {
	return func(d *Dispatcher) { d.autoMerge = merge }
}

// WithClock sets the clock that dates dispatches and measures settle
// windows (default time.Now; nil keeps it). Hosts that drive Step with a
// clock of their own (tests, a simulated queue) set it. Step never waits:
// it returns State.RetryAt for the host's queue to schedule. Only the
// blocking Dispatch waits between run lookups, RunLookup.Interval of real
// time, a number of times fixed by RunLookup.Timeout and Settle, so a
// clock held still cannot make it wait forever.
func WithClock(now func() time.Time) Option {
	return func(d *Dispatcher) {
		if now != nil {
			d.now = now
		}
	}
}

// New returns a Dispatcher that gets its clients from clients (a
// *github.ClientSource).
func New(clients ClientSource, opts ...Option) *Dispatcher {
	d := &Dispatcher{
		clients:     clients,
		log:         slog.New(slog.DiscardHandler),
		now:         time.Now,
		lookup:      RunLookup{}.withDefaults(),
		maxAttempts: 3,
		contexts:    []string{},
	}
	for _, o := range opts {
		o(d)
	}
	if d.renderer == nil {
		d.renderer = template.NewRenderer()
	}
	if d.tracer == nil {
		d.tracer = otelx.Tracer(nil)
	}
	if v, ok := clients.(interface{ APIVersion() string }); ok {
		d.alwaysRunDetails = v.APIVersion() >= ghclient.APIVersion20260310
	}
	return d
}

// Dispatch starts the job on GitHub. On success the Receipt identifies the
// run (or deployment, or pull request). A Receipt is also returned with
// ErrRunNotFound: the job was started, only its run is unknown yet.
// Hosts that dispatch within one call (a request handler, a test) use
// it; hosts whose queue must survive a crash between attempts use Step.
func (d *Dispatcher) Dispatch(ctx context.Context, job Request) (Receipt, error) {
	a, err := d.prepare(ctx, job)
	if err != nil {
		return Receipt{}, err
	}
	return a.run(ctx)
}

// prepare renders the job's config and resolves its credential.
func (d *Dispatcher) prepare(ctx context.Context, job Request) (*attempt, error) {
	if strings.TrimSpace(job.ID) == "" {
		return nil, fmt.Errorf("%w: no job id", ErrInvalidJob)
	}
	if job.Context.JobID == "" {
		job.Context.JobID = job.ID
	}
	rctx, span := d.tracer.Start(ctx, "ghbridge.render", trace.WithAttributes(otelx.JobID.String(job.ID), otelx.Tenant.String(job.Tenant)))
	cfg, err := d.renderer.Render(rctx, job.Agent, job.Context)
	span.SetAttributes(otelx.Kind.String(string(cfg.Type)))
	otelx.End(span, err)
	if err != nil && ctx.Err() != nil {
		// The caller gave up, not the config: nothing was sent.
		return nil, &Error{Kind: ErrUnavailable, Op: "render", Err: ctx.Err(), Hint: "the context ended while rendering the config"}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAgentConfig, err)
	}
	cred, client, err := d.credential(ctx, job, cfg)
	if err != nil {
		return nil, err
	}
	return &attempt{d: d, client: client, cfg: cfg, cred: cred, jobID: job.ID, max: d.maxAttempts}, nil
}

// run sends the job's request(s) and fills the Receipt.
func (a *attempt) run(ctx context.Context) (Receipt, error) {
	cfg, cred := a.cfg, a.cred
	var err error
	res := Receipt{
		Kind: cfg.Type, Owner: cfg.Owner, Repo: cfg.Repo, Ref: cfg.Ref,
		CredentialType: cred.Type, InstallationID: cred.InstallationID, Config: cfg,
	}
	switch cfg.Type {
	case template.KindRepositoryDispatch:
		err = a.repositoryDispatch(ctx, &res)
	case template.KindDeployment:
		err = a.deployment(ctx, &res)
	case template.KindPullRequest:
		err = a.pullRequest(ctx, &res)
	default:
		err = a.workflowDispatch(ctx, &res)
	}
	res.Attempts = a.sent
	if err != nil && !errors.Is(err, ErrRunNotFound) {
		return Receipt{Kind: res.Kind, Owner: res.Owner, Repo: res.Repo, CredentialType: res.CredentialType,
			InstallationID: res.InstallationID, Attempts: res.Attempts, Config: cfg}, err
	}
	return res, err
}

// credential resolves the job's credential for its tenant and builds the
// client. Nothing is sent to GitHub when resolution fails.
func (d *Dispatcher) credential(ctx context.Context, job Request, cfg template.AgentConfig) (credentials.Credential, *gh.Client, error) {
	rctx, span := d.tracer.Start(ctx, "ghbridge.resolve_credential", trace.WithAttributes(
		otelx.JobID.String(job.ID), otelx.Tenant.String(job.Tenant), otelx.Repository.String(cfg.Owner+"/"+cfg.Repo)))
	client, cred, err := d.clients.For(rctx, credentials.Target{
		Tenant: job.Tenant, Owner: cfg.Owner, Repo: cfg.Repo, InstallationID: cfg.InstallationID,
		StaticToken: credentials.NewSecret(cfg.Token), JobID: job.ID,
	})
	// The credential's type and installation, never its token.
	span.SetAttributes(otelx.Credential.String(string(cred.Type)), otelx.InstallationID.Int64(cred.InstallationID))
	otelx.End(span, err)
	switch failure.Class(err) {
	case nil:
	case failure.ErrInvalidJobAgent:
		return cred, nil, fmt.Errorf("%w: %w", ErrInvalidAgentConfig, err)
	case failure.ErrTransient:
		// The host's store failed, say: nothing was sent; try again.
		return cred, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return cred, nil, fmt.Errorf("%w: %w", ErrInvalidIntegration, err)
	}
	return cred, client, nil
}

// attempt carries one dispatch through its requests.
type attempt struct {
	d      *Dispatcher
	client *gh.Client
	cfg    template.AgentConfig
	cred   credentials.Credential
	jobID  string
	sent   int
	// max bounds the requests sent; step makes every ambiguous failure
	// and every run not listed yet the next Step's business.
	max  int
	step bool
	// unsure is set when the last failed request may have reached GitHub.
	unsure bool
}

// runTimeout is how long a dispatch GitHub accepted waits for its run to
// be listed: in a Step, one look.
func (a *attempt) runTimeout() time.Duration {
	if a.step {
		return 0
	}
	return a.d.lookup.Timeout
}

// record sends the audit event for one request.
func (a *attempt) record(ctx context.Context, err error) {
	if a.d.audit == nil {
		return
	}
	ev := credentials.AuditEvent{
		Time: a.d.now(), Name: "dispatch." + string(a.cfg.Type), CredentialType: a.cred.Type,
		Repo: a.cfg.Repository(), InstallationID: a.cred.InstallationID, JobID: a.jobID,
		Attempt: a.sent, Outcome: credentials.OutcomeSuccess,
	}
	if err != nil {
		ev.Outcome, ev.Error = credentials.OutcomeFailure, err.Error()
	}
	a.d.audit.Audit(ctx, ev)
}

// send performs one request that may start a run, counting and auditing it.
func (a *attempt) send(ctx context.Context, do func() error) error {
	a.sent++
	err := do()
	a.record(ctx, err)
	if err != nil {
		a.d.log.WarnContext(ctx, "dispatch attempt failed", "job_id", a.jobID, "repo", a.cfg.Repository(),
			"kind", a.cfg.Type, "attempt", a.sent, "error", err)
	}
	return err
}

// outcome classifies a failed request.
type outcome int

const (
	definite  outcome = iota // GitHub refused: nothing happened
	ambiguous                // may or may not have happened
)

// classify turns a request error into an *Error and says whether GitHub
// may have acted on the request.
func (a *attempt) classify(ctx context.Context, op, target string, err error) (*Error, outcome) {
	e := &Error{Op: op, Repo: a.cfg.Repository(), Target: target, Err: err}
	var er *gh.ErrorResponse
	var rl *gh.RateLimitError
	var arl *gh.AbuseRateLimitError
	switch {
	case errors.As(err, &rl):
		e.Kind, e.StatusCode, e.Message, e.RetryAt = ErrRateLimited, rl.Response.StatusCode, rl.Message, rl.Rate.Reset.Time
		e.Hint = "GitHub's primary rate limit is used up for this credential"
		return e, definite
	case errors.As(err, &arl):
		e.Kind, e.StatusCode, e.Message = ErrRateLimited, arl.Response.StatusCode, arl.Message
		e.RetryAt = a.d.now().Add(time.Minute)
		if arl.RetryAfter != nil {
			e.RetryAt = a.d.now().Add(*arl.RetryAfter)
		}
		e.Hint = "GitHub's secondary rate limit: slow down"
		return e, definite
	case errors.Is(err, credentials.ErrInstallationToken), errors.Is(err, credentials.ErrNotConfigured):
		// The request never left: its token could not be had.
		e.Kind, e.Hint = ErrInvalidIntegration, "the credential could not be used"
		if failure.IsTransient(err) {
			e.Kind, e.Hint = ErrUnavailable, "the installation token could not be had yet"
		}
		return e, definite
	case errors.As(err, &er) && er.Response != nil:
		e.StatusCode, e.Message = er.Response.StatusCode, er.Message
		return a.classifyStatus(ctx, e)
	case ctx.Err() != nil:
		e.Kind, e.Hint = ErrDispatchUncertain, "the caller's context ended while the request was in flight"
		return e, ambiguous
	}
	e.Kind = ErrUnavailable
	return e, ambiguous
}

func (a *attempt) classifyStatus(ctx context.Context, e *Error) (*Error, outcome) {
	msg := strings.ToLower(e.Message)
	switch code := e.StatusCode; {
	case code >= 500:
		e.Kind = ErrUnavailable
		return e, ambiguous
	case code == http.StatusTooManyRequests:
		e.Kind, e.RetryAt = ErrRateLimited, a.d.now().Add(time.Minute)
	case code == http.StatusUnauthorized:
		e.Kind, e.Hint = ErrInvalidIntegration, "GitHub rejected the credential (revoked or expired token)"
	case code == http.StatusForbidden && strings.Contains(msg, "suspended"):
		e.Kind, e.Hint = ErrInvalidIntegration, "the installation is suspended"
	case code == http.StatusForbidden:
		e.Kind = ErrMissingPermission
		switch a.cfg.Type {
		case template.KindWorkflowDispatch:
			e.Hint = "the GitHub App needs the \"Actions: Read and write\" permission; grant it in the App settings and have the installation owner accept it"
		case template.KindDeployment:
			e.Hint = "the GitHub App needs the \"Deployments: Read and write\" permission"
		default:
			e.Hint = "the GitHub App needs the \"Contents: Read and write\" permission"
		}
	case code == http.StatusNotFound:
		e.Kind = a.notFoundKind(ctx, e)
	case code == http.StatusConflict && a.cfg.Type == template.KindDeployment:
		e.Kind, e.Hint = ErrRejected, "commit status checks of the ref failed; fix them or set requiredContexts"
	default:
		e.Hint, e.Kind = refusal(msg, a)
	}
	return e, definite
}

// refusals classify GitHub's 422 answers to a dispatch. GitHub gives them
// a message and no code (no errors[] entry), so the message is what there
// is to match; this table is the one place the package reads one.
var refusals = []struct {
	phrases []string
	kind    error
	hint    func(a *attempt) string
}{
	{[]string{"workflow_dispatch' trigger"}, ErrNoDispatchTrigger, func(*attempt) string {
		return "add \"on: workflow_dispatch\" with a job_id input to the workflow file on the ref being run"
	}},
	{[]string{"disabled workflow"}, ErrWorkflowDisabled, func(*attempt) string { return "enable the workflow in the repository's Actions tab" }},
	{[]string{"no ref found", "no commit found for the ref"}, ErrRefNotFound, func(a *attempt) string {
		return fmt.Sprintf("the ref %q does not exist in %s; push it or fix ref in the agent config", a.cfg.Ref, a.cfg.Repository())
	}},
	{[]string{"unexpected inputs", "required input", "inputs"}, ErrInvalidInputs, func(*attempt) string {
		return "declare every input, job_id included, under on.workflow_dispatch.inputs"
	}},
}

// refusal returns the hint and kind of a refusal whose lower-cased
// message is msg; ErrRejected for one the table does not know.
func refusal(msg string, a *attempt) (hint string, kind error) {
	for _, r := range refusals {
		for _, p := range r.phrases {
			if strings.Contains(msg, p) {
				return r.hint(a), r.kind
			}
		}
	}
	return "", ErrRejected
}

// notFoundKind tells a missing workflow from a repository the credential
// cannot see: GitHub answers 404 to both.
func (a *attempt) notFoundKind(ctx context.Context, e *Error) error {
	repoMissing := a.cfg.Type != template.KindWorkflowDispatch // other endpoints exist for every repository
	if !repoMissing {
		_, _, err := a.client.Repositories.Get(ctx, a.cfg.Owner, a.cfg.Repo)
		var er *gh.ErrorResponse
		repoMissing = errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
	}
	if repoMissing {
		if a.cred.Type == credentials.TypeInstallation {
			e.Hint = fmt.Sprintf("installation %d cannot see %s: add the repository to the App's installation (or check owner and repo)", a.cred.InstallationID, a.cfg.Repository())
		} else {
			e.Hint = fmt.Sprintf("the token cannot see %s: check owner and repo, and the token's access", a.cfg.Repository())
		}
		return ErrRepoNotAccessible
	}
	e.Hint = "check workflowId: a numeric workflow id, or the file name under .github/workflows (e.g. deploy.yml)"
	return ErrWorkflowNotFound
}

// withJobID returns a copy of a config's inputs or payload with the job id
// under template.JobIDKey, by which the run is matched to the job; the
// config itself is left as rendered.
func withJobID[V any](m map[string]V, id V) map[string]V {
	out := make(map[string]V, len(m)+1)
	maps.Copy(out, m)
	out[template.JobIDKey] = id
	return out
}
