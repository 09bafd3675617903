// Package app is the reference server: ghbridge's packages wired together
// behind an HTTP API, with SQL storage (embedded SQLite by default,
// PostgreSQL for several replicas), an install flow, Prometheus metrics
// and a reconciliation loop. cmd main.go in the parent directory runs it;
// the demo and the tests run it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/control"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/template"
	"github.com/ghbridge/ghbridge/webhook"
)

// Server is the reference server.
type Server struct {
	cfg        Config
	log        *slog.Logger
	db         *sqlstore.DB
	clients    *github.ClientFactory
	tokens     *github.TokenCache // nil without an App
	source     *github.ClientSource
	renderer   *template.Renderer
	dispatcher *dispatch.Dispatcher
	tracker    *status.Tracker
	poller     *status.Poller
	control    *control.Controller
	hooks      *webhook.Handler // nil without a webhook secret
	metrics    *metrics
	handler    http.Handler
	holder     string
	now        func() time.Time
	queue      queue
	dopts      []dispatch.Option
	ops        *opsMetrics
	tp         trace.TracerProvider
	// backoff is the wait before try n of a dispatch (default the
	// function backoff); queuePoll how often the SQLite queue looks for
	// due jobs (default a second). Tests shorten both (export_test.go).
	backoff   func(n int) time.Duration
	queuePoll time.Duration
	// clientOpts are added to the GitHub client factory's options: tests
	// shorten its retry waits (export_test.go).
	clientOpts []github.Option
	// onTransition, when set, is called after every stored status
	// change: tests wait on it rather than poll (export_test.go).
	onTransition func(status.Job, status.Transition)
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: JSON to stderr at the configured
// level).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithTracerProvider sets where the server's spans go (default the
// global provider, which SetupTracing sets from OTEL_* variables).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(s *Server) { s.tp = tp } }

// WithClock sets the server's clock (default time.Now), for tests: the
// status tracker and the poller of quiet jobs use it.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithDispatchOptions adds options to the dispatcher (run lookup bounds,
// deployment defaults).
func WithDispatchOptions(opts ...dispatch.Option) Option {
	return func(s *Server) { s.dopts = append(s.dopts, opts...) }
}

// New opens the database and wires the server. It fails only on what the
// server cannot run without (the database, malformed settings); missing
// GitHub settings turn the GitHub routes off instead.
func New(ctx context.Context, cfg Config, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg, now: time.Now, backoff: backoff, queuePoll: time.Second}
	host, _ := os.Hostname()
	s.holder = host + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, sqlstore.WithMaxConns(cfg.DatabaseMaxConns))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
	}
	s.db = db
	s.metrics = newMetrics()
	s.ops = newOpsMetrics(s.metrics.reg, db.Jobs())
	if s.tp == nil {
		s.tp = otel.GetTracerProvider()
	}
	audit := credentials.MultiAuditSink(db.Audit(func(err error) { s.log.Error("writing an audit event failed", "error", err) }), s.metrics.audit())
	if err := s.wire(ctx, db, audit); err != nil {
		db.Close()
		return nil, err
	}
	if db.Dialect() == sqlstore.Postgres {
		if s.queue, err = newRiverQueue(ctx, s, cfg.DatabaseURL); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: the dispatch queue: %w", EnvDatabaseURL, err)
		}
	} else {
		s.queue = newTableQueue(s)
	}
	s.handler = s.routes()
	return s, nil
}

// wire builds the pipeline with ghbridge.New, adding the server's
// observers, tracing and settings to each part, then the parts ghbridge
// leaves to hosts: the poller, job control and stale delivery claims.
func (s *Server) wire(ctx context.Context, db *sqlstore.DB, audit credentials.AuditSink) error {
	cfg := s.cfg
	app := cfg.App
	if s.cfg.AppErr == nil {
		s.cfg.AppErr = app.Validate()
	}
	if s.cfg.AppErr != nil {
		s.log.Warn("GitHub App not configured: installation credentials and the install routes are off", "reason", s.cfg.AppErr.Error())
		app = credentials.AppConfig{BaseURL: cfg.App.BaseURL}
	}
	b, err := ghbridge.New(ghbridge.Config{
		App:            app,
		Installations:  db.Installations(),
		Secrets:        credentials.EnvSecretStore{Prefix: cfg.SecretPrefix, Lookup: cfg.SecretLookup, SharedWith: s.sharesSecrets},
		Jobs:           db.Jobs(),
		WebhookSecrets: cfg.WebhookSecrets,
		Deliveries:     db.Deliveries(),
	},
		ghbridge.WithLogger(s.log), ghbridge.WithAudit(audit),
		ghbridge.WithClientOptions(append([]github.Option{github.WithUserAgent("ghbridge-server"), github.WithRetryObserver(s.ops.observeRetry),
			github.WithRateLimitObserver(s.ops.observeRateLimit), github.WithTracerProvider(s.tp)}, s.clientOpts...)...),
		ghbridge.WithResolverOptions(credentials.WithInstallationStore(s.installationLookup(db.Installations()))),
		ghbridge.WithDispatchOptions(append([]dispatch.Option{dispatch.WithTracerProvider(s.tp),
			dispatch.WithRunLookup(dispatch.RunLookup{Settle: cfg.DispatchSettle})}, s.dopts...)...),
		ghbridge.WithTrackerOptions(status.WithClock(s.now), status.WithTransitionHook(s.observeTransition),
			status.WithTracerProvider(s.tp), status.WithSpanLink(s.jobSpan)),
		ghbridge.WithWebhookOptions(webhook.WithHolder(webhook.NewHolder(cfg.Instance)),
			webhook.WithObserver(s.metrics.observeDelivery), webhook.WithTracerProvider(s.tp)))
	if err != nil {
		return err
	}
	s.clients, s.tokens, s.source, s.renderer = b.Clients, b.Tokens, b.Source, b.Renderer
	s.dispatcher, s.tracker, s.hooks = b.Dispatcher, b.Tracker, b.Webhooks
	s.poller = b.Poller(db.Jobs(), cfg.QuietAfter, s.dispatchJob, status.WithPollLimit(100))
	s.control = control.New(s.tracker, s.source,
		control.WithForceCancelAfter(cfg.ForceCancelAfter), control.WithLogger(s.log), control.WithAppID(cfg.App.AppID), control.WithClock(s.now),
		control.WithRedispatch(s.redispatch), control.WithReviewer(s.reviewerClient))
	if s.hooks == nil {
		s.log.Warn("webhook route off: " + EnvWebhookSecret + " is not set")
		return nil
	}
	// Deliveries this instance was processing when it died are processed
	// when redelivered, not answered as duplicates.
	if _, err := s.hooks.ReleaseStaleClaims(ctx); err != nil {
		s.log.Warn("delivery claims of an earlier run stay until their lease ends", "error", err)
	}
	s.control.Register(s.hooks)
	return nil
}

