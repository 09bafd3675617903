package ghhttp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimitWait(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	resp := func(code int, hdr map[string]string, body string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		resp    *http.Response
		wait    time.Duration
		limited bool
	}{
		{"nil", nil, 0, false},
		{"200", resp(200, nil, ""), 0, false},
		{"500 with Retry-After", resp(500, map[string]string{"Retry-After": "5"}, ""), 0, false},
		{"403 permission", resp(403, nil, `{"message":"Resource not accessible by integration"}`), 0, false},
		{"403 Retry-After seconds", resp(403, map[string]string{"Retry-After": "7"}, ""), 7 * time.Second, true},
		{"429 Retry-After seconds", resp(429, map[string]string{"Retry-After": "2"}, ""), 2 * time.Second, true},
		{"403 Retry-After date", resp(403, map[string]string{"Retry-After": now.Add(9 * time.Second).UTC().Format(http.TimeFormat)}, ""), 9 * time.Second, true},
		{"403 Retry-After date in the past", resp(403, map[string]string{"Retry-After": now.Add(-time.Hour).UTC().Format(http.TimeFormat)}, ""), 0, true},
		{"403 primary limit", resp(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)}, ""), 31 * time.Second, true},
		{"403 primary limit already reset", resp(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(-30*time.Second).Unix(), 10)}, ""), 0, true},
		{"403 primary limit without reset", resp(403, map[string]string{"X-RateLimit-Remaining": "0"}, ""), time.Minute, true},
		{"403 remaining not zero", resp(403, map[string]string{"X-RateLimit-Remaining": "12"}, `{"message":"Must have admin rights"}`), 0, false},
		{"403 secondary message", resp(403, nil, `{"message":"You have exceeded a secondary rate limit. Please wait."}`), time.Minute, true},
		{"403 abuse message", resp(403, nil, `{"message":"You have triggered an abuse detection mechanism."}`), time.Minute, true},
		{"403 secondary docs url", resp(403, nil, `{"message":"x","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`), time.Minute, true},
		{"429 bare", resp(429, nil, ""), time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, limited := RateLimitWait(tc.resp, now)
			assert.Equal(t, tc.limited, limited)
			assert.Equal(t, tc.wait, wait)
			if tc.resp != nil {
				// The body is still readable after the peek.
				b, err := io.ReadAll(tc.resp.Body)
				require.NoError(t, err)
				assert.NotNil(t, b)
			}
		})
	}
}

func TestRateLimitWaitLeavesBodyIntact(t *testing.T) {
	body := `{"message":"You have exceeded a secondary rate limit"}` + strings.Repeat(" ", 100<<10)
	r := &http.Response{StatusCode: 403, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
	_, limited := RateLimitWait(r, time.Now())
	require.True(t, limited)
	got, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, body, string(got), "a body longer than the peek comes back whole")
}

func TestParseBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "https://api.github.com/",
		"https://api.github.com":             "https://api.github.com/",
		"https://ghe.example.com":            "https://ghe.example.com/api/v3/",
		"https://ghe.example.com/":           "https://ghe.example.com/api/v3/",
		"https://ghe.example.com/api/v3":     "https://ghe.example.com/api/v3/",
		"http://127.0.0.1:8080/api/v3/":      "http://127.0.0.1:8080/api/v3/",
		"https://foo.api.example.com/custom": "https://foo.api.example.com/custom/",
		" https://ghe.example.com ":          "https://ghe.example.com/api/v3/",
	} {
		u, err := ParseBaseURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, u.String(), in)
	}
	for _, bad := range []string{"ftp://x", "://", "https://", "https://user:pw@ghe.example.com", "https://ghe.example.com/?x=1", "api.github.com"} {
		_, err := ParseBaseURL(bad)
		assert.Error(t, err, bad)
	}
	u, _ := ParseBaseURL("https://ghe.example.com")
	assert.Equal(t, "https://ghe.example.com/api/uploads/", UploadURL(u).String())
	u, _ = ParseBaseURL("")
	assert.Equal(t, "https://uploads.github.com/", UploadURL(u).String())
}

func TestRetryableError(t *testing.T) {
	assert.True(t, retryableError(errors.New("connection reset by peer")))
	assert.True(t, retryableError(&net.OpError{Op: "dial", Err: errors.New("refused")}))
	assert.False(t, retryableError(fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{})))
	assert.False(t, retryableError(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}))
	assert.False(t, retryableError(errors.New(`unsupported protocol scheme "ftp"`)))
}

// scripted answers requests from a list, then 200; it counts requests.
type scripted struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter, r *http.Request)
	count   atomic.Int32
	bodies  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.count.Add(1)
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	var next func(w http.ResponseWriter, r *http.Request)
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

