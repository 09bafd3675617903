package github

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/ghbridge/ghbridge/internal/wait"
)

// Defaults for RetryPolicy fields left zero.
const (
	defaultMaxRetries       = 4
	defaultMinWait          = 500 * time.Millisecond
	defaultMaxWait          = 10 * time.Second
	defaultMaxRateLimitWait = 60 * time.Second
	defaultAttemptTimeout   = 30 * time.Second

	// secondaryRateLimitWait is what GitHub asks for when a secondary rate
	// limit answer carries neither Retry-After nor x-ratelimit-reset.
	secondaryRateLimitWait = time.Minute
	// peekLimit bounds how much of a 403 body is read to look for a
	// secondary-rate-limit message.
	peekLimit = 64 << 10
)

// RetryPolicy tunes the retrying transport of a ClientFactory; zero fields
// take defaults. Hosts pass one to WithRetryPolicy.
type RetryPolicy struct {
	// MaxRetries after the first attempt (default 4); negative disables.
	MaxRetries int
	// MinWait and MaxWait bound backoff after connection errors and 5xx
	// answers (default 500 ms and 10 s).
	MinWait, MaxWait time.Duration
	// MaxRateLimitWait is the longest wait the transport accepts when
	// GitHub rate-limits a request (default 60 s); beyond it the caller
	// gets go-github's rate-limit error with the reset time.
	MaxRateLimitWait time.Duration
	// AttemptTimeout bounds one attempt: connect, send, headers and body
	// (default 30 s).
	AttemptTimeout time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = defaultMaxRetries
	}
	if p.MaxRetries < 0 {
		p.MaxRetries = 0
	}
	if p.MinWait <= 0 {
		p.MinWait = defaultMinWait
	}
	if p.MaxWait <= 0 {
		p.MaxWait = defaultMaxWait
	}
	if p.MaxWait < p.MinWait {
		p.MaxWait = p.MinWait
	}
	if p.MaxRateLimitWait <= 0 {
		p.MaxRateLimitWait = defaultMaxRateLimitWait
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = defaultAttemptTimeout
	}
	return p
}

// retryConfig is a RetryPolicy with the factory's other settings the
// transport needs. The zero value is usable.
type retryConfig struct {
	RetryPolicy
	// base performs attempts; default a pooled transport from go-cleanhttp.
	base http.RoundTripper
	// logger receives one WARN line per retry (attempt, wait, cause);
	// final failures are the caller's to log.
	logger  *slog.Logger
	onRetry func(ctx context.Context, r Retry)
	// now is the clock of x-ratelimit-reset.
	now func() time.Time
	// sleep waits d before a retry, or until ctx ends and then returns
	// its error; default a timer. Tests replace it to see the waits
	// without spending them.
	sleep func(ctx context.Context, d time.Duration) error
}

func (c retryConfig) withDefaults() retryConfig {
	c.RetryPolicy = c.RetryPolicy.withDefaults()
	if c.base == nil {
		c.base = cleanhttp.DefaultPooledTransport()
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = wait.Sleep
	}
	return c
}

// retryTransport is an http.RoundTripper that retries GitHub API requests:
//
//   - connection errors and 5xx answers are retried for idempotent requests
//     (see idempotent) with exponential backoff;
//   - another request (POST, PATCH) is retried after a connection error
//     only when it was provably never written to the wire;
//   - 403 and 429 answers that are rate limits (Retry-After,
//     x-ratelimit-remaining: 0, or a secondary-rate-limit message) are
//     retried for every method, since GitHub did not act on them, after the
//     wait GitHub asks for, unless that wait exceeds MaxRateLimitWait or the
//     request's deadline;
//   - when it gives up, GitHub's last answer is returned as it is, so
//     go-github turns it into its typed errors.
type retryTransport struct {
	rt  *retryablehttp.RoundTripper
	cfg retryConfig
}

func newRetryTransport(cfg retryConfig) *retryTransport {
	cfg = cfg.withDefaults()
	t := &retryTransport{cfg: cfg}
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{Transport: requestSetter{cfg.base}, Timeout: cfg.AttemptTimeout, CheckRedirect: noRedirects},
		// go-retryablehttp would log every failed attempt at ERROR;
		// checkRetry logs one WARN line per retry instead.
		Logger:     nil,
		RetryMax:   cfg.MaxRetries,
		CheckRetry: t.checkRetry,
		// The wait before a retry is chosen by checkRetry and waited by
		// t.wait, with cfg.sleep; go-retryablehttp's own wait is none.
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 },
		PrepareRetry: t.wait,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	t.rt = &retryablehttp.RoundTripper{Client: rc}
	return t
}

