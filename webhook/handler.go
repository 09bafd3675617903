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
// Handlers see a *Delivery; Typed and Handle give them the payload
// decoded into a small event struct (WorkflowRunEvent and friends, which
// hold only what ghbridge uses), and Delivery.GitHubEvent gives go-github's
// full typed event. SyncInstallations keeps a credentials.InstallationStore
// in step with installation events.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/internal/otelx"
)

// Defaults.
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
	// RetryAfterBusy is the Retry-After, in seconds, of a delivery
	// refused because the unverified-bytes budget is spent.
	RetryAfterBusy = 1
	// maxHeaderValue bounds the GitHub headers the handler reads (GUIDs
	// and event names are far shorter), so that logs stay small.
	maxHeaderValue = 256
)

// ErrNoSecret is returned by New without a webhook secret: an empty secret
// would mean accepting anything.
var ErrNoSecret = errors.New("webhook: no secret configured; set the App's webhook secret (GITHUB_WEBHOOK_SECRET)")

// HandlerFunc handles one delivery. Returning an error answers 500.
type HandlerFunc func(ctx context.Context, d *Delivery) error

// Outcome is what happened to a delivery, for observers and metrics. It is
// always one of the constants below, so it is safe as a metric label.
type Outcome string

// Outcomes.
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

// Observation describes one delivery after it was answered.
type Observation struct {
	// DeliveryID is the X-GitHub-Delivery header: valid UTF-8 of at most
	// 256 bytes, but chosen by the sender; never use it as a metric label.
	DeliveryID string
	// Event is EventLabel of the X-GitHub-Event header: a GitHub event
	// name or OtherEvent, safe as a metric label. Delivery.Event has the
	// header as sent.
	Event string
	// Action is the payload's action, for verified deliveries only.
	Action     string
	Outcome    Outcome
	StatusCode int
	Duration   time.Duration
	Err        error
}

// Handler is an http.Handler for GitHub deliveries. Register handlers
// with On before serving; it is safe for concurrent use after that.
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

	mu       sync.RWMutex
	routes   map[string][]HandlerFunc // "event" or "event.action"
	decoders map[string]decoder       // event -> one-pass decoder, from Handle

	hashes []sync.Pool // per secret, reusable HMAC states
}

// Option configures a Handler.
type Option func(*Handler)

// WithTracerProvider traces each delivery with a span (event, action,
// delivery and installation ids, answer); handlers run under it. Default
// the global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(h *Handler) { h.tracer = otelx.Tracer(tp) }
}

// WithDeliveryStore sets where delivery ids are remembered (default an
// in-memory store; use a shared one with several replicas).
func WithDeliveryStore(s DeliveryStore) Option { return func(h *Handler) { h.store = s } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithMaxBodySize sets the largest body accepted (default 25 MB).
func WithMaxBodySize(n int64) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxBody = n
		}
	}
}

// WithSHA1 accepts the legacy X-Hub-Signature (HMAC-SHA1) when a delivery
// has no X-Hub-Signature-256. Off by default.
func WithSHA1(allow bool) Option { return func(h *Handler) { h.allowSHA1 = allow } }

// WithHandlerTimeout bounds the handlers of one delivery (default 8 s).
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

// WithClaimLease sets how long a claim outlives a crashed worker.
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

// WithObserver calls fn after every delivery is answered, for metrics.
func WithObserver(fn func(Observation)) Option { return func(h *Handler) { h.observe = fn } }

// New returns a Handler that accepts deliveries signed with any of
// secrets (several during a rotation). Empty strings are ignored; no
// secret at all is ErrNoSecret.
func New(secrets []string, opts ...Option) (*Handler, error) {
	h := &Handler{
		maxBody:  DefaultMaxBodySize,
		timeout:  DefaultHandlerTimeout,
		lease:    DefaultClaimLease,
		budget:   byteBudget{limit: DefaultUnverifiedBudget},
		log:      slog.New(slog.DiscardHandler),
		routes:   map[string][]HandlerFunc{},
		decoders: map[string]decoder{},
	}
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
		h.hashes[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return h, nil
}

// Holder returns the holder the Handler claims deliveries as.
func (h *Handler) Holder() Holder { return h.holder }

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

// ParseSecrets splits a comma-separated secret list, as in
// GITHUB_WEBHOOK_SECRET during a rotation.
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
// before handlers for the action, each in the order registered.
func (h *Handler) On(pattern string, fn HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes[pattern] = append(h.routes[pattern], fn)
}

// handlers returns what is registered for a delivery.
func (h *Handler) handlers(event, action string) []HandlerFunc {
	h.mu.RLock()
	defer h.mu.RUnlock()
	byEvent, byAction := h.routes[event], h.routes[event+"."+action]
	if len(byAction) == 0 || action == "" {
		return byEvent
	}
	return append(byEvent[:len(byEvent):len(byEvent)], byAction...)
}

// Delivery is one verified GitHub delivery.
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
	typed map[any]any
}

