package github

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gh "github.com/google/go-github/v62/github"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/internal/apiurl"
)

// DefaultUserAgent is sent when no WithUserAgent option is given. Hosts
// replace it with a User-Agent that names their integration, as GitHub
// asks.
const DefaultUserAgent = "ghbridge"

// GitHub REST API versions ghbridge is tested against, sent as the
// X-GitHub-Api-Version header. Hosts pass one to WithAPIVersion.
const (
	// APIVersion20221128 is the default.
	APIVersion20221128 = "2022-11-28"
	// APIVersion20260310 always answers a workflow dispatch with the run
	// (200) and no longer takes return_run_details.
	APIVersion20260310 = "2026-03-10"
	// DefaultAPIVersion is sent when no WithAPIVersion option is given.
	DefaultAPIVersion = APIVersion20221128
)

// ClientFactory builds go-github clients sharing one retrying transport,
// and the App's token cache (see TokenCache). A host makes one per
// process (per GitHub it talks to) and shares it. It is safe for
// concurrent use.
type ClientFactory struct {
	cfg       factoryConfig
	baseURL   *url.URL
	transport http.RoundTripper
}

// Option configures a ClientFactory; hosts pass options to
// NewClientFactory.
type Option func(*ClientFactory)

// factoryConfig holds a ClientFactory's settings.
type factoryConfig struct {
	apiVersion string
	baseURL    string
	userAgent  string
	base       http.RoundTripper
	retry      RetryPolicy
	logger     *slog.Logger
	onRetry    func(context.Context, Retry)
	onLimit    func(RateLimit)
	tracer     trace.TracerProvider
	now        func() time.Time
	audit      credentials.AuditSink

	refreshMargin, exchangeTimeout time.Duration
	// sleep is the retrying transport's wait (see retryConfig.sleep),
	// set by tests only.
	sleep func(ctx context.Context, d time.Duration) error
}

// RateLimit is GitHub's rate-limit state after an answer, from its
// x-ratelimit-* headers. Hosts receive it through WithRateLimitObserver,
// for metrics and alerts.
type RateLimit struct {
	// Credential is "installation", "app" (the App's JWT) or "token" (a
	// static token); InstallationID is set for "installation".
	Credential     string
	InstallationID int64
	// Resource is GitHub's x-ratelimit-resource ("core", "search", ...).
	Resource         string
	Limit, Remaining int
	Reset            time.Time
}

// WithRetryObserver calls fn before each retry's wait. Hosts set it to
// count retries in their metrics.
func WithRetryObserver(fn func(ctx context.Context, r Retry)) Option {
	return func(f *ClientFactory) { f.cfg.onRetry = fn }
}

// WithRateLimitObserver calls fn after every GitHub answer that carries
// rate-limit headers. Hosts set it to export the rate limit left per
// credential.
func WithRateLimitObserver(fn func(RateLimit)) Option {
	return func(f *ClientFactory) { f.cfg.onLimit = fn }
}

// WithTracerProvider traces every GitHub call (and token exchange) with
// otelhttp; default the global provider, which does nothing unless the
// host sets one. Hosts that export traces set it. No trace context is
// sent to GitHub.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(f *ClientFactory) { f.cfg.tracer = tp }
}

// WithBaseURL sets the REST API root: empty for github.com, or a GitHub
// Enterprise Server URL (https://ghe.example.com/api/v3/; "/api/v3/" is
// added when missing). Hosts on GitHub Enterprise Server set it, and
// tests set the fake's URL.
func WithBaseURL(u string) Option { return func(f *ClientFactory) { f.cfg.baseURL = u } }

// WithUserAgent sets the User-Agent header (default DefaultUserAgent).
// GitHub asks for one that names the integration, so hosts set it.
func WithUserAgent(ua string) Option {
	return func(f *ClientFactory) {
		if ua != "" {
			f.cfg.userAgent = ua
		}
	}
}

// WithHTTPTransport sets the transport below the retry layer (default a
// pooled transport from go-cleanhttp). Hosts set it for a proxy or a
// GitHub Enterprise Server certificate authority of their own; tests to
// inject failures.
func WithHTTPTransport(rt http.RoundTripper) Option {
	return func(f *ClientFactory) { f.cfg.base = rt }
}

// WithAPIVersion sets the REST API version requested (default
// DefaultAPIVersion), a date such as APIVersion20260310. Hosts set it to
// move to a newer version once their GitHub serves it.
func WithAPIVersion(v string) Option {
	return func(f *ClientFactory) {
		if v != "" {
			f.cfg.apiVersion = v
		}
	}
}

// WithRetryPolicy tunes retries (default: the zero RetryPolicy's
// defaults). Hosts rarely need it; a command that must fail fast, such
// as a health check, disables retries with it.
func WithRetryPolicy(p RetryPolicy) Option { return func(f *ClientFactory) { f.cfg.retry = p } }

// WithLogger sets the logger for retries (one WARN line each) and for
// failed background token refreshes (default: none).
func WithLogger(l *slog.Logger) Option {
	return func(f *ClientFactory) {
		if l != nil {
			f.cfg.logger = l
		}
	}
}

// WithClock sets the clock of JWTs, token expiry and rate-limit resets
// (default time.Now), for tests.
func WithClock(now func() time.Time) Option {
	return func(f *ClientFactory) {
		if now != nil {
			f.cfg.now = now
		}
	}
}

// WithAudit sends a credentials.EventTokenExchange event for every
// installation token exchange of the factory's token caches. Hosts that
// keep an audit trail set it.
func WithAudit(sink credentials.AuditSink) Option {
	return func(f *ClientFactory) { f.cfg.audit = sink }
}