// requestSetter makes every response name its request: backoff finds the
// rate-limit wait through resp.Request, and a RoundTripper need not set it
// (a fake built on httptest.ResponseRecorder does not).
type requestSetter struct{ base http.RoundTripper }

func (s requestSetter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if resp != nil && resp.Request == nil {
		resp.Request = req
	}
	return resp, err
}

// CloseIdleConnections lets go-retryablehttp reach the base transport's.
func (s requestSetter) CloseIdleConnections() {
	if c, ok := s.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// noRedirects hands redirects to go-github, which has its own handling
// (for example for renamed repositories).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

type attemptKey struct{}

// attempt is the per-request state the retry policy needs but that
// go-retryablehttp does not pass to it.
type attempt struct {
	method, path string
	n            int // attempts made
	idempotent   bool
	written      atomic.Bool  // the current attempt's request reached the wire
	limited      atomic.Bool  // the current attempt's answer was a rate limit
	wait         atomic.Int64 // rate-limit wait chosen by checkRetry, in ns
	next         atomic.Int64 // wait before the retry checkRetry decided, in ns
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// go-retryablehttp reads the body into memory for its attempts
		// but does not close it, which a RoundTripper must.
		defer req.Body.Close()
	}
	a := &attempt{idempotent: idempotent(req), method: req.Method, path: req.URL.Path}
	ctx := context.WithValue(req.Context(), attemptKey{}, a)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { a.written.Store(true) },
	})
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if err != nil && resp != nil {
		// The context ended after an answer arrived; net/http would log
		// and drop a response returned with an error, leaking its body.
		_ = resp.Body.Close()
		resp = nil
	}
	return resp, err
}

// idempotent reports whether a request may be repeated without changing
// its effect: by its method, or for the POSTs whose repetition is
// harmless. Creating an installation token only issues another token;
// git blobs, trees and commits are content objects, so creating one again
// after an ambiguous failure leaves at most an unreferenced object.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	case http.MethodPost:
		return repeatablePost(req.URL.Path)
	}
	return false
}

// repeatablePost matches .../app/installations/{id}/access_tokens and
// .../repos/{owner}/{repo}/git/{blobs,trees,commits}, under any API root.
func repeatablePost(path string) bool {
	seg := strings.Split(strings.TrimSuffix(path, "/"), "/")
	n := len(seg)
	switch {
	case n >= 4 && seg[n-4] == "app" && seg[n-3] == "installations" && seg[n-1] == "access_tokens":
		return true
	case n >= 5 && seg[n-5] == "repos" && seg[n-2] == "git":
		switch seg[n-1] {
		case "blobs", "trees", "commits":
			return true
		}
	}
	return false
}

// Retry describes a retry of a GitHub request, for metrics (see
// WithRetryObserver).
type Retry struct {
	// Attempt is the number of the attempt that failed (1 for the first).
	Attempt int
	// Wait is how long the transport waits before the next attempt.
	Wait time.Duration
	// Cause is "connection", "timeout" (an attempt or connection timed
	// out), "5xx", "rate_limit" (primary) or "secondary_rate_limit": a
	// small fixed set, for metric labels.
	Cause string
	// StatusCode is GitHub's answer; 0 after a connection error.
	StatusCode int
	// Method and Path are the request's.
	Method, Path string
	// Err is the connection error retried; nil after an answer.
	Err error
}

// Causes of a retry, a small fixed set for metric labels.
const (
	causeConnection = "connection"
	causeTimeout    = "timeout"
	causeServer     = "5xx"
	causeRateLimit  = "rate_limit"
	causeSecondary  = "secondary_rate_limit"
)

