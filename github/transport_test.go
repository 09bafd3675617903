package github

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/internal/wait"
)

// answer is one scripted server answer.
type answer func(w http.ResponseWriter, r *http.Request)

// received is what the server saw of one request.
type received struct {
	method, body, authorization string
}

// scripted answers requests from a list, then 200 {"ok":true}; it records
// every request it sees.
type scripted struct {
	mu      sync.Mutex
	answers []answer
	seen    []received
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, received{r.Method, string(b), r.Header.Get("Authorization")})
	var next answer
	if len(s.answers) > 0 {
		next, s.answers = s.answers[0], s.answers[1:]
	}
	s.mu.Unlock()
	if next != nil {
		next(w, r)
		return
	}
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *scripted) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.seen...)
}

// serve starts an httptest server answering with answers, closed at the
// end of the test.
func serve(t *testing.T, answers ...answer) (*scripted, *httptest.Server) {
	t.Helper()
	s := &scripted{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// errorBody is the body status answers with.
func errorBody(code int) string { return fmt.Sprintf(`{"message":"status %d"}`, code) }

// status answers code with headers given as name, value pairs.
func status(code int, hdr ...string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, errorBody(code))
	}
}

const secondaryBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`

// secondary answers GitHub's secondary rate limit.
func secondary(hdr ...string) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, secondaryBody)
	}
}

// hangUp closes the connection after the request was read: the request
// reached GitHub, the answer was lost.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// t0 is the fake clock's "now" for x-ratelimit-reset answers.
var t0 = time.Unix(1_700_000_000, 0)

// clockFor returns an x-ratelimit-reset value and a clock under which
// RateLimitWait computes exactly wait for it.
func clockFor(wait time.Duration) (reset string, now func() time.Time) {
	// wait = reset - now + 1s
	at := t0.Add(time.Second - wait)
	return strconv.FormatInt(t0.Unix(), 10), func() time.Time { return at }
}

// primary answers GitHub's primary rate limit whose reset, by the clock
// returned with it, is wait away.
func primary(wait time.Duration) (answer, func() time.Time) {
	reset, now := clockFor(wait)
	return status(http.StatusForbidden, "X-RateLimit-Limit", "5000", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset), now
}

// fastConfig keeps real sleeps to a millisecond or two.
func fastConfig() retryConfig {
	return retryConfig{RetryPolicy: RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxRateLimitWait: 2 * time.Second}}
}

var bodied = map[string]bool{"POST": true, "PATCH": true, "PUT": true}

// do sends one request through tr the way go-github does, with an
// Authorization header and, for methods that carry one, a body.
func do(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string) (*http.Response, error) {
	t.Helper()
	var body io.Reader
	if bodied[method] {
		body = strings.NewReader(`{"ref":"main"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer ghs_test")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if resp != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	return resp, err
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// checkAttempts asserts that every attempt the server saw was the same
// request: method, body and Authorization header.
func checkAttempts(t *testing.T, s *scripted, method string) {
	t.Helper()
	want := received{method: method, authorization: "Bearer ghs_test"}
	if bodied[method] {
		want.body = `{"ref":"main"}`
	}
	for i, r := range s.requests() {
		assert.Equal(t, want, r, "attempt %d", i+1)
	}
}

func TestTransportPolicy(t *testing.T) {
	t.Parallel()
	zeroPrimary, zeroClock := primary(0)
	// A Retry-After date is read against the transport's clock.
	past := t0.Add(-time.Hour).UTC().Format(http.TimeFormat)
	type tc struct {
		name     string
		method   string
		path     string // appended to the server's URL
		answers  []answer
		code     int    // 0: a transport error is expected
		body     string // expected body of a non-200 answer
		requests int
	}
	cases := []tc{
		// 5xx: retried for idempotent methods only.
		{name: "GET 502 then 503 retried", method: "GET", answers: []answer{status(502), status(503)}, code: 200, requests: 3},
		{name: "GET 500 retried", method: "GET", answers: []answer{status(500)}, code: 200, requests: 2},
		{name: "GET 504 retried", method: "GET", answers: []answer{status(504)}, code: 200, requests: 2},
		{name: "HEAD 502 retried", method: "HEAD", answers: []answer{status(502)}, code: 200, requests: 2},
		{name: "OPTIONS 503 retried", method: "OPTIONS", answers: []answer{status(503)}, code: 200, requests: 2},
		{name: "PUT 502 retried", method: "PUT", answers: []answer{status(502)}, code: 200, requests: 2},
		{name: "DELETE 504 retried", method: "DELETE", answers: []answer{status(504)}, code: 200, requests: 2},
		{name: "POST 502 not retried", method: "POST", answers: []answer{status(502)}, code: 502, body: errorBody(502), requests: 1},
		{name: "POST 500 not retried", method: "POST", answers: []answer{status(500)}, code: 500, body: errorBody(500), requests: 1},
		{name: "PATCH 503 not retried", method: "PATCH", answers: []answer{status(503)}, code: 503, body: errorBody(503), requests: 1},
		{name: "POST git tree retried", method: "POST", path: "/repos/o/r/git/trees", answers: []answer{status(502)}, code: 200, requests: 2},
		{name: "POST git commit on GHES retried", method: "POST", path: "/api/v3/repos/o/r/git/commits", answers: []answer{status(504)}, code: 200, requests: 2},
		{name: "POST installation token retried", method: "POST", path: "/app/installations/7/access_tokens", answers: []answer{status(503)}, code: 200, requests: 2},
		{name: "POST git ref not retried", method: "POST", path: "/repos/o/r/git/refs", answers: []answer{status(502)}, code: 502, body: errorBody(502), requests: 1},
		{name: "PATCH git ref not retried", method: "PATCH", path: "/repos/o/r/git/refs/heads/main", answers: []answer{status(503)}, code: 503, body: errorBody(503), requests: 1},
		{name: "gives up after MaxRetries with GitHub's answer", method: "GET", answers: []answer{status(502), status(502), status(502), status(502), status(502), status(502)}, code: 502, body: errorBody(502), requests: 5},

		// Other answers are final.
		{name: "GET 501 not retried", method: "GET", answers: []answer{status(501)}, code: 501, body: errorBody(501), requests: 1},
		{name: "GET 404 not retried", method: "GET", answers: []answer{status(404)}, code: 404, body: errorBody(404), requests: 1},
		{name: "GET 401 not retried", method: "GET", answers: []answer{status(401)}, code: 401, body: errorBody(401), requests: 1},
		{name: "POST 422 not retried", method: "POST", answers: []answer{status(422)}, code: 422, body: errorBody(422), requests: 1},
		{name: "GET 403 permission not retried", method: "GET", answers: []answer{status(403)}, code: 403, body: errorBody(403), requests: 1},
		{name: "POST 403 permission not retried", method: "POST", answers: []answer{status(403, "X-RateLimit-Remaining", "4999")}, code: 403, body: errorBody(403), requests: 1},

		// Connection lost after the request was sent.
		{name: "GET reset retried", method: "GET", answers: []answer{hangUp}, code: 200, requests: 2},
		{name: "PUT reset retried", method: "PUT", answers: []answer{hangUp, hangUp}, code: 200, requests: 3},
		{name: "POST reset after sending not retried", method: "POST", answers: []answer{hangUp}, code: 0, requests: 1},
		{name: "PATCH reset after sending not retried", method: "PATCH", answers: []answer{hangUp}, code: 0, requests: 1},
		{name: "POST git blob reset retried", method: "POST", path: "/repos/o/r/git/blobs", answers: []answer{hangUp}, code: 200, requests: 2},

		// Rate limits: retried for every method, GitHub did not act.
		{name: "POST primary rate limit retried", method: "POST", answers: []answer{zeroPrimary}, code: 200, requests: 2},
		{name: "GET primary rate limit retried", method: "GET", answers: []answer{zeroPrimary}, code: 200, requests: 2},
		{name: "PATCH 429 with Retry-After 0 retried", method: "PATCH", answers: []answer{status(429, "Retry-After", "0")}, code: 200, requests: 2},
		{name: "POST 403 with a past Retry-After date retried", method: "POST", answers: []answer{status(403, "Retry-After", past)}, code: 200, requests: 2},
		{name: "POST secondary limit with Retry-After 0 retried", method: "POST", answers: []answer{secondary("Retry-After", "0")}, code: 200, requests: 2},
		{name: "POST secondary limit twice retried twice", method: "POST", answers: []answer{secondary("Retry-After", "0"), secondary("Retry-After", past)}, code: 200, requests: 3},
		{name: "rate limit retries are bounded by MaxRetries", method: "POST", answers: []answer{
			status(429, "Retry-After", "0"), status(429, "Retry-After", "0"), status(429, "Retry-After", "0"),
			status(429, "Retry-After", "0"), status(429, "Retry-After", "0"), status(429, "Retry-After", "0"),
		}, code: 429, body: errorBody(429), requests: 5},
		{name: "secondary limit without header waits a minute: beyond the cap", method: "POST", answers: []answer{secondary()}, code: 403, body: secondaryBody, requests: 1},
		{name: "429 without header waits a minute: beyond the cap", method: "GET", answers: []answer{status(429)}, code: 429, body: errorBody(429), requests: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := serve(t, tc.answers...)
			cfg := fastConfig()
			cfg.now = zeroClock
			resp, err := do(t, newRetryTransport(cfg), context.Background(), tc.method, srv.URL+tc.path)
			if tc.code == 0 {
				require.Error(t, err)
				assert.Nil(t, resp)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.code, resp.StatusCode)
				body := readBody(t, resp)
				switch {
				case tc.method == "HEAD":
				case tc.code == 200:
					assert.Equal(t, `{"ok":true}`, body)
				default:
					assert.Equal(t, tc.body, body, "GitHub's answer comes through unchanged")
				}
			}
			assert.Equal(t, tc.requests, s.count(), "requests that reached the server")
			checkAttempts(t, s, tc.method)
		})
	}
}