// Start runs the server's background work until ctx ends: the dispatch
// queue and the reconciliation loop. stop ends it and waits. Serve calls
// it; a host that serves Handler itself calls it too.
func (s *Server) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.sweepLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.reconcileLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := s.queue.Run(ctx); err != nil {
			s.log.Error("the dispatch queue stopped", "error", err)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// DB returns the server's database, for tools and tests.
func (s *Server) DB() *sqlstore.DB { return s.db }

// Close releases the database.
func (s *Server) Close() error { return s.db.Close() }

// Run serves on the configured address until ctx ends, then shuts down
// gracefully: in-flight requests finish (within 30 s), the
// reconciliation loop stops, the database closes.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvAddr, err)
	}
	return s.Serve(ctx, ln)
}

// ServeLoopback serves on a free 127.0.0.1 port, for demos, load tests
// and tests, and returns the server's base URL. stop shuts it down as
// Serve does (closing the database) and returns Serve's error.
func (s *Server) ServeLoopback(ctx context.Context) (baseURL string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, s.Close())
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() error { cancel(); return <-served }, nil
}

// Serve is Run on a listener of the caller's.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      3 * time.Minute, // a dispatch may search for its run
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	stopBackground := s.Start(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("ghbridge server listening", "addr", ln.Addr().String(), "database", string(s.db.Dialect()),
		"github_app", s.cfg.AppErr == nil, "webhooks", s.hooks != nil)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		s.log.Info("shutting down: finishing in-flight requests")
		shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		serveErr = srv.Shutdown(shutCtx)
		cancel()
	}
	stopBackground()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, s.Close())
}

// observeTransition counts a stored status change, and passes it on to
// onTransition.
func (s *Server) observeTransition(j status.Job, t status.Transition) {
	s.metrics.observeTransition(j, t)
	if s.onTransition != nil {
		s.onTransition(j, t)
	}
}

// appClient returns a client authenticated as the App.
func (s *Server) appClient() (*gh.Client, error) {
	if s.cfg.AppErr != nil {
		return nil, s.cfg.AppErr
	}
	return s.clients.AppClient(s.cfg.App)
}

// installationLookup is what the resolver sees of the installations: on
// a single-tenant server the installations nobody claimed are the only
// tenant's, so that an installation arriving by webhook works at once.
func (s *Server) installationLookup(l credentials.InstallationLookup) credentials.InstallationLookup {
	if only, ok := s.cfg.SingleTenant(); ok {
		return credentials.UnclaimedBelongTo(l, only)
	}
	return l
}

// sharesSecrets lets the only tenant of a single-tenant server read the
// unscoped GHBRIDGE_SECRET_NAME variables; with several tenants each
// reads its own GHBRIDGE_SECRET_TENANT__NAME only.
func (s *Server) sharesSecrets(tenant string) bool {
	only, ok := s.cfg.SingleTenant()
	return ok && tenant == only
}

// dispatchJob rebuilds the dispatch.Request of a stored job, for the poller.
func (s *Server) dispatchJob(ctx context.Context, j status.Job) (dispatch.Request, error) {
	rec, err := s.db.Jobs().GetRecord(ctx, j.ID)
	if err != nil {
		return dispatch.Request{}, err
	}
	jc, err := decodeContext(rec.Context)
	if err != nil {
		return dispatch.Request{}, err
	}
	return dispatch.Request{ID: rec.ID, Tenant: rec.Tenant, Agent: rec.Agent, Context: jc}, nil
}
