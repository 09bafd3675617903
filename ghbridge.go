package ghbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/template"
	"github.com/ghbridge/ghbridge/webhook"
)

// Config is what New wires the pipeline from: the GitHub App and the
// host's stores. Hosts fill it once at startup.
type Config struct {
	// App is the GitHub App (see credentials.LoadAppConfig). Without one
	// (the zero value) jobs authenticate with static tokens only.
	App credentials.AppConfig
	// Installations records the App's installations and which tenant
	// claimed each; installations are usable only for their tenant.
	// Default: a new credentials.MemoryInstallationStore.
	Installations credentials.InstallationStore
	// Secrets resolves "{{ secrets.NAME }}" in each tenant's namespace.
	// Optional.
	Secrets credentials.SecretStore
	// Jobs stores the jobs. Default: a new status.MemoryJobStore.
	Jobs status.JobStore
	// WebhookSecrets verify GitHub's deliveries (several during a
	// rotation). Empty: no webhook handler.
	WebhookSecrets []string
	// Deliveries de-duplicates deliveries across replicas. Default: in
	// memory, for one process.
	Deliveries webhook.DeliveryStore
}

// Option configures New: the logger, the audit sink, and options passed
// on to the parts.
type Option func(*options)

type options struct {
	log      *slog.Logger
	audit    credentials.AuditSink
	clients  []github.Option
	dispatch []dispatch.Option
	tracker  []status.TrackerOption
	resolver []credentials.ResolverOption
	webhook  []webhook.Option
}

// WithLogger sets the logger of every part; nil (the default) discards
// their logs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAudit sends the audit events of token exchanges, credential
// resolutions and dispatches to sink, for hosts that keep an audit trail;
// nil (the default) sends none.
func WithAudit(sink credentials.AuditSink) Option { return func(o *options) { o.audit = sink } }

// WithClientOptions adds options of the GitHub client factory (base URL
// is the App's; retry policy, user agent, API version, transport), for
// hosts that tune what the defaults do not fit.
func WithClientOptions(opts ...github.Option) Option {
	return func(o *options) { o.clients = append(o.clients, opts...) }
}

// WithResolverOptions adds options of the credential resolver, after
// New's own: a host that looks installations up through a wrapper (say
// credentials.UnclaimedBelongTo for a single tenant) passes
// credentials.WithInstallationStore here.
func WithResolverOptions(opts ...credentials.ResolverOption) Option {
	return func(o *options) { o.resolver = append(o.resolver, opts...) }
}

// WithDispatchOptions adds options of the dispatcher (run lookup,
// attempts, clock...), for hosts that tune it.
func WithDispatchOptions(opts ...dispatch.Option) Option {
	return func(o *options) { o.dispatch = append(o.dispatch, opts...) }
}

// WithTrackerOptions adds options of the status tracker (re-run policy,
// clock...), for hosts that tune it.
func WithTrackerOptions(opts ...status.TrackerOption) Option {
	return func(o *options) { o.tracker = append(o.tracker, opts...) }
}

// WithWebhookOptions adds options of the webhook handler (body size,
// handler timeout, tracing...), for hosts that tune it.
func WithWebhookOptions(opts ...webhook.Option) Option {
	return func(o *options) { o.webhook = append(o.webhook, opts...) }
}

// Bridge is the wired pipeline. Its parts are exported for what a host
// does beyond the common path (a host's own routes, reconciliation).
type Bridge struct {
	Clients *github.ClientFactory
	// Tokens is nil without an App.
	Tokens   *github.TokenCache
	Resolver *credentials.Resolver
	// Source resolves a target's credential and builds its client: what
	// the dispatcher, the reporter and the poller use.
	Source     *github.ClientSource
	Renderer   *template.Renderer
	Dispatcher *dispatch.Dispatcher
	Tracker    *status.Tracker
	// Webhooks is the http.Handler for GitHub's deliveries; nil without
	// webhook secrets. Its routes apply runs to jobs and keep the
	// installation store in step with GitHub.
	Webhooks *webhook.Handler
	// Jobs and Installations are the stores in use.
	Jobs          status.JobStore
	Installations credentials.InstallationStore
}