func status(code int, hdr ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"message":"status %d"}`, code)
	}
}

func secondary(hdr ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(403)
		_, _ = io.WriteString(w, `{"message":"You have exceeded a secondary rate limit."}`)
	}
}

func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

var fast = Config{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxRateLimitWait: 2 * time.Second}

func do(t *testing.T, tr http.RoundTripper, ctx context.Context, method, url string, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if resp != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	return resp, err
}

func TestTransportPolicy(t *testing.T) {
	past := func() string { return strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10) }
	for _, tc := range []struct {
		name     string
		method   string
		marked   bool
		answers  []func(http.ResponseWriter, *http.Request)
		code     int // 0: transport error expected
		requests int32
	}{
		{name: "GET 502 retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(502), status(503)}, code: 200, requests: 3},
		{name: "GET 500 retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(500)}, code: 200, requests: 2},
		{name: "GET 501 not retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(501)}, code: 501, requests: 1},
		{name: "GET 404 not retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(404)}, code: 404, requests: 1},
		{name: "PUT 502 retried", method: "PUT", answers: []func(http.ResponseWriter, *http.Request){status(502)}, code: 200, requests: 2},
		{name: "DELETE 504 retried", method: "DELETE", answers: []func(http.ResponseWriter, *http.Request){status(504)}, code: 200, requests: 2},
		{name: "POST 502 not retried", method: "POST", answers: []func(http.ResponseWriter, *http.Request){status(502)}, code: 502, requests: 1},
		{name: "PATCH 503 not retried", method: "PATCH", answers: []func(http.ResponseWriter, *http.Request){status(503)}, code: 503, requests: 1},
		{name: "POST marked idempotent retried", method: "POST", marked: true, answers: []func(http.ResponseWriter, *http.Request){status(502)}, code: 200, requests: 2},
		{name: "GET reset retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){hangUp}, code: 200, requests: 2},
		{name: "POST reset after sending not retried", method: "POST", answers: []func(http.ResponseWriter, *http.Request){hangUp}, code: 0, requests: 1},
		{name: "POST primary rate limit retried", method: "POST", answers: []func(http.ResponseWriter, *http.Request){status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", past())}, code: 200, requests: 2},
		{name: "POST 429 with Retry-After 0 retried", method: "POST", answers: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "0")}, code: 200, requests: 2},
		{name: "secondary limit with Retry-After 0 retried", method: "POST", answers: []func(http.ResponseWriter, *http.Request){secondary("Retry-After", "0")}, code: 200, requests: 2},
		{name: "secondary limit without header waits a minute: beyond the cap", method: "POST", answers: []func(http.ResponseWriter, *http.Request){secondary()}, code: 403, requests: 1},
		{name: "403 permission not retried", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(403)}, code: 403, requests: 1},
		{name: "gives up after max retries", method: "GET", answers: []func(http.ResponseWriter, *http.Request){status(502), status(502), status(502), status(502), status(502), status(502)}, code: 502, requests: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{answers: tc.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			tr := NewTransport(fast)
			ctx := context.Background()
			if tc.marked {
				ctx = MarkIdempotent(ctx)
			}
			resp, err := do(t, tr, ctx, tc.method, srv.URL, `{"x":1}`)
			if tc.code == 0 {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.code, resp.StatusCode)
				b, _ := io.ReadAll(resp.Body)
				if tc.code != 200 {
					assert.Contains(t, string(b), "message", "GitHub's error body comes through")
				}
			}
			srv.Close()
			assert.Equal(t, tc.requests, s.count.Load())
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, b := range s.bodies {
				assert.Equal(t, `{"x":1}`, b, "every attempt sends the whole body")
			}
		})
	}
}

// failFirstDial fails the first round trip the way a refused connection
// does, without writing anything, then delegates.
type failFirstDial struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (f *failFirstDial) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) == 1 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	return f.next.RoundTrip(r)
}

func TestPOSTRetriedWhenNeverSent(t *testing.T) {
	s := &scripted{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cfg := fast
	cfg.Base = &failFirstDial{next: http.DefaultTransport}
	resp, err := do(t, NewTransport(cfg), context.Background(), "POST", srv.URL, "{}")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.EqualValues(t, 1, s.count.Load(), "the request reached the server once")
}

func TestRateLimitWaitIsHonoured(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter, *http.Request){secondary("Retry-After", "1")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	start := time.Now()
	resp, err := do(t, NewTransport(fast), context.Background(), "POST", srv.URL, "{}")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited as GitHub said")
	assert.EqualValues(t, 2, s.count.Load())
}

func TestRateLimitBeyondCapOrDeadlinePassesThrough(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter, *http.Request){secondary("Retry-After", "30"), secondary("Retry-After", "1")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := do(t, NewTransport(fast), context.Background(), "GET", srv.URL, "")
	require.NoError(t, err)
	assert.Equal(t, 403, resp.StatusCode)
	assert.Equal(t, "30", resp.Header.Get("Retry-After"))
	b, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(b), "secondary rate limit")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err = do(t, NewTransport(fast), ctx, "GET", srv.URL, "")
	require.NoError(t, err)
	assert.Equal(t, 403, resp.StatusCode, "a wait past the deadline is not attempted")
	assert.Less(t, time.Since(start), 150*time.Millisecond)
	assert.EqualValues(t, 2, s.count.Load())
}

func TestCancelDuringBackoff(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter, *http.Request){status(502), status(502)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cfg := Config{MinWait: 5 * time.Second, MaxWait: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := do(t, NewTransport(cfg), ctx, "GET", srv.URL, "")
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	resp, err := NewTransport(fast).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "the caller (go-github) decides about redirects")
}

func TestIdempotent(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "PUT": true, "DELETE": true, "POST": false, "PATCH": false} {
		r := httptest.NewRequest(m, "/", nil)
		assert.Equal(t, want, Idempotent(r), m)
	}
	r := httptest.NewRequest("POST", "/", nil).WithContext(MarkIdempotent(context.Background()))
	assert.True(t, Idempotent(r))
}
