// Package webhook receives GitHub deliveries: an http.Handler that checks
// the HMAC-SHA256 signature over the raw body, de-duplicates deliveries by
// their X-GitHub-Delivery id, and routes each by event and action to the
// handlers registered with On.
//
// Answers, as GitHub sees them:
//
//	405 not a POST                 413 body over the size limit
//	415 unsupported content type   401 missing or bad signature
//	400 malformed delivery         200 ping, or handled
//	202 no handler for the event or action, or a duplicate delivery
//	500 a handler failed (the error is logged, never sent back)
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
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
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
)

// ErrNoSecret is returned by New without a webhook secret: an empty secret
// would mean accepting anything.
var ErrNoSecret = errors.New("webhook: no secret configured; set the App's webhook secret (GITHUB_WEBHOOK_SECRET)")

// HandlerFunc handles one delivery. Returning an error answers 500.
type HandlerFunc func(ctx context.Context, d *Delivery) error

// Outcome is what happened to a delivery, for observers and metrics.
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
)

// Observation describes one delivery after it was answered.
type Observation struct {
	DeliveryID string
	Event      string
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

	mu       sync.RWMutex
	routes   map[string][]HandlerFunc // "event" or "event.action"
	decoders map[string]decoder       // event -> one-pass decoder, from Handle

	hashes []sync.Pool // per secret, reusable HMAC states
}

// Option configures a Handler.
type Option func(*Handler)

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
	obs := Observation{DeliveryID: r.Header.Get("X-GitHub-Delivery"), Event: r.Header.Get("X-GitHub-Event")}
	answer := func(code int, outcome Outcome, msg string) {
		obs.StatusCode, obs.Outcome, obs.Duration = code, outcome, time.Since(start)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, msg+"\n")
		if h.observe != nil {
			h.observe(obs)
		}
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
	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			answer(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "payload too large")
			return
		}
		answer(http.StatusBadRequest, OutcomeMalformed, "could not read the body")
		return
	}
	if ok, why := h.verify(r.Header, body); !ok {
		obs.Err = errors.New(why)
		h.log.WarnContext(r.Context(), "webhook signature rejected", "delivery_id", obs.DeliveryID, "event", obs.Event, "reason", why)
		answer(http.StatusUnauthorized, OutcomeBadSignature, why)
		return
	}
	if obs.Event == "" || obs.DeliveryID == "" {
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
	dec := h.decoders[obs.Event]
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
	d := &Delivery{
		ID: obs.DeliveryID, Event: obs.Event, Action: hd.Action, HookID: r.Header.Get("X-GitHub-Hook-ID"),
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

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n >= 0 && n <= limit {
		// The usual case: one allocation of the announced size. net/http
		// ends the body at Content-Length.
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
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
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), prefix)
	if !ok || len(hexSig) != 2*size {
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
