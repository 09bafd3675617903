// Package webhook receives GitHub deliveries: an http.Handler that checks
// the HMAC-SHA256 signature over the raw body, de-duplicates deliveries by
// their X-GitHub-Delivery id, and routes each by event and action to the
// handlers registered with On.
//
// Answers, as GitHub sees them:
//
//	405 not a POST                 413 body over the size limit
//	415 unsupported content type   401 missing or bad signature
//	400 malformed delivery or header (not UTF-8, too long)
//	503 the unverified-bytes budget is spent (with Retry-After)
//	200 ping, or handled
//	202 no handler for the event or action, or a duplicate delivery
//	500 a handler failed (the error is logged, never sent back)
//
// Before its signature is checked a request costs little: its headers are
// checked first, and the bodies of unverified deliveries share a byte
// budget (WithUnverifiedBudget), so that a flood of large unsigned bodies
// is refused instead of buffered.
//
// A handler error releases the delivery's claim, so that a redelivery
// (which GitHub sends with the same delivery id) is processed again.
//
// Handlers see a *Delivery; Handle gives them the payload decoded into a
// small event struct (WorkflowRunEvent and friends, which
// hold only what ghbridge uses), and Delivery.GitHubEvent gives go-github's
// full typed event. SyncInstallations keeps a credentials.InstallationStore
// in step with installation events.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/internal/otelx"
)

// The defaults of the Handler's options, for hosts that set theirs
// relative to them.
const (
	// DefaultMaxBodySize is GitHub's own cap on payloads: 25 MB.
	DefaultMaxBodySize = 25 << 20
	// DefaultHandlerTimeout bounds the handlers of one delivery, well
	// within the 10 s GitHub waits for an answer.
	DefaultHandlerTimeout = 8 * time.Second
	// DefaultClaimLease is how long a delivery stays claimed by a worker
	// that neither completes nor releases it (because it crashed).
	DefaultClaimLease = time.Minute
	// DefaultUnverifiedBudget caps the body bytes held at once by
	// deliveries whose signature is not checked yet: 64 MiB, two
	// deliveries of GitHub's largest size and many of the usual ones.
	DefaultUnverifiedBudget = 64 << 20
	// retryAfterBusySeconds is the Retry-After of a delivery refused
	// because the unverified-bytes budget is spent.
	retryAfterBusySeconds = 1
	// maxHeaderValue bounds the GitHub headers the handler reads (GUIDs
	// and event names are far shorter), so that logs stay small.
	maxHeaderValue = 256
)

// ErrNoSecret is returned by New without a webhook secret: an empty secret
// would mean accepting anything. Hosts meet it at startup, when the App's
// webhook secret is not configured.
var ErrNoSecret = failure.New(failure.ErrInvalidIntegration, "webhook: no secret configured; pass the App's webhook secret to New (an unsigned delivery is never accepted)")

// HandlerFunc handles one delivery; hosts register theirs with On.
// Returning an error answers 500 and releases the delivery's claim, so
// that GitHub's redelivery of it is processed again.
type HandlerFunc func(ctx context.Context, d *Delivery) error

// Outcome is what happened to a delivery (Observation.Outcome): hosts
// count deliveries by it. It is always one of the constants below, so it
// is safe as a metric label.
type Outcome string

// Outcomes, one per kind of answer (the package documentation lists the
// status codes).
const (
	OutcomeHandled          Outcome = "handled"
	OutcomePing             Outcome = "ping"
	OutcomeIgnored          Outcome = "ignored"
	OutcomeDuplicate        Outcome = "duplicate"
	OutcomeBadSignature     Outcome = "bad_signature"
	OutcomeMalformed        Outcome = "malformed"
	OutcomeTooLarge         Outcome = "too_large"
	OutcomeBadMethod        Outcome = "bad_method"
	OutcomeBadContentType   Outcome = "bad_content_type"
	OutcomeHandlerError     Outcome = "handler_error"
	OutcomeStoreUnavailable Outcome = "store_unavailable"
	// OutcomeBusy: refused unread, the unverified-bytes budget was spent.
	OutcomeBusy Outcome = "busy"
)