// head is decoded from every payload; decoding also validates the JSON.
type head struct {
	Action       string       `json:"action"`
	Installation Installation `json:"installation"`
	Repository   Repository   `json:"repository"`
}

// Decode decodes the payload into v (any struct with json tags).
func (d *Delivery) Decode(v any) error {
	if err := gojson.Unmarshal(d.Payload, v); err != nil {
		return fmt.Errorf("decoding the %s payload: %w", d.Event, err)
	}
	return nil
}

// GitHubEvent returns go-github's typed event for the delivery
// (*github.WorkflowRunEvent and so on), for hosts that want every field.
func (d *Delivery) GitHubEvent() (any, error) { return parseGitHubEvent(d.Event, d.Payload) }

// typedKey caches the decoded event of type E in a Delivery.
type typedKey[E any] struct{}

// Typed adapts a handler of a decoded event type E (WorkflowRunEvent,
// PullRequestEvent, a host's own struct) to a HandlerFunc. Each delivery
// is decoded into a given type once, however many handlers ask for it.
func Typed[E any](fn func(ctx context.Context, d *Delivery, e *E) error) HandlerFunc {
	return func(ctx context.Context, d *Delivery) error {
		d.mu.Lock()
		e, ok := d.typed[typedKey[E]{}].(*E)
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

func (d *Delivery) cache(key, v any) {
	if d.typed == nil {
		d.typed = map[any]any{}
	}
	d.typed[key] = v
}

// decoder decodes a payload into a typed event in the same pass that
// validates it and finds the routing head.
type decoder func(payload []byte) (key, event any, hd head, err error)

// Handle registers a typed handler, like On(pattern, Typed(fn)). When E is
// one of this package's event types, deliveries of the event are decoded
// into E in the single pass that also validates them, instead of two.
func Handle[E any](h *Handler, pattern string, fn func(ctx context.Context, d *Delivery, e *E) error) {
	event, _, _ := strings.Cut(pattern, ".")
	if _, ok := any(new(E)).(headed); ok {
		h.mu.Lock()
		if h.decoders[event] == nil {
			h.decoders[event] = func(payload []byte) (any, any, head, error) {
				e := new(E)
				err := gojson.Unmarshal(payload, e)
				return typedKey[E]{}, e, any(e).(headed).head(), err
			}
		}
		h.mu.Unlock()
	}
	h.On(pattern, Typed(fn))
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	obs := Observation{DeliveryID: r.Header.Get("X-GitHub-Delivery"), Event: EventLabel(event)}
	ctx, span := h.tracer.Start(r.Context(), "ghbridge.webhook", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(otelx.Event.String(obs.Event)))
	r = r.WithContext(ctx)
	defer func() {
		if obs.Outcome != OutcomeMalformed {
			span.SetAttributes(otelx.DeliveryID.String(obs.DeliveryID))
		}
		span.SetAttributes(otelx.Action.String(obs.Action), attribute.String("ghbridge.webhook.outcome", string(obs.Outcome)),
			attribute.Int("http.response.status_code", obs.StatusCode))
		if obs.StatusCode >= 500 {
			otelx.End(span, obs.Err)
			return
		}
		span.End()
	}()
	answer := func(code int, outcome Outcome, msg string) {
		obs.StatusCode, obs.Outcome, obs.Duration = code, outcome, time.Since(start)
		// JSON like the API around it: {"error": ...} or {"message": ...}.
		key := "message"
		if code >= 400 {
			key = "error"
		}
		body, _ := json.Marshal(map[string]string{key: msg})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_, _ = w.Write(append(body, '\n'))
		if h.observe != nil {
			h.observe(obs)
		}
	}

	if msg := checkHeaders(r.Header); msg != "" {
		obs.DeliveryID = "" // it may be the bad header
		answer(http.StatusBadRequest, OutcomeMalformed, msg)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, OutcomeBadMethod, "method not allowed: GitHub deliveries are POSTs")
		return
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := mediaType == "application/x-www-form-urlencoded"
	if err != nil || (mediaType != "application/json" && !form) {
		answer(http.StatusUnsupportedMediaType, OutcomeBadContentType, "unsupported content type: use application/json or application/x-www-form-urlencoded")
		return
	}
	if r.ContentLength > h.maxBody {
		answer(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "payload too large")
		return
	}
	body, held, err := h.readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, errBusy):
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterBusy))
			w.Header().Set("Connection", "close") // rather than drain the unread body
			answer(http.StatusServiceUnavailable, OutcomeBusy, "too many unverified deliveries in flight: retry later")
		case errors.As(err, &tooLarge):
			answer(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "payload too large")
		default:
			answer(http.StatusBadRequest, OutcomeMalformed, "could not read the body")
		}
		return
	}
	ok, why := h.verify(r.Header, body)
	h.budget.release(held) // verified or rejected: no longer anonymous bytes
	if !ok {
		obs.Err = errors.New(why)
		h.log.WarnContext(r.Context(), "webhook signature rejected", "delivery_id", obs.DeliveryID, "event", obs.Event, "reason", why)
		answer(http.StatusUnauthorized, OutcomeBadSignature, why)
		return
	}
	if event == "" || obs.DeliveryID == "" {
		answer(http.StatusBadRequest, OutcomeMalformed, "missing X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	payload := body
	if form {
		vals, err := url.ParseQuery(string(body))
		if err != nil || vals.Get("payload") == "" {
			answer(http.StatusBadRequest, OutcomeMalformed, "form body without a payload field")
			return
		}
		payload = []byte(vals.Get("payload"))
	}
	var hd head
	var key, typed any
	h.mu.RLock()
	dec := h.decoders[event]
	h.mu.RUnlock()
	if dec != nil {
		key, typed, hd, err = dec(payload)
	} else {
		err = gojson.Unmarshal(payload, &hd)
	}
	if err != nil {
		obs.Err = err
		answer(http.StatusBadRequest, OutcomeMalformed, "malformed JSON payload")
		return
	}
	obs.Action = hd.Action
	span.SetAttributes(otelx.InstallationID.Int64(hd.Installation.ID), otelx.Repository.String(hd.Repository.FullName))
	d := &Delivery{
		ID: obs.DeliveryID, Event: event, Action: hd.Action, HookID: r.Header.Get("X-GitHub-Hook-ID"),
		InstallationID: hd.Installation.ID, Repository: hd.Repository, Payload: payload, ReceivedAt: start,
	}
	if typed != nil {
		d.cache(key, typed)
	}
	if d.Event == "ping" {
		answer(http.StatusOK, OutcomePing, "pong")
		return
	}
	fns := h.handlers(d.Event, d.Action)
	if len(fns) == 0 {
		answer(http.StatusAccepted, OutcomeIgnored, "ignored: no handler for "+d.Event+actionSuffix(d.Action))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	log := func() *slog.Logger { return h.log.With("delivery_id", d.ID, "event", d.Event, "action", d.Action) }
	claimed, err := h.store.Claim(ctx, d.ID, h.holder, h.lease)
	if err != nil {
		obs.Err = err
		log().ErrorContext(ctx, "delivery store unavailable", "error", err)
		answer(http.StatusInternalServerError, OutcomeStoreUnavailable, "internal error")
		return
	}
	if !claimed {
		answer(http.StatusAccepted, OutcomeDuplicate, "duplicate delivery: already processed or in progress")
		return
	}
	if err := h.run(ctx, d, fns); err != nil {
		obs.Err = err
		log().ErrorContext(ctx, "webhook handler failed", "error", err)
		if rerr := h.store.Release(context.WithoutCancel(ctx), d.ID, h.holder); rerr != nil {
			log().ErrorContext(ctx, "releasing the delivery claim failed", "error", rerr)
		}
		answer(http.StatusInternalServerError, OutcomeHandlerError, "internal error")
		return
	}
	if err := h.store.Complete(context.WithoutCancel(ctx), d.ID); err != nil {
		log().ErrorContext(ctx, "recording the delivery failed", "error", err)
	}
	answer(http.StatusOK, OutcomeHandled, "ok")
}

func actionSuffix(action string) string {
	if action == "" {
		return ""
	}
	return "." + action
}

// run calls the handlers in order, turning a panic into an error: one bad
// handler must not take the server down.
func (h *Handler) run(ctx context.Context, d *Delivery, fns []HandlerFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	for _, fn := range fns {
		if err := fn(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// errBusy is readBody's answer when the unverified-bytes budget is spent.
var errBusy = errors.New("webhook: unverified-bytes budget spent")

// readBody reads the body of a delivery not yet verified, charging it to
// the unverified-bytes budget. It returns the bytes charged, to be
// released once the signature is checked; on error nothing stays charged.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, err error) {
	limited := http.MaxBytesReader(w, r.Body, h.maxBody)
	if n := r.ContentLength; n >= 0 && n <= h.maxBody {
		// The usual case: charged before a byte is read, and one
		// allocation of the announced size. net/http ends the body at
		// Content-Length.
		if !h.budget.tryAcquire(n) {
			return nil, 0, errBusy
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(limited, buf); err != nil {
			h.budget.release(n)
			return nil, 0, err
		}
		return buf, n, nil
	}
	// Unknown length: the charge grows with the buffer, which doubles up
	// to one byte over the limit (the byte MaxBytesReader needs to see
	// that the body is too large).
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			grow := min(max(int64(cap(buf)), 4<<10), h.maxBody+1-int64(cap(buf)))
			if grow <= 0 { // cannot happen: MaxBytesReader stops first
				h.budget.release(held)
				return nil, 0, &http.MaxBytesError{Limit: h.maxBody}
			}
			if !h.budget.tryAcquire(grow) {
				h.budget.release(held)
				return nil, 0, errBusy
			}
			held += grow
			buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
		}
		n, err := limited.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, held, nil
		}
		if err != nil {
			h.budget.release(held)
			return nil, 0, err
		}
	}
}

// UnverifiedBytes returns the body bytes held at this moment by
// deliveries whose signature is not checked yet, for metrics and tests.
func (h *Handler) UnverifiedBytes() int64 { return h.budget.used.Load() }

// checkedHeaders are the headers the handler reads or passes on: their
// values end up in logs, stores and observers.
var checkedHeaders = [...]struct{ key, name string }{
	{"X-Github-Event", "X-GitHub-Event"},
	{"X-Github-Delivery", "X-GitHub-Delivery"},
	{"X-Github-Hook-Id", "X-GitHub-Hook-ID"},
	{"X-Github-Hook-Installation-Target-Id", "X-GitHub-Hook-Installation-Target-ID"},
	{"X-Github-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-Type"},
}

// checkHeaders returns why the GitHub headers of a request are unusable,
// or "" when they are fine.
func checkHeaders(hdr http.Header) string {
	for _, h := range checkedHeaders {
		for _, v := range hdr[h.key] {
			if !utf8.ValidString(v) {
				return "malformed " + h.name + " header: not valid UTF-8"
			}
			if len(v) > maxHeaderValue {
				return "malformed " + h.name + " header: longer than " + strconv.Itoa(maxHeaderValue) + " bytes"
			}
		}
	}
	return ""
}

// verify checks the delivery signature against every secret in constant
// time. It returns a reason when the delivery is not authentic.
func (h *Handler) verify(hdr http.Header, body []byte) (bool, string) {
	if sig := hdr.Get("X-Hub-Signature-256"); sig != "" {
		mac, ok := decodeSignature(sig, "sha256=", sha256.Size)
		if !ok {
			return false, "malformed X-Hub-Signature-256"
		}
		for i := range h.secrets {
			m := h.hashes[i].Get().(hash.Hash)
			m.Reset()
			m.Write(body)
			var sum [sha256.Size]byte
			good := hmac.Equal(m.Sum(sum[:0]), mac)
			h.hashes[i].Put(m)
			if good {
				return true, ""
			}
		}
		return false, "signature does not match: check the webhook secret"
	}
	if sig := hdr.Get("X-Hub-Signature"); sig != "" && h.allowSHA1 {
		mac, ok := decodeSignature(sig, "sha1=", sha1.Size)
		if !ok {
			return false, "malformed X-Hub-Signature"
		}
		for _, key := range h.secrets {
			m := hmac.New(sha1.New, key)
			m.Write(body)
			if hmac.Equal(m.Sum(nil), mac) {
				return true, ""
			}
		}
		return false, "signature does not match: check the webhook secret"
	}
	return false, "missing X-Hub-Signature-256: the webhook must have a secret"
}

func decodeSignature(sig, prefix string, size int) ([]byte, bool) {
	// GitHub sends "sha256=" and lower-case hex; the algorithm name and
	// the hex digits are matched in any case, as the digest is.
	sig = strings.TrimSpace(sig)
	if len(sig) < len(prefix) || !strings.EqualFold(sig[:len(prefix)], prefix) {
		return nil, false
	}
	hexSig := sig[len(prefix):]
	if len(hexSig) != 2*size {
		return nil, false
	}
	mac, err := hex.DecodeString(hexSig)
	return mac, err == nil
}

// Sign returns the X-Hub-Signature-256 header value for body, for tests
// and for tools that replay deliveries.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
