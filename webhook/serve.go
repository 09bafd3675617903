package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge/internal/otelx"
)

// exchange is one delivery in flight: what the steps of ServeHTTP share.
type exchange struct {
	w      http.ResponseWriter
	ctx    context.Context // the request's, under the delivery's span
	span   trace.Span
	start  time.Time
	event  string // X-GitHub-Event as sent
	hookID string // X-GitHub-Hook-ID as sent
	// badHeader is why the GitHub headers are unusable, or "".
	badHeader string
	routes    *eventRoutes // what is registered for the event, or nil
	obs       Observation
}

// reply is a step's verdict. The zero reply lets the delivery go on to
// the next step.
type reply struct {
	code    int
	outcome Outcome
	msg     string
	body    []byte // the JSON answer, when made in advance; never modified
}

// Answers made in advance: the usual ones.
var (
	replyHandled   = reply{code: http.StatusOK, outcome: OutcomeHandled, msg: "ok", body: replyBody(http.StatusOK, "ok")}
	replyDuplicate = reply{code: http.StatusAccepted, outcome: OutcomeDuplicate, msg: "duplicate delivery: already processed or in progress",
		body: replyBody(http.StatusAccepted, "duplicate delivery: already processed or in progress")}
)

func (r reply) final() bool { return r.code != 0 }

// ServeHTTP implements http.Handler. A delivery goes through these steps,
// each of which may answer it:
//
//  1. checkRequest: its headers, method, content type and announced size,
//     before a byte of the body is read;
//  2. readVerified: its body, within the unverified-bytes budget, and its
//     signature;
//  3. parse: its payload, decoded once into the routing head and, with
//     Handle, into the typed event;
//  4. dispatch: answered at once if a ping or not routed; else claimed,
//     handled and recorded as processed (or released on failure).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := h.begin(w, r)
	defer x.end()
	h.answer(&x, h.serve(&x, r))
}

// serve runs the steps of ServeHTTP and returns the answer.
func (h *Handler) serve(x *exchange, r *http.Request) reply {
	form, rep := h.checkRequest(x, r)
	if rep.final() {
		return rep
	}
	body, rep := h.readVerified(x, r)
	if rep.final() {
		return rep
	}
	in, rep := h.parse(x, body, form)
	if rep.final() {
		return rep
	}
	return h.dispatch(x, in)
}

// spanStart holds, by event label (EventLabel), the options a delivery's
// span starts with: built once, rather than for every delivery.
var spanStart = sync.OnceValue(func() map[string][]trace.SpanStartOption {
	m := map[string][]trace.SpanStartOption{}
	for _, label := range append(slices.Collect(maps.Keys(knownEvents())), OtherEvent) {
		m[label] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(otelx.Event.String(label))}
	}
	return m
})

// eventSpan returns EventLabel(event) and the options of its span, in one
// lookup for a known event.
func eventSpan(event string) (string, []trace.SpanStartOption) {
	m := spanStart()
	if opts, ok := m[event]; ok {
		return event, opts
	}
	return OtherEvent, m[OtherEvent]
}

// begin starts the exchange of a request: its clock, its GitHub headers
// (checked by checkRequest) and its span.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request) exchange {
	x := exchange{w: w, start: time.Now()}
	var hdr [len(checkedHeaders)]string
	x.badHeader = checkHeaders(r.Header, &hdr)
	x.event, x.obs.DeliveryID, x.hookID = hdr[0], hdr[1], hdr[2]
	label, opts := eventSpan(x.event)
	x.obs.Event = label
	x.ctx, x.span = h.tracer.Start(r.Context(), "ghbridge.webhook", opts...)
	return x
}

// end ends the exchange's span with what happened.
func (x *exchange) end() {
	if x.span.IsRecording() {
		if x.obs.Outcome != OutcomeMalformed {
			x.span.SetAttributes(otelx.DeliveryID.String(x.obs.DeliveryID))
		}
		x.span.SetAttributes(otelx.Action.String(x.obs.Action), attribute.String("ghbridge.webhook.outcome", string(x.obs.Outcome)),
			attribute.Int("http.response.status_code", x.obs.StatusCode))
	}
	if x.obs.StatusCode >= 500 {
		otelx.End(x.span, x.obs.Err)
		return
	}
	x.span.End()
}

// Header values the handler sets; never modified.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noSniff         = []string{"nosniff"}
	allowPost       = []string{http.MethodPost}
	retryAfterBusy  = []string{strconv.Itoa(retryAfterBusySeconds)}
	connectionClose = []string{"close"}
)

// answer writes rep as JSON like the API around it ({"error": ...} or
// {"message": ...}) and tells the observer.
func (h *Handler) answer(x *exchange, rep reply) {
	x.obs.StatusCode, x.obs.Outcome, x.obs.Duration = rep.code, rep.outcome, time.Since(x.start)
	hdr := x.w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["X-Content-Type-Options"] = noSniff
	x.w.WriteHeader(rep.code)
	body := rep.body
	if body == nil {
		body = replyBody(rep.code, rep.msg)
	}
	_, _ = x.w.Write(body)
	if h.observe != nil {
		h.observe(x.obs)
	}
}