// New wires the pipeline: a client factory for the App's API, a token
// cache and a tenant-aware credential resolver, a dispatcher, a status
// tracker that reports back to GitHub, and, with webhook secrets, the
// webhook handler with the tracker's and the installations' routes.
// Hosts call it once at startup, then use the Bridge or its parts.
func New(cfg Config, opts ...Option) (*Bridge, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{Jobs: cfg.Jobs, Installations: cfg.Installations}
	if b.Jobs == nil {
		b.Jobs = status.NewMemoryJobStore()
	}
	if b.Installations == nil {
		b.Installations = credentials.NewMemoryInstallationStore()
	}
	var err error
	b.Clients, err = github.NewClientFactory(append([]github.Option{
		github.WithBaseURL(cfg.App.BaseURL), github.WithLogger(o.log), github.WithAudit(o.audit),
	}, o.clients...)...)
	if err != nil {
		return nil, err
	}
	ropts := []credentials.ResolverOption{credentials.WithInstallationStore(b.Installations), credentials.WithAudit(o.audit)}
	if cfg.Secrets != nil {
		ropts = append(ropts, credentials.WithSecretStore(cfg.Secrets))
	}
	if !cfg.App.IsZero() {
		if b.Tokens, err = b.Clients.TokenCache(cfg.App); err != nil {
			return nil, fmt.Errorf("the GitHub App: %w", err)
		}
		ropts = append(ropts, credentials.WithTokenSource(b.Tokens))
	}
	b.Resolver = credentials.NewResolver(append(ropts, o.resolver...)...)
	b.Source = github.NewClientSource(b.Resolver, b.Clients)
	b.Renderer = template.NewRenderer()
	b.Dispatcher = dispatch.New(b.Source, append([]dispatch.Option{
		dispatch.WithRenderer(b.Renderer), dispatch.WithLogger(o.log), dispatch.WithAudit(o.audit),
	}, o.dispatch...)...)
	b.Tracker = status.NewTracker(b.Jobs, append([]status.TrackerOption{
		status.WithReporter(status.NewGitHubReporter(b.Source)), status.WithLogger(o.log),
	}, o.tracker...)...)
	if len(cfg.WebhookSecrets) > 0 {
		wopts := []webhook.Option{webhook.WithLogger(o.log)}
		if cfg.Deliveries != nil {
			wopts = append(wopts, webhook.WithDeliveryStore(cfg.Deliveries))
		}
		if b.Webhooks, err = webhook.New(cfg.WebhookSecrets, append(wopts, o.webhook...)...); err != nil {
			return nil, err
		}
		webhook.SyncInstallations(b.Webhooks, b.Installations, b.Tokens)
		b.Tracker.Register(b.Webhooks)
	}
	return b, nil
}

// Accept stores a new job, pending, with its tenant and the repository
// and reporting its rendered config asks for (deliveries from elsewhere
// never move it). A config that does not render is stored as
// invalid_job_agent, and the error says why. Hosts call it when the
// control plane hands over a job, then Dispatch or Step it.
func (b *Bridge) Accept(ctx context.Context, job dispatch.Request) (status.Job, error) {
	j, rerr := JobRecord(ctx, b.Renderer, job)
	if err := b.Jobs.CreateJob(ctx, j); err != nil {
		return j, err
	}
	if rerr != nil {
		if _, err := b.Tracker.Dispatched(ctx, job.ID, status.Receipt{}, rerr); err != nil {
			return j, errors.Join(rerr, err)
		}
		return j, rerr
	}
	return j, nil
}