func TestMaxRetriesNegativeDisablesRetries(t *testing.T) {
	t.Parallel()
	s, srv := serve(t, status(502), status(429, "Retry-After", "0"))
	cfg := fastConfig()
	cfg.MaxRetries = -1
	tr := newRetryTransport(cfg)
	resp, err := do(t, tr, context.Background(), "GET", srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 502, resp.StatusCode)
	resp, err = do(t, tr, context.Background(), "GET", srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, 2, s.count())
}

// failDials fails the first n round trips the way a refused connection
// does, without writing anything, then delegates.
type failDials struct {
	n     int32
	next  http.RoundTripper
	calls atomic.Int32
}

func (f *failDials) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) <= f.n {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	return f.next.RoundTrip(r)
}

func TestRequestNeverSentIsRetried(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"POST", "PATCH", "GET", "PUT"} {
		t.Run(method, func(t *testing.T) {
			s, srv := serve(t)
			cfg := fastConfig()
			base := &failDials{n: 2, next: http.DefaultTransport}
			cfg.base = base
			resp, err := do(t, newRetryTransport(cfg), context.Background(), method, srv.URL)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.EqualValues(t, 3, base.calls.Load(), "two refused dials, then the real attempt")
			assert.Equal(t, 1, s.count(), "the request reached the server once")
			checkAttempts(t, s, method)
		})
	}
}