func (t *retryTransport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	ok, cerr := t.decide(ctx, resp, err)
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil {
		return ok, cerr
	}
	a.n++
	if !ok || cerr != nil || a.n > t.cfg.MaxRetries {
		return ok, cerr // no retry follows: the caller sees the outcome
	}
	r := Retry{Attempt: a.n, Wait: t.backoff(t.cfg.MinWait, t.cfg.MaxWait, a.n-1, resp), Method: a.method, Path: a.path, Err: err}
	switch {
	case err != nil:
		r.Cause = causeConnection
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			r.Cause = causeTimeout
		}
	case a.limited.Load() && resp.Header.Get("X-Ratelimit-Remaining") == "0":
		r.Cause, r.StatusCode = causeRateLimit, resp.StatusCode
	case a.limited.Load():
		r.Cause, r.StatusCode = causeSecondary, resp.StatusCode
	default:
		r.Cause, r.StatusCode = causeServer, resp.StatusCode
	}
	attrs := []slog.Attr{slog.Int("attempt", r.Attempt), slog.Duration("wait", r.Wait), slog.String("cause", r.Cause),
		slog.String("method", r.Method), slog.String("path", r.Path)}
	if r.StatusCode != 0 {
		attrs = append(attrs, slog.Int("status", r.StatusCode))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	t.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "retrying GitHub request", attrs...)
	if t.cfg.onRetry != nil {
		t.cfg.onRetry(ctx, r)
	}
	a.next.Store(int64(r.Wait))
	return ok, cerr
}

// wait waits before a retry (go-retryablehttp's PrepareRetry, called
// between attempts) for what checkRetry chose; an error, when the
// request's context ends meanwhile, ends the request with it. Every
// request carries its attempt (see RoundTrip).
func (t *retryTransport) wait(req *http.Request) error {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return nil
	}
	return t.cfg.sleep(req.Context(), time.Duration(a.next.Load()))
}

func (t *retryTransport) decide(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{}
	}
	written := a.written.Swap(false)
	a.wait.Store(0)
	a.limited.Store(false)

	if err != nil {
		if !retryableError(err) {
			return false, nil
		}
		return a.idempotent || !written, nil
	}

	if wait, limited := t.rateLimitWait(resp); limited {
		if wait > t.cfg.MaxRateLimitWait {
			t.cfg.logger.DebugContext(ctx, "github rate limit wait exceeds cap; passing the answer through",
				"wait", wait, "cap", t.cfg.MaxRateLimitWait)
			return false, nil
		}
		if dl, ok := ctx.Deadline(); ok && wait > time.Until(dl) {
			// The deadline is in real time; cfg.Now is the clock of
			// x-ratelimit-reset only.
			return false, nil
		}
		a.wait.Store(int64(wait))
		a.limited.Store(true)
		return true, nil
	}

	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return a.idempotent, nil
	}
	return false, nil
}

func (t *retryTransport) backoff(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		if a, _ := resp.Request.Context().Value(attemptKey{}).(*attempt); a != nil {
			if w := time.Duration(a.wait.Load()); w > 0 {
				return w
			}
		}
	}
	// DefaultBackoff takes a 503's Retry-After however long it is; MaxWait
	// bounds the backoff after a 5xx.
	if d := retryablehttp.DefaultBackoff(min, max, attemptNum, resp); d < max {
		return d
	}
	return max
}

// retryableError reports whether a transport error may be transient.
// Certificate and request-construction errors are permanent.
func retryableError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority),
		errors.As(err, &hostnameErr), errors.As(err, &invalidCert):
		return false
	}
	msg := err.Error()
	return !strings.Contains(msg, "unsupported protocol scheme") && !strings.Contains(msg, "invalid header")
}

// rateLimitWait reports whether resp is a GitHub rate-limit answer and how
// long GitHub asks the client to wait before trying again.
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests) {
		return 0, false
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if when, err := http.ParseTime(v); err == nil {
			return max(when.Sub(now), 0), true
		}
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			// One extra second: reset is truncated to whole seconds.
			return max(time.Unix(reset, 0).Sub(now)+time.Second, 0), true
		}
		return secondaryRateLimitWait, true
	}
	if resp.StatusCode == http.StatusTooManyRequests || isSecondaryRateLimit(resp) {
		return secondaryRateLimitWait, true
	}
	return 0, false
}

func (t *retryTransport) rateLimitWait(resp *http.Response) (time.Duration, bool) {
	return rateLimitWait(resp, t.cfg.now())
}

// isSecondaryRateLimit peeks at a 403 body for GitHub's secondary rate
// limit message, leaving the body readable for the caller.
func isSecondaryRateLimit(resp *http.Response) bool {
	if resp.Body == nil || resp.Body == http.NoBody {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, peekLimit))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil {
		return false
	}
	lower := bytes.ToLower(head)
	return bytes.Contains(lower, []byte("secondary rate limit")) ||
		bytes.Contains(lower, []byte("abuse detection")) ||
		bytes.Contains(lower, []byte("secondary-rate-limits"))
}