// JobRecord renders a job's agent config with r and returns the record to
// store for it: pending, with its tenant and the repository and reporting
// the config asks for. A config that does not render still gives the
// record, with an error matching dispatch.ErrInvalidAgentConfig for
// status.Tracker.Dispatched to record. Accept calls it; hosts that store
// jobs themselves (the reference server's POST /api/jobs) call it too.
func JobRecord(ctx context.Context, r *template.Renderer, job dispatch.Request) (status.Job, error) {
	if job.Context.JobID == "" {
		job.Context.JobID = job.ID
	}
	j := status.Job{ID: job.ID, Status: status.Pending}
	cfg, err := r.Render(ctx, job.Agent, job.Context)
	if err == nil {
		j = status.NewJob(job.ID, cfg)
	} else {
		err = fmt.Errorf("%w: %w", dispatch.ErrInvalidAgentConfig, err)
	}
	j.Tenant = job.Tenant
	return j, err
}

// Dispatch sends an accepted job to GitHub and records the outcome on
// the job: in_progress with its run, or the status its failure means. It blocks until GitHub
// answered; a host with a queue calls Step instead.
func (b *Bridge) Dispatch(ctx context.Context, job dispatch.Request) (dispatch.Receipt, error) {
	res, err := b.Dispatcher.Dispatch(ctx, job)
	return res, b.record(ctx, job.ID, res, err)
}

// Step runs one resumable step of a job's dispatch (see
// dispatch.Dispatcher.Step) and records its outcome on the job. It
// returns the State to keep and, for a transient failure, when to try
// again (failure.RetryAfter of the error, or the zero time for the host's
// backoff).
func (b *Bridge) Step(ctx context.Context, job dispatch.Request, st dispatch.State, save dispatch.SaveFunc) (dispatch.State, error) {
	res, st, err := b.Dispatcher.Step(ctx, job, st, save)
	return st, b.record(ctx, job.ID, res, err)
}

// record puts a dispatch's outcome on its job and returns the dispatch's
// error, joined with the tracker's if recording failed.
func (b *Bridge) record(ctx context.Context, jobID string, res dispatch.Receipt, err error) error {
	if _, rerr := b.Tracker.Dispatched(ctx, jobID, Dispatched(res), err); rerr != nil {
		return errors.Join(err, fmt.Errorf("recording the dispatch of %s: %w", jobID, rerr))
	}
	return err
}

// Poller returns a poller of jobs quiet for longer than quietAfter, over
// a job store that lists them; source rebuilds a job's dispatch.Request
// (agent config and context), so that runs whose id is unknown are found
// by job id. Hosts call its Poll periodically, to catch the runs whose
// deliveries were lost.
func (b *Bridge) Poller(lister status.StaleLister, quietAfter time.Duration, source func(context.Context, status.Job) (dispatch.Request, error), opts ...status.PollerOption) *status.Poller {
	opts = append([]status.PollerOption{status.WithQuietAfter(quietAfter)}, opts...)
	if source != nil {
		opts = append(opts, status.WithRunFinder(NewRunFinder(b.Dispatcher, source)))
	}
	return status.NewPoller(b.Tracker, lister, b.Source, opts...)
}

// Dispatched is what the tracker records of a dispatch's result. Dispatch
// and Step use it; hosts that call dispatch.Dispatcher and
// status.Tracker.Dispatched themselves (a queue of their own) use it too.
func Dispatched(res dispatch.Receipt) status.Receipt {
	return status.Receipt{RunID: res.RunID, RunURL: res.HTMLURL, DeploymentID: res.DeploymentID,
		PullRequestNumber: res.PullRequestNumber, InstallationID: res.InstallationID}
}

// NewRunFinder finds the runs of a poller's jobs with d; source rebuilds a
// job's dispatch.Request. Poller uses it; hosts that build their
// status.Poller themselves pass it with status.WithRunFinder.
func NewRunFinder(d *dispatch.Dispatcher, source func(context.Context, status.Job) (dispatch.Request, error)) status.RunFinder {
	return func(ctx context.Context, j status.Job, since time.Time) (*gh.WorkflowRun, error) {
		dj, err := source(ctx, j)
		if err != nil {
			return nil, err
		}
		return d.FindRun(ctx, dj, since)
	}
}