func TestDialErrorsExhaustRetries(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.MaxRetries = 2
	base := &failDials{n: 1 << 20}
	cfg.base = base
	_, err := do(t, newRetryTransport(cfg), context.Background(), "POST", "http://ghe.invalid/api/v3/x")
	require.Error(t, err)
	var op *net.OpError
	require.ErrorAs(t, err, &op, "the last connection error reaches the caller")
	assert.Equal(t, "dial", op.Op)
	assert.EqualValues(t, 3, base.calls.Load(), "first attempt and MaxRetries retries")
}

// countingBase counts round trips and delegates.
type countingBase struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (c *countingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

func TestCertificateErrorNotRetried(t *testing.T) {
	t.Parallel()
	var handled atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handled.Add(1) }))
	defer srv.Close()
	srv.Config.ErrorLog = discardLog() // the failed handshakes

	cfg := fastConfig()
	// A transport that does not trust the test server's certificate.
	base := &countingBase{next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	cfg.base = base
	_, err := do(t, newRetryTransport(cfg), context.Background(), "GET", srv.URL)
	require.Error(t, err)
	var certErr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &certErr)
	assert.EqualValues(t, 1, base.calls.Load(), "a certificate error is permanent: one attempt")
	assert.Zero(t, handled.Load())
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	// The first request hangs until the client gives up on it.
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	cfg := fastConfig()
	cfg.AttemptTimeout = 100 * time.Millisecond

	t.Run("GET is retried", func(t *testing.T) {
		s, srv := serve(t, hang)
		resp, err := do(t, newRetryTransport(cfg), context.Background(), "GET", srv.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 2, s.count())
	})
	t.Run("POST sent is not retried", func(t *testing.T) {
		s, srv := serve(t, hang)
		_, err := do(t, newRetryTransport(cfg), context.Background(), "POST", srv.URL)
		require.Error(t, err)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout(), "%v", err)
		assert.Equal(t, 1, s.count())
	})
}