// Observation describes one delivery after it was answered: hosts get
// one per delivery with WithObserver, for metrics and logs.
type Observation struct {
	// DeliveryID is the X-GitHub-Delivery header: valid UTF-8 of at most
	// 256 bytes, but chosen by the sender; never use it as a metric label.
	DeliveryID string
	// Event is EventLabel of the X-GitHub-Event header: a GitHub event
	// name or OtherEvent, safe as a metric label. Delivery.Event has the
	// header as sent.
	Event string
	// Action is the payload's action, for verified deliveries only.
	Action string
	// Outcome and StatusCode are the answer; Duration is the time from
	// the request's arrival to it.
	Outcome    Outcome
	StatusCode int
	Duration   time.Duration
	// Err is why the delivery failed (a bad signature, the store, a
	// handler), or nil.
	Err error
}

// Handler is an http.Handler for GitHub deliveries: hosts serve it at the
// webhook URL of their App (or repository webhooks). Register handlers
// with On and Handle before serving; it is safe for concurrent use after
// that.
type Handler struct {
	secrets   [][]byte
	allowSHA1 bool
	maxBody   int64
	timeout   time.Duration
	lease     time.Duration
	store     DeliveryStore
	holder    Holder
	log       *slog.Logger
	observe   func(Observation)
	budget    byteBudget // unverified body bytes
	tracer    trace.Tracer

	mu     sync.Mutex                 // serializes On and Handle
	routes atomic.Pointer[routeTable] // read without a lock by every delivery

	hashes []sync.Pool // per secret, reusable HMAC states
}

// routeTable is what is registered, by event. It is never changed once
// published: On publishes a changed copy.
type routeTable map[string]*eventRoutes

// eventRoutes is what is registered for one event.
type eventRoutes struct {
	all      []HandlerFunc            // for every action
	byAction map[string][]HandlerFunc // for one action, after all
	decode   decoder                  // one-pass decoder, from Handle
}

// Option configures a Handler (New).
type Option func(*Handler)

// WithTracerProvider traces each delivery with a span (event, action,
// delivery and installation ids, answer); handlers run under it. Hosts
// that trace set it; nil means the global provider, the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(h *Handler) { h.tracer = otelx.Tracer(tp) }
}

// WithDeliveryStore sets where delivery ids are remembered (default, or
// nil, a MemoryDeliveryStore). Hosts with several replicas, or that want
// de-duplication to survive a restart, set a shared one.
func WithDeliveryStore(s DeliveryStore) Option { return func(h *Handler) { h.store = s } }

// WithLogger sets the logger of rejected signatures, failed handlers and
// store errors (default, or nil, none).
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithMaxBodySize sets the largest body accepted (default
// DefaultMaxBodySize, GitHub's own cap). Hosts that expect only small
// deliveries lower it.
func WithMaxBodySize(n int64) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxBody = n
		}
	}
}

// WithSHA1 accepts the legacy X-Hub-Signature (HMAC-SHA1) when a delivery
// has no X-Hub-Signature-256. Off by default; hosts turn it on only for
// senders that sign with SHA-1 alone.
func WithSHA1(allow bool) Option { return func(h *Handler) { h.allowSHA1 = allow } }

// WithHandlerTimeout bounds the handlers of one delivery (default
// DefaultHandlerTimeout). Keep it under the 10 s GitHub waits for an
// answer.
func WithHandlerTimeout(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// WithHolder names the process's delivery claims (default NewHolder("")).
// A name that is stable across restarts lets the process, once
// restarted, free the claims it held when it died (ReleaseStaleClaims),
// and take over those claims itself when they are redelivered to it.
func WithHolder(holder Holder) Option { return func(h *Handler) { h.holder = holder } }

// WithClaimLease sets how long a claim outlives a crashed worker (default
// DefaultClaimLease): until then a redelivery of what it held is answered
// as a duplicate. Keep it above the handler timeout.
func WithClaimLease(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.lease = d
		}
	}
}

// WithUnverifiedBudget caps the body bytes held at once by deliveries
// whose signature is not checked yet (default DefaultUnverifiedBudget). A
// delivery is charged its Content-Length before its body is read (or, for
// a body of unknown length, as it is read) and refunded once its signature
// has been checked or the request has failed. A delivery that does not
// fit is answered 503 with Retry-After, its body unread. A budget below
// the largest body (WithMaxBodySize) is raised to it, so that any delivery
// fits once the others are done.
func WithUnverifiedBudget(n int64) Option {
	return func(h *Handler) {
		if n > 0 {
			h.budget.limit = n
		}
	}
}