// replyBody is the JSON body of an answer, with a final newline.
func replyBody(code int, msg string) []byte {
	key := `{"message":`
	if code >= 400 {
		key = `{"error":`
	}
	b := make([]byte, 0, len(key)+len(msg)+4)
	b = append(b, key...)
	b = appendJSONString(b, msg)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML-safe).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Rare (an event name in a message): the standard library's
			// rules for the rest.
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// checkRequest refuses what cannot be a delivery before a byte of its
// body is read: unusable GitHub headers, another method, another content
// type, a body announced too large. It reports whether the body is a form.
func (h *Handler) checkRequest(x *exchange, r *http.Request) (form bool, rep reply) {
	if x.badHeader != "" {
		x.obs.DeliveryID = "" // it may be the bad header
		return false, reply{code: http.StatusBadRequest, outcome: OutcomeMalformed, msg: x.badHeader}
	}
	if r.Method != http.MethodPost {
		x.w.Header()["Allow"] = allowPost
		return false, reply{code: http.StatusMethodNotAllowed, outcome: OutcomeBadMethod, msg: "method not allowed: GitHub deliveries are POSTs"}
	}
	form, ok := parseContentType(header(r.Header, "Content-Type"))
	if !ok {
		return false, reply{code: http.StatusUnsupportedMediaType, outcome: OutcomeBadContentType, msg: "unsupported content type: use application/json or application/x-www-form-urlencoded"}
	}
	if r.ContentLength > h.maxBody {
		return false, reply{code: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge, msg: "payload too large"}
	}
	return form, reply{}
}

// parseContentType reports whether a Content-Type is one GitHub sends,
// and whether it is a form.
func parseContentType(v string) (form, ok bool) {
	switch v { // what GitHub sends, without parsing
	case "application/json":
		return false, true
	case "application/x-www-form-urlencoded":
		return true, true
	}
	mediaType, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false, false
	}
	form = mediaType == "application/x-www-form-urlencoded"
	return form, form || mediaType == "application/json"
}

// readVerified reads the body within the unverified-bytes budget and
// checks its signature.
func (h *Handler) readVerified(x *exchange, r *http.Request) ([]byte, reply) {
	body, held, err := h.readBody(x.w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, errBusy):
			hdr := x.w.Header()
			hdr["Retry-After"] = retryAfterBusy
			hdr["Connection"] = connectionClose // rather than drain the unread body
			return nil, reply{code: http.StatusServiceUnavailable, outcome: OutcomeBusy, msg: "too many unverified deliveries in flight: retry later"}
		case errors.As(err, &tooLarge):
			return nil, reply{code: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge, msg: "payload too large"}
		default:
			return nil, reply{code: http.StatusBadRequest, outcome: OutcomeMalformed, msg: "could not read the body"}
		}
	}
	ok, why := h.verify(r.Header, body)
	h.budget.release(held) // verified or rejected: no longer anonymous bytes
	if !ok {
		x.obs.Err = errors.New(why)
		h.log.WarnContext(x.ctx, "webhook signature rejected", "delivery_id", x.obs.DeliveryID, "event", x.obs.Event, "reason", why)
		return nil, reply{code: http.StatusUnauthorized, outcome: OutcomeBadSignature, msg: why}
	}
	return body, reply{}
}

// parse turns a verified body into a Delivery: the payload (from the
// form, for form bodies) decoded once, into the routing head and, for
// events registered with Handle, into the typed event.
func (h *Handler) parse(x *exchange, body []byte, form bool) (*inflight, reply) {
	if x.event == "" || x.obs.DeliveryID == "" {
		return nil, reply{code: http.StatusBadRequest, outcome: OutcomeMalformed, msg: "missing X-GitHub-Event or X-GitHub-Delivery header"}
	}
	payload := body
	if form {
		vals, err := url.ParseQuery(string(body))
		if err != nil || vals.Get("payload") == "" {
			return nil, reply{code: http.StatusBadRequest, outcome: OutcomeMalformed, msg: "form body without a payload field"}
		}
		payload = []byte(vals.Get("payload"))
	}
	x.routes = h.route(x.event)
	var (
		hd         head
		key, typed any
		err        error
	)
	if x.routes != nil && x.routes.decode != nil {
		key, typed, hd, err = x.routes.decode(payload)
	} else {
		err = gojson.UnmarshalOf(payload, &hd, gojson.DecodeNoCopyString())
		hd.detach()
	}
	if err != nil {
		x.obs.Err = err
		return nil, reply{code: http.StatusBadRequest, outcome: OutcomeMalformed, msg: "malformed JSON payload"}
	}
	x.obs.Action = hd.Action
	if x.span.IsRecording() {
		x.span.SetAttributes(otelx.InstallationID.Int64(hd.Installation.ID), otelx.Repository.String(hd.Repository.FullName))
	}
	in := &inflight{d: Delivery{
		ID: x.obs.DeliveryID, Event: x.event, Action: hd.Action, HookID: x.hookID,
		InstallationID: hd.Installation.ID, Repository: hd.Repository, Payload: payload, ReceivedAt: x.start,
	}}
	if typed != nil {
		in.d.cache(key, typed)
	}
	return in, reply{}
}