// waits records the retrying transport's waits instead of spending them
// (retryConfig.sleep).
type waits struct {
	mu  sync.Mutex
	got []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func TestRateLimitWaitIsHonoured(t *testing.T) {
	t.Parallel()
	t.Run("Retry-After seconds", func(t *testing.T) {
		t.Parallel()
		s, srv := serve(t, secondary("Retry-After", "1"))
		w := &waits{}
		cfg := fastConfig()
		cfg.sleep = w.sleep
		resp, err := do(t, newRetryTransport(cfg), context.Background(), "POST", srv.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []time.Duration{time.Second}, w.all(), "waited as GitHub said")
		assert.Equal(t, 2, s.count())
		checkAttempts(t, s, "POST")
	})
	t.Run("x-ratelimit-reset", func(t *testing.T) {
		t.Parallel()
		// The one real wait: the default sleep waits what it is asked.
		limited, now := primary(100 * time.Millisecond)
		s, srv := serve(t, limited)
		w := &waits{}
		cfg := fastConfig()
		cfg.now = now
		cfg.sleep = func(ctx context.Context, d time.Duration) error {
			_ = w.sleep(ctx, d)
			return wait.Sleep(ctx, d)
		}
		start := time.Now()
		resp, err := do(t, newRetryTransport(cfg), context.Background(), "POST", srv.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []time.Duration{100 * time.Millisecond}, w.all(), "waited until the reset")
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "waited until the reset")
		assert.Equal(t, 2, s.count())
	})
	t.Run("base transport that leaves Response.Request unset", func(t *testing.T) {
		t.Parallel()
		// A fake transport built on httptest.ResponseRecorder does not set
		// Response.Request; GitHub's wait must be honoured all the same.
		_, now := clockFor(300 * time.Millisecond)
		reset, _ := clockFor(0)
		var calls atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			if calls.Add(1) == 1 {
				rec.Header().Set("X-RateLimit-Remaining", "0")
				rec.Header().Set("X-RateLimit-Reset", reset)
				rec.WriteHeader(403)
			}
			_, _ = io.WriteString(rec, "{}")
			return rec.Result(), nil
		})
		w := &waits{}
		cfg := fastConfig()
		cfg.base, cfg.now, cfg.sleep = base, now, w.sleep
		resp, err := do(t, newRetryTransport(cfg), context.Background(), "GET", "http://fake.invalid/api/v3/x")
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []time.Duration{300 * time.Millisecond}, w.all(), "waited until the reset")
		assert.EqualValues(t, 2, calls.Load())
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRateLimitBeyondCapPassesThrough(t *testing.T) {
	t.Parallel()
	hourReset, hourClock := clockFor(time.Hour)
	for _, tc := range []struct {
		name   string
		answer answer
		now    func() time.Time
		code   int
		header [2]string // a header that must come through
		body   string
	}{
		{
			name:   "secondary limit, Retry-After seconds",
			answer: secondary("Retry-After", "30"),
			code:   403,
			header: [2]string{"Retry-After", "30"},
			body:   secondaryBody,
		},
		{
			name:   "Retry-After date",
			answer: status(429, "Retry-After", t0.Add(time.Hour).UTC().Format(http.TimeFormat)),
			now:    func() time.Time { return t0 },
			code:   429,
			header: [2]string{"Retry-After", t0.Add(time.Hour).UTC().Format(http.TimeFormat)},
			body:   errorBody(429),
		},
		{
			name:   "primary limit resetting in an hour",
			answer: status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", hourReset),
			now:    hourClock,
			code:   403,
			header: [2]string{"X-RateLimit-Reset", hourReset},
			body:   errorBody(403),
		},
		{
			name:   "secondary limit without header (a minute)",
			answer: secondary(),
			code:   403,
			header: [2]string{"Content-Length", strconv.Itoa(len(secondaryBody))},
			body:   secondaryBody,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := serve(t, tc.answer)
			w := &waits{}
			cfg := fastConfig()
			cfg.now, cfg.sleep = tc.now, w.sleep
			for _, method := range []string{"GET", "POST"} {
				resp, err := do(t, newRetryTransport(cfg), context.Background(), method, srv.URL)
				require.NoError(t, err)
				assert.Equal(t, tc.code, resp.StatusCode)
				assert.Equal(t, tc.header[1], resp.Header.Get(tc.header[0]))
				assert.Equal(t, tc.body, readBody(t, resp), "the answer's body is readable")
				s.mu.Lock()
				s.answers = []answer{tc.answer}
				s.mu.Unlock()
			}
			assert.Empty(t, w.all(), "no wait was attempted")
			assert.Equal(t, 2, s.count(), "one request per call")
		})
	}
}