// WithObserver calls fn after every delivery is answered: hosts count
// deliveries, answers and latencies with it.
func WithObserver(fn func(Observation)) Option { return func(h *Handler) { h.observe = fn } }

// New returns a Handler that accepts deliveries signed with any of
// secrets (several during a rotation). Empty strings are ignored; no
// secret at all is ErrNoSecret. Hosts make one at startup.
func New(secrets []string, opts ...Option) (*Handler, error) {
	h := &Handler{
		maxBody: DefaultMaxBodySize,
		timeout: DefaultHandlerTimeout,
		lease:   DefaultClaimLease,
		budget:  byteBudget{limit: DefaultUnverifiedBudget},
		log:     slog.New(slog.DiscardHandler),
	}
	h.routes.Store(&routeTable{})
	for _, s := range secrets {
		if s = strings.TrimSpace(s); s != "" {
			h.secrets = append(h.secrets, []byte(s))
		}
	}
	if len(h.secrets) == 0 {
		return nil, ErrNoSecret
	}
	for _, o := range opts {
		o(h)
	}
	if h.store == nil {
		h.store = NewMemoryDeliveryStore(0)
	}
	if h.tracer == nil {
		h.tracer = otelx.Tracer(nil)
	}
	// One byte more than the largest body: reading it is how an
	// over-long body of unknown length is found.
	h.budget.limit = max(h.budget.limit, h.maxBody+1)
	if h.holder == (Holder{}) {
		h.holder = NewHolder("")
	}
	h.hashes = make([]sync.Pool, len(h.secrets))
	for i, key := range h.secrets {
		h.hashes[i].New = func() any { return &macState{Hash: hmac.New(sha256.New, key)} }
	}
	return h, nil
}

// ReleaseStaleClaims frees the delivery claims that earlier incarnations
// of this process (same Holder name) still hold because they died while
// processing: a redelivery of those deliveries is then processed by any
// replica at once, instead of answered as a duplicate until the claims'
// lease ends. Call it once when the process starts.
func (h *Handler) ReleaseStaleClaims(ctx context.Context) (int, error) {
	n, err := h.store.ReleaseStale(ctx, h.holder)
	if err != nil {
		return n, fmt.Errorf("releasing the delivery claims of earlier incarnations of %s: %w", h.holder.Name, err)
	}
	if n > 0 {
		h.log.InfoContext(ctx, "released delivery claims of an earlier incarnation", "holder", h.holder.Name, "count", n)
	}
	return n, nil
}

// ParseSecrets splits a comma-separated secret list, for hosts that keep
// the webhook secrets of a rotation in one setting.
func ParseSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// On registers fn for deliveries of an event ("workflow_run") or of one
// action of it ("installation.deleted"). Handlers for the event run
// before handlers for the action, each in the order registered. Hosts use
// it for handlers of the raw Delivery, and Handle for typed events.
func (h *Handler) On(pattern string, fn HandlerFunc) {
	event, action, byAction := strings.Cut(pattern, ".")
	h.change(event, func(r *eventRoutes) {
		if !byAction {
			r.all = append(r.all[:len(r.all):len(r.all)], fn)
			return
		}
		list := r.byAction[action]
		r.byAction = maps.Clone(r.byAction)
		if r.byAction == nil {
			r.byAction = map[string][]HandlerFunc{}
		}
		r.byAction[action] = append(list[:len(list):len(list)], fn)
	})
}

// change publishes a copy of the route table in which edit has changed
// event's routes.
func (h *Handler) change(event string, edit func(*eventRoutes)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	table := maps.Clone(*h.routes.Load())
	r := &eventRoutes{}
	if old := table[event]; old != nil {
		*r = *old
	}
	edit(r)
	table[event] = r
	h.routes.Store(&table)
}

// route returns what is registered for event, or nil.
func (h *Handler) route(event string) *eventRoutes { return (*h.routes.Load())[event] }