// inflight is a delivery being dispatched: the Delivery its handlers see
// and the context they run under, in one allocation.
type inflight struct {
	d   Delivery
	ctx lazyDeadline
}

// dispatch answers a ping or a delivery nothing is registered for at
// once; it runs the handlers of any other delivery it can claim, and
// records it as processed, or releases it when a handler fails.
func (h *Handler) dispatch(x *exchange, in *inflight) reply {
	d := &in.d
	if d.Event == "ping" {
		return reply{code: http.StatusOK, outcome: OutcomePing, msg: "pong"}
	}
	fns := x.routes.handlers(d.Action)
	if len(fns) == 0 {
		return reply{code: http.StatusAccepted, outcome: OutcomeIgnored, msg: "ignored: no handler for " + d.Event + actionSuffix(d.Action)}
	}
	in.ctx.start(x.ctx, time.Now().Add(h.timeout))
	defer in.ctx.stop()
	var ctx context.Context = &in.ctx
	log := func() *slog.Logger { return h.log.With("delivery_id", d.ID, "event", d.Event, "action", d.Action) }
	claimed, err := h.store.Claim(ctx, d.ID, h.holder, h.lease)
	if err != nil {
		x.obs.Err = err
		log().ErrorContext(ctx, "delivery store unavailable", "error", err)
		return reply{code: http.StatusInternalServerError, outcome: OutcomeStoreUnavailable, msg: "internal error"}
	}
	if !claimed {
		return replyDuplicate
	}
	if err := h.run(ctx, d, fns); err != nil {
		x.obs.Err = err
		log().ErrorContext(ctx, "webhook handler failed", "error", err)
		if rerr := h.store.Release(context.WithoutCancel(ctx), d.ID, h.holder); rerr != nil {
			log().ErrorContext(ctx, "releasing the delivery claim failed", "error", rerr)
		}
		return reply{code: http.StatusInternalServerError, outcome: OutcomeHandlerError, msg: "internal error"}
	}
	if err := h.store.Complete(context.WithoutCancel(ctx), d.ID); err != nil {
		log().ErrorContext(ctx, "recording the delivery failed", "error", err)
	}
	return replyHandled
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

// header returns the first value of a header by its canonical key, like
// http.Header.Get without canonicalizing the key each time.
func header(hdr http.Header, canonicalKey string) string {
	if v := hdr[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// errBusy is readBody's answer when the unverified-bytes budget is spent.
var errBusy = errors.New("webhook: unverified-bytes budget spent")

// readBody reads the body of a delivery not yet verified, charging it to
// the unverified-bytes budget. It returns the bytes charged, to be
// released once the signature is checked; on error nothing stays charged.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, err error) {
	if n := r.ContentLength; n >= 0 && n <= h.maxBody {
		// The usual case: charged before a byte is read, and one
		// allocation of the announced size. net/http ends the body at
		// Content-Length, so it cannot run over the limit.
		if !h.budget.tryAcquire(n) {
			return nil, 0, errBusy
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			h.budget.release(n)
			return nil, 0, err
		}
		return buf, n, nil
	}
	// Unknown length: the charge grows with the buffer, which doubles up
	// to one byte over the limit (the byte MaxBytesReader needs to see
	// that the body is too large).
	limited := http.MaxBytesReader(w, r.Body, h.maxBody)
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
// deliveries whose signature is not checked yet. Hosts export it as a
// gauge, to see how close WithUnverifiedBudget comes to refusing
// deliveries.
func (h *Handler) UnverifiedBytes() int64 { return h.budget.used.Load() }

// checkedHeaders are the headers the handler reads or passes on: their
// values end up in logs, stores and observers. begin takes the event, the
// delivery and the hook id from the first three.
var checkedHeaders = [...]struct{ key, name string }{
	{"X-Github-Event", "X-GitHub-Event"},
	{"X-Github-Delivery", "X-GitHub-Delivery"},
	{"X-Github-Hook-Id", "X-GitHub-Hook-ID"},
	{"X-Github-Hook-Installation-Target-Id", "X-GitHub-Hook-Installation-Target-ID"},
	{"X-Github-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-Type"},
}

// checkHeaders returns why the GitHub headers of a request are unusable,
// or "" when they are fine, and puts the first value of each of
// checkedHeaders in values, usable or not.
func checkHeaders(hdr http.Header, values *[len(checkedHeaders)]string) (bad string) {
	for i, h := range checkedHeaders {
		vs := hdr[h.key]
		if len(vs) > 0 {
			values[i] = vs[0]
		}
		for _, v := range vs {
			if bad != "" {
				break
			}
			if !utf8.ValidString(v) {
				bad = "malformed " + h.name + " header: not valid UTF-8"
			} else if len(v) > maxHeaderValue {
				bad = "malformed " + h.name + " header: longer than " + strconv.Itoa(maxHeaderValue) + " bytes"
			}
		}
	}
	return bad
}