func TestRateLimitBeyondDeadlinePassesThrough(t *testing.T) {
	t.Parallel()
	t.Run("real clock, Retry-After", func(t *testing.T) {
		s, srv := serve(t, secondary("Retry-After", "5"))
		w := &waits{}
		cfg := fastConfig()
		cfg.MaxRateLimitWait, cfg.sleep = time.Minute, w.sleep
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := do(t, newRetryTransport(cfg), ctx, "POST", srv.URL)
		require.NoError(t, err, "GitHub's answer, not a deadline error")
		assert.Equal(t, 403, resp.StatusCode)
		assert.Equal(t, "5", resp.Header.Get("Retry-After"))
		assert.Equal(t, secondaryBody, readBody(t, resp))
		assert.Empty(t, w.all(), "a wait past the deadline is not attempted")
		assert.Equal(t, 1, s.count())
	})
	t.Run("fake clock, x-ratelimit-reset", func(t *testing.T) {
		// Config.Now is the clock of x-ratelimit-reset; the deadline is in
		// real time. A clock far from real time must not confuse the two.
		limited, now := primary(5 * time.Second)
		s, srv := serve(t, limited)
		cfg := fastConfig()
		w := &waits{}
		cfg.MaxRateLimitWait, cfg.now, cfg.sleep = time.Minute, now, w.sleep
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := do(t, newRetryTransport(cfg), ctx, "GET", srv.URL)
		require.NoError(t, err, "GitHub's answer, not a deadline error")
		assert.Equal(t, 403, resp.StatusCode)
		assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, errorBody(403), readBody(t, resp))
		assert.Empty(t, w.all(), "a wait past the deadline is not attempted")
		assert.Equal(t, 1, s.count())
	})
	t.Run("a wait within the deadline is taken", func(t *testing.T) {
		limited, now := primary(50 * time.Millisecond)
		s, srv := serve(t, limited)
		cfg := fastConfig()
		cfg.now = now
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := do(t, newRetryTransport(cfg), ctx, "POST", srv.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 2, s.count())
	})
}

func TestRetryCancelDuringRateLimitWait(t *testing.T) {
	t.Parallel()
	// The wait is an hour: were it not cut short, the test would time out.
	s, srv := serve(t, secondary("Retry-After", "3600"))
	cfg := fastConfig()
	cfg.MaxRateLimitWait = 2 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	resp, err := do(t, newRetryTransport(cfg), ctx, "POST", srv.URL)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, resp)
	assert.Equal(t, 1, s.count())
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	// The wait is an hour: were it not cut short, the test would time out.
	s, srv := serve(t, status(502), status(502))
	cfg := retryConfig{RetryPolicy: RetryPolicy{MinWait: time.Hour, MaxWait: time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := do(t, newRetryTransport(cfg), ctx, "GET", srv.URL)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, s.count())
}

func TestAlreadyCanceled(t *testing.T) {
	t.Parallel()
	s, srv := serve(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := do(t, newRetryTransport(fastConfig()), ctx, "GET", srv.URL)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, s.count())
}

func Test5xxRetryAfterIsBoundedByMaxWait(t *testing.T) {
	t.Parallel()
	// A 503 carrying Retry-After is not a rate limit: MinWait and MaxWait
	// bound its backoff, however long the server asks for.
	for _, code := range []int{503, 502} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			s, srv := serve(t, status(code, "Retry-After", "3600"))
			w := &waits{}
			cfg := fastConfig()
			cfg.sleep = w.sleep
			resp, err := do(t, newRetryTransport(cfg), context.Background(), "GET", srv.URL)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			got := w.all()
			require.Len(t, got, 1)
			assert.LessOrEqual(t, got[0], cfg.MaxWait)
			assert.Equal(t, 2, s.count())
		})
	}
}

