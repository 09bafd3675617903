package ghhttp

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
)

// Defaults for Config fields left zero.
const (
	DefaultMaxRetries       = 4
	DefaultMinWait          = 500 * time.Millisecond
	DefaultMaxWait          = 10 * time.Second
	DefaultMaxRateLimitWait = 60 * time.Second
	DefaultAttemptTimeout   = 30 * time.Second

	// secondaryRateLimitWait is what GitHub asks for when a secondary rate
	// limit answer carries neither Retry-After nor x-ratelimit-reset.
	secondaryRateLimitWait = time.Minute
	// peekLimit bounds how much of a 403 body is read to look for a
	// secondary-rate-limit message.
	peekLimit = 64 << 10
)

// Config tunes the retrying transport. The zero value is usable.
type Config struct {
	// MaxRetries is how many times a request is retried after the first
	// attempt. Negative disables retries.
	MaxRetries int
	// MinWait and MaxWait bound the exponential backoff after a connection
	// error or a 5xx answer.
	MinWait, MaxWait time.Duration
	// MaxRateLimitWait caps how long the transport waits when GitHub says
	// to slow down. A longer wait is not attempted: GitHub's answer is
	// passed through so the caller sees a typed rate-limit error.
	MaxRateLimitWait time.Duration
	// AttemptTimeout bounds one attempt (connect, send, headers, body).
	AttemptTimeout time.Duration
	// Base is the transport that performs attempts; default a pooled
	// transport from go-cleanhttp.
	Base http.RoundTripper
	// Logger receives one WARN line per retry (attempt, wait, cause);
	// default discards. Final failures are the caller's to log.
	Logger *slog.Logger
	// OnRetry, when set, is called before each wait for a retry, for
	// metrics.
	OnRetry func(ctx context.Context, r Retry)
	// Now is the clock used for x-ratelimit-reset; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.MinWait <= 0 {
		c.MinWait = DefaultMinWait
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxWait < c.MinWait {
		c.MaxWait = c.MinWait
	}
	if c.MaxRateLimitWait <= 0 {
		c.MaxRateLimitWait = DefaultMaxRateLimitWait
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Base == nil {
		c.Base = cleanhttp.DefaultPooledTransport()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Transport is an http.RoundTripper that retries GitHub API requests:
//
//   - connection errors and 5xx answers are retried for idempotent methods
//     (GET, HEAD, OPTIONS, PUT, DELETE) with exponential backoff;
//   - a non-idempotent request (POST, PATCH) is retried after a connection
//     error only when it was provably never written to the wire;
//   - 403 and 429 answers that are rate limits (Retry-After,
//     x-ratelimit-remaining: 0, or a secondary-rate-limit message) are
//     retried for every method, since GitHub did not act on them, after the
//     wait GitHub asks for, unless that wait exceeds MaxRateLimitWait or the
//     request's deadline;
//   - when it gives up, GitHub's last answer is returned as it is, so
//     go-github turns it into its typed errors.
type Transport struct {
	rt  *retryablehttp.RoundTripper
	cfg Config
}

// NewTransport returns a retrying transport configured by cfg.
func NewTransport(cfg Config) *Transport {
	cfg = cfg.withDefaults()
	t := &Transport{cfg: cfg}
	rc := &retryablehttp.Client{
		HTTPClient: &http.Client{Transport: requestSetter{cfg.Base}, Timeout: cfg.AttemptTimeout, CheckRedirect: noRedirects},
		// go-retryablehttp would log every failed attempt at ERROR;
		// checkRetry logs one WARN line per retry instead.
		Logger:       nil,
		RetryWaitMin: cfg.MinWait,
		RetryWaitMax: cfg.MaxWait,
		RetryMax:     cfg.MaxRetries,
		CheckRetry:   t.checkRetry,
		Backoff:      t.backoff,
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
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// go-retryablehttp reads the body into memory for its attempts
		// but does not close it, which a RoundTripper must.
		defer req.Body.Close()
	}
	a := &attempt{idempotent: Idempotent(req), method: req.Method, path: req.URL.Path}
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

// Idempotent reports whether a request may be repeated without changing
// its effect: by method, or when marked with MarkIdempotent.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	v, _ := req.Context().Value(idempotentKey{}).(bool)
	return v
}

type idempotentKey struct{}

// MarkIdempotent returns a context whose requests the transport may retry
// like a GET, for POSTs that are safe to repeat (creating an installation
// token, for example).
func MarkIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// Retry describes one retry the transport is about to make.
type Retry struct {
	// Attempt is the number of the attempt that failed (1 for the first).
	Attempt int
	// Wait is how long the transport waits before the next attempt.
	Wait time.Duration
	// Cause is one of the Cause* constants.
	Cause string
	// StatusCode is GitHub's answer; 0 after a connection error.
	StatusCode   int
	Method, Path string
	Err          error
}

// Causes of a retry, a small fixed set for metric labels.
const (
	CauseConnection = "connection"
	CauseTimeout    = "timeout"
	CauseServer     = "5xx"
	CauseRateLimit  = "rate_limit"
	CauseSecondary  = "secondary_rate_limit"
)

func (t *Transport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
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
		r.Cause = CauseConnection
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			r.Cause = CauseTimeout
		}
	case a.limited.Load() && resp.Header.Get("X-Ratelimit-Remaining") == "0":
		r.Cause, r.StatusCode = CauseRateLimit, resp.StatusCode
	case a.limited.Load():
		r.Cause, r.StatusCode = CauseSecondary, resp.StatusCode
	default:
		r.Cause, r.StatusCode = CauseServer, resp.StatusCode
	}
	attrs := []slog.Attr{slog.Int("attempt", r.Attempt), slog.Duration("wait", r.Wait), slog.String("cause", r.Cause),
		slog.String("method", r.Method), slog.String("path", r.Path)}
	if r.StatusCode != 0 {
		attrs = append(attrs, slog.Int("status", r.StatusCode))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	t.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "retrying GitHub request", attrs...)
	if t.cfg.OnRetry != nil {
		t.cfg.OnRetry(ctx, r)
	}
	return ok, cerr
}

func (t *Transport) decide(ctx context.Context, resp *http.Response, err error) (bool, error) {
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
			t.cfg.Logger.DebugContext(ctx, "github rate limit wait exceeds cap; passing the answer through",
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

func (t *Transport) backoff(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
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

// RateLimitWait reports whether resp is a GitHub rate-limit answer and how
// long GitHub asks the client to wait before trying again.
func RateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
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

func (t *Transport) rateLimitWait(resp *http.Response) (time.Duration, bool) {
	return RateLimitWait(resp, t.cfg.Now())
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