// WithTokenRefreshMargin sets how long before expiry an installation
// token is refreshed (default 5 minutes). For short-lived tokens at most
// half the lifetime is used. Hosts rarely need it.
func WithTokenRefreshMargin(d time.Duration) Option {
	return func(f *ClientFactory) {
		if d > 0 {
			f.cfg.refreshMargin = d
		}
	}
}

// WithTokenExchangeTimeout bounds one installation token exchange,
// retries included (default 30 s). Hosts rarely need it.
func WithTokenExchangeTimeout(d time.Duration) Option {
	return func(f *ClientFactory) {
		if d > 0 {
			f.cfg.exchangeTimeout = d
		}
	}
}

// NewClientFactory returns a factory. It fails only on a malformed base
// URL or API version.
func NewClientFactory(opts ...Option) (*ClientFactory, error) {
	f := &ClientFactory{cfg: factoryConfig{userAgent: DefaultUserAgent, apiVersion: DefaultAPIVersion, now: time.Now,
		logger: slog.New(slog.DiscardHandler), refreshMargin: defaultRefreshMargin, exchangeTimeout: defaultExchangeTimeout}}
	for _, o := range opts {
		o(f)
	}
	cfg := f.cfg
	if _, err := time.Parse(time.DateOnly, cfg.apiVersion); err != nil {
		return nil, fmt.Errorf("github: API version %q is not a date such as %s", cfg.apiVersion, DefaultAPIVersion)
	}
	u, err := apiurl.ParseBaseURL(cfg.baseURL)
	if err != nil {
		return nil, err
	}
	retrying := newRetryTransport(retryConfig{RetryPolicy: cfg.retry, base: cfg.base, logger: cfg.logger, onRetry: cfg.onRetry, now: cfg.now, sleep: cfg.sleep})
	if cfg.tracer == nil {
		cfg.tracer = otel.GetTracerProvider()
	}
	traced := otelhttp.NewTransport(retrying,
		otelhttp.WithTracerProvider(cfg.tracer),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()), // send GitHub no trace context
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "GitHub " + r.Method }),
	)
	f.cfg, f.baseURL, f.transport = cfg, u, traced
	return f, nil
}

// APIVersion returns the REST API version the factory's clients request.
// Hosts rarely need it: ClientSource passes it on to package dispatch; a
// host with a dispatch.ClientSource of its own returns it from that
// source's APIVersion method.
func (f *ClientFactory) APIVersion() string { return f.cfg.apiVersion }

// BaseURL returns the API root clients are built for. Hosts use it to
// say which GitHub they talk to (package doctor reports it).
func (f *ClientFactory) BaseURL() *url.URL { u := *f.baseURL; return &u }

// Client returns a client that authenticates every request with cred.
// Installation tokens are fetched per request from cred's token source,
// so a long-lived client keeps working across token refreshes. Hosts use
// it for calls of their own with a credential they resolved; ClientSource
// uses it for jobs.
func (f *ClientFactory) Client(cred credentials.Credential) (*gh.Client, error) {
	if cred.IsZero() {
		return nil, fmt.Errorf("%w: no credential to build a client with", credentials.ErrNotConfigured)
	}
	lim := RateLimit{Credential: "token"}
	if cred.InstallationID != 0 {
		lim = RateLimit{Credential: "installation", InstallationID: cred.InstallationID}
	}
	return f.newClient(f.observe(lim, &tokenTransport{cred: cred, base: f.transport})), nil
}

// AppClient returns a client authenticated as the App itself (JWT), for
// the /app endpoints: installations, webhook deliveries. Hosts use it to
// list or check installations and deliveries themselves.
func (f *ClientFactory) AppClient(app credentials.AppConfig) (*gh.Client, error) {
	rt, err := f.appTransport(app)
	if err != nil {
		return nil, err
	}
	return f.newClient(f.observe(RateLimit{Credential: "app"}, rt)), nil
}

// observe reports the rate-limit headers of rt's answers, labelled as lim.
func (f *ClientFactory) observe(lim RateLimit, rt http.RoundTripper) http.RoundTripper {
	if f.cfg.onLimit == nil {
		return rt
	}
	return &limitTransport{lim: lim, fn: f.cfg.onLimit, base: rt}
}

type limitTransport struct {
	lim  RateLimit
	fn   func(RateLimit)
	base http.RoundTripper
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp == nil {
		return resp, err
	}
	h := resp.Header
	limit, lerr := strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	remaining, rerr := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
	reset, serr := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
	if lerr == nil && rerr == nil && serr == nil {
		l := t.lim
		l.Resource, l.Limit, l.Remaining, l.Reset = h.Get("X-Ratelimit-Resource"), limit, remaining, time.Unix(reset, 0)
		t.fn(l)
	}
	return resp, err
}

func (f *ClientFactory) newClient(rt http.RoundTripper) *gh.Client {
	c := gh.NewClient(&http.Client{Transport: &versionTransport{version: f.cfg.apiVersion, base: rt}})
	c.BaseURL, c.UploadURL = f.BaseURL(), apiurl.UploadURL(f.baseURL)
	c.UserAgent = f.cfg.userAgent
	return c
}

// tokenTransport sets the Authorization header from a credential.
type tokenTransport struct {
	cred credentials.Credential
	base http.RoundTripper
}

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.cred.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.Reveal())
	return t.base.RoundTrip(r)
}

// versionTransport sets X-GitHub-Api-Version, which go-github fixes at
// 2022-11-28.
type versionTransport struct {
	version string
	base    http.RoundTripper
}

func (t *versionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-GitHub-Api-Version") == t.version {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("X-GitHub-Api-Version", t.version)
	return t.base.RoundTrip(r)
}