func TestCanceledAfterAnswerReturnsNoResponse(t *testing.T) {
	t.Parallel()
	// The caller's context ends just as GitHub's answer arrives: the
	// transport reports the cancellation and does not also hand back a
	// response (net/http would log and drop it, leaking its body).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := &closeTracker{Reader: strings.NewReader(`{"ok":true}`)}
	cfg := fastConfig()
	cfg.base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		cancel()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: r}, nil
	})
	req, err := http.NewRequestWithContext(ctx, "GET", "http://fake.invalid/api/v3/x", nil)
	require.NoError(t, err)
	resp, err := newRetryTransport(cfg).RoundTrip(req)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, resp)
	assert.True(t, body.closed, "the dropped answer's body is closed")
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	s, srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	})
	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	resp, err := newRetryTransport(fastConfig()).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "the caller (go-github) decides about redirects")
	assert.Equal(t, "/elsewhere", resp.Header.Get("Location"))
	assert.Equal(t, 1, s.count())
}

func TestRoundTripLeavesTheRequestAlone(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, status(502))
	req, err := http.NewRequest("PUT", srv.URL, strings.NewReader(`{"x":1}`))
	require.NoError(t, err)
	ctx := req.Context()
	resp, err := newRetryTransport(fastConfig()).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, ctx, req.Context(), "the caller's request keeps its context")
}

func TestConcurrentRequestsShareOneTransport(t *testing.T) {
	t.Parallel()
	// Each request fails once with 502 (keyed by its path), then succeeds.
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		n := seen[r.URL.Path]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(502)
			return
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	tr := newRetryTransport(fastConfig())
	client := &http.Client{Transport: tr}
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/r/" + strconv.Itoa(i)
			method := "GET"
			if i%2 == 1 {
				method = "DELETE"
			}
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != path {
				errs <- fmt.Errorf("%s: %d %q", path, resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, seen, n)
	for p, c := range seen {
		assert.Equal(t, 2, c, p)
	}
}

// records is a slog handler that keeps every record.
type records struct {
	mu   sync.Mutex
	msgs []string
	buf  bytes.Buffer
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	fmt.Fprintf(&h.buf, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&h.buf, " %s=%v", a.Key, a.Value); return true })
	h.buf.WriteByte('\n')
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func TestRetryLogger(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, status(502), secondary("Retry-After", "30"))
	h := &records{}
	cfg := fastConfig()
	cfg.logger = slog.New(h)
	tr := newRetryTransport(cfg)
	resp, err := do(t, tr, context.Background(), "GET", srv.URL+"/repos/acme/api")
	require.NoError(t, err)
	assert.Equal(t, 403, resp.StatusCode)
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.Equal(t, []string{"retrying GitHub request", "github rate limit wait exceeds cap; passing the answer through"}, h.msgs,
		"one line per retry, none per failed attempt")
	assert.Contains(t, h.buf.String(), "WARN retrying GitHub request attempt=1 wait=")
	assert.Contains(t, h.buf.String(), "cause=5xx method=GET path=/repos/acme/api status=502")
	assert.NotContains(t, h.buf.String(), "ERROR", "a retry is not an error")
	assert.NotContains(t, h.buf.String(), "ghs_test", "no token in the log")
}

func TestOnRetryCauses(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, status(502), secondary("Retry-After", "0"), status(200))
	var got []Retry
	cfg := fastConfig()
	cfg.onRetry = func(_ context.Context, r Retry) { got = append(got, r) }
	resp, err := do(t, newRetryTransport(cfg), context.Background(), "GET", srv.URL+"/repos/acme/api")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	require.Len(t, got, 2)
	assert.Equal(t, causeServer, got[0].Cause)
	assert.Equal(t, 1, got[0].Attempt)
	assert.Equal(t, causeSecondary, got[1].Cause)
	assert.Equal(t, 2, got[1].Attempt)

	// The last attempt that fails is not a retry.
	got = nil
	_, srv = serve(t, status(502), status(502), status(502), status(502), status(502), status(502))
	resp, err = do(t, newRetryTransport(cfg), context.Background(), "GET", srv.URL+"/x")
	require.NoError(t, err)
	assert.Equal(t, 502, resp.StatusCode)
	assert.Len(t, got, defaultMaxRetries)
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func TestRoundTripClosesTheRequestBody(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, status(502))
	for _, tc := range []struct {
		name string
		base http.RoundTripper
		url  string
	}{
		{"answered", nil, srv.URL},
		{"connection refused", &failDials{n: 1 << 20}, "http://ghe.invalid/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.base = tc.base
			body := &closeTracker{Reader: strings.NewReader(`{"ref":"main"}`)}
			req, err := http.NewRequest("POST", tc.url, body)
			require.NoError(t, err)
			resp, err := newRetryTransport(cfg).RoundTrip(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			assert.True(t, body.closed)
		})
	}
}