// handlers returns the handlers of a delivery of action, in order.
func (r *eventRoutes) handlers(action string) []HandlerFunc {
	if r == nil {
		return nil
	}
	byAction := r.byAction[action]
	if len(byAction) == 0 || action == "" {
		return r.all
	}
	return append(r.all[:len(r.all):len(r.all)], byAction...)
}

// Delivery is one verified GitHub delivery, as handlers receive it.
type Delivery struct {
	// ID is the X-GitHub-Delivery GUID; redeliveries keep it.
	ID string
	// Event is X-GitHub-Event; Action the payload's action, if any.
	Event, Action string
	// HookID is X-GitHub-Hook-ID.
	HookID string
	// InstallationID and Repository come from the payload, when present.
	InstallationID int64
	Repository     Repository
	// Payload is the JSON payload (the payload field of a form body).
	Payload []byte
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time

	mu    sync.Mutex
	typed []typedEntry  // decoded events, one per type asked for
	one   [1]typedEntry // typed's first backing array
}

// typedEntry is a decoded event, keyed by its typedKey.
type typedEntry struct{ key, event any }

// head is decoded from every payload; decoding also validates the JSON.
type head struct {
	Action       string          `json:"action"`
	Installation InstallationRef `json:"installation"`
	Repository   Repository      `json:"repository"`
}

// Decode decodes the payload into v (any struct with json tags), for
// handlers registered with On; Handle decodes it for its handlers.
func (d *Delivery) Decode(v any) error {
	if err := decodeJSON(d.Payload, v); err != nil {
		return fmt.Errorf("decoding the %s payload: %w", d.Event, err)
	}
	return nil
}

// GitHubEvent returns go-github's typed event for the delivery
// (*github.WorkflowRunEvent and so on), for hosts that want every field.
func (d *Delivery) GitHubEvent() (any, error) { return parseGitHubEvent(d.Event, d.Payload) }

// typedKey caches the decoded event of type E in a Delivery.
type typedKey[E any] struct{}

// typedHandler adapts a handler of a decoded event type E to a
// HandlerFunc. Each delivery is decoded into a given type once, however
// many handlers ask for it.
func typedHandler[E any](fn func(ctx context.Context, d *Delivery, e *E) error) HandlerFunc {
	return func(ctx context.Context, d *Delivery) error {
		d.mu.Lock()
		e, ok := d.cached(typedKey[E]{}).(*E)
		if !ok {
			e = new(E)
			if err := d.Decode(e); err != nil {
				d.mu.Unlock()
				return err
			}
			d.cache(typedKey[E]{}, e)
		}
		d.mu.Unlock()
		return fn(ctx, d, e)
	}
}

// cached returns the event decoded under key, or nil; d.mu held, or d
// not yet shared.
func (d *Delivery) cached(key any) any {
	for _, t := range d.typed {
		if t.key == key {
			return t.event
		}
	}
	return nil
}

// cache keeps an event decoded under key; d.mu held, or d not yet shared.
func (d *Delivery) cache(key, event any) {
	if d.typed == nil {
		d.typed = d.one[:0]
	}
	d.typed = append(d.typed, typedEntry{key, event})
}

// decoder decodes a payload into a typed event in the same pass that
// validates it and finds the routing head.
type decoder func(payload []byte) (key, event any, hd head, err error)

// Handle registers fn for deliveries of an event or of one action of it,
// as On does, with the payload decoded into E: one of this package's
// event types (WorkflowRunEvent and friends) or a host's own struct with
// json tags. Each delivery is decoded into a given type once, however
// many handlers ask for it; into this package's event types, in the
// single pass that also validates it. Hosts register their handlers of
// typed events with it.
func Handle[E any](h *Handler, pattern string, fn func(ctx context.Context, d *Delivery, e *E) error) {
	event, _, _ := strings.Cut(pattern, ".")
	if _, ok := any(new(E)).(headed); ok {
		h.change(event, func(r *eventRoutes) {
			if r.decode == nil {
				r.decode = func(payload []byte) (any, any, head, error) {
					e := new(E)
					err := decodeJSON(payload, e)
					return typedKey[E]{}, e, any(e).(headed).head(), err
				}
			}
		})
	}
	h.On(pattern, typedHandler(fn))
}
