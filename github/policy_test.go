package github

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimitWait(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	unix := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	date := func(d time.Duration) string { return now.Add(d).UTC().Format(http.TimeFormat) }
	const (
		permission = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest"}`
		secondary  = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`
	)
	for _, tc := range []struct {
		name    string
		code    int
		hdr     map[string]string
		body    string
		wait    time.Duration
		limited bool
	}{
		{name: "200", code: 200, body: `{}`},
		{name: "404", code: 404, body: `{"message":"Not Found"}`},
		{name: "500 with Retry-After is not a rate limit", code: 500, hdr: map[string]string{"Retry-After": "5"}},
		{name: "503 with Retry-After is not a rate limit", code: 503, hdr: map[string]string{"Retry-After": "5"}},
		{name: "401 with remaining 0 is not a rate limit", code: 401, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(time.Minute)}},
		{name: "403 permission", code: 403, body: permission},
		{name: "403 empty body", code: 403},
		{name: "403 remaining not zero", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": unix(time.Minute)}, body: `{"message":"Must have admin rights"}`},

		{name: "403 Retry-After seconds", code: 403, hdr: map[string]string{"Retry-After": "7"}, wait: 7 * time.Second, limited: true},
		{name: "403 Retry-After zero", code: 403, hdr: map[string]string{"Retry-After": "0"}, wait: 0, limited: true},
		{name: "403 Retry-After padded", code: 403, hdr: map[string]string{"Retry-After": " 3 "}, wait: 3 * time.Second, limited: true},
		{name: "429 Retry-After seconds", code: 429, hdr: map[string]string{"Retry-After": "2"}, wait: 2 * time.Second, limited: true},
		{name: "403 Retry-After date", code: 403, hdr: map[string]string{"Retry-After": date(9 * time.Second)}, wait: 9 * time.Second, limited: true},
		{name: "403 Retry-After date in the past", code: 403, hdr: map[string]string{"Retry-After": date(-time.Hour)}, wait: 0, limited: true},
		{name: "Retry-After wins over the reset", code: 403, hdr: map[string]string{"Retry-After": "4", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(time.Hour)}, wait: 4 * time.Second, limited: true},
		{name: "unparsable Retry-After falls back to the reset", code: 403, hdr: map[string]string{"Retry-After": "soon", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(10 * time.Second)}, wait: 11 * time.Second, limited: true},
		{name: "negative Retry-After is ignored", code: 403, hdr: map[string]string{"Retry-After": "-5"}, body: permission},
		{name: "unparsable Retry-After alone on a 403", code: 403, hdr: map[string]string{"Retry-After": "soon"}, body: permission},

		{name: "403 primary limit", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(30 * time.Second)}, wait: 31 * time.Second, limited: true},
		{name: "429 primary limit", code: 429, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(5 * time.Second)}, wait: 6 * time.Second, limited: true},
		{name: "403 primary limit resetting now", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(0)}, wait: time.Second, limited: true},
		{name: "403 primary limit already reset", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(-30 * time.Second)}, wait: 0, limited: true},
		{name: "403 primary limit without reset", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "0"}, wait: time.Minute, limited: true},
		{name: "403 primary limit with a bad reset", code: 403, hdr: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "tomorrow"}, wait: time.Minute, limited: true},

		{name: "403 secondary message", code: 403, body: secondary, wait: time.Minute, limited: true},
		{name: "403 secondary message, any case", code: 403, body: `{"message":"You have exceeded a SECONDARY RATE LIMIT"}`, wait: time.Minute, limited: true},
		{name: "403 abuse message", code: 403, body: `{"message":"You have triggered an abuse detection mechanism."}`, wait: time.Minute, limited: true},
		{name: "403 secondary docs url", code: 403, body: `{"message":"x","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`, wait: time.Minute, limited: true},
		{name: "403 secondary with Retry-After", code: 403, hdr: map[string]string{"Retry-After": "12"}, body: secondary, wait: 12 * time.Second, limited: true},
		{name: "429 bare", code: 429, wait: time.Minute, limited: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Response{StatusCode: tc.code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			wait, limited := rateLimitWait(r, now)
			assert.Equal(t, tc.limited, limited, "limited")
			assert.Equal(t, tc.wait, wait, "wait")
			b, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(b), "the body is readable whole after the peek")
		})
	}
}

func TestRateLimitWaitOddResponses(t *testing.T) {
	t.Parallel()
	wait, limited := rateLimitWait(nil, time.Now())
	assert.False(t, limited)
	assert.Zero(t, wait)

	for _, body := range []io.ReadCloser{nil, http.NoBody} {
		r := &http.Response{StatusCode: 403, Header: http.Header{}, Body: body}
		_, limited := rateLimitWait(r, time.Now())
		assert.False(t, limited)
		assert.Equal(t, body, r.Body, "an empty body is left alone")
	}

	// A body that fails while being peeked at: not a rate limit, and what
	// was read stays readable, followed by the error.
	r := &http.Response{StatusCode: 403, Header: http.Header{}, Body: io.NopCloser(io.MultiReader(
		strings.NewReader(`{"message":"secondary rate`), iotestErrReader{errors.New("connection reset")}))}
	_, limited = rateLimitWait(r, time.Now())
	assert.False(t, limited)
	b, err := io.ReadAll(r.Body)
	assert.Equal(t, `{"message":"secondary rate`, string(b))
	assert.EqualError(t, err, "connection reset")
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// closeTracker records whether Close was called.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestRateLimitWaitLeavesBodyIntact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		body    string
		limited bool
	}{
		{"secondary message longer than the peek", `{"message":"You have exceeded a secondary rate limit"}` + strings.Repeat(" ", 100<<10), true},
		{"permission error longer than the peek", `{"message":"Resource not accessible by integration"}` + strings.Repeat("x", 3*peekLimit), false},
		{"message after the peek limit is not seen", strings.Repeat(" ", peekLimit) + "secondary rate limit", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := &closeTracker{Reader: strings.NewReader(tc.body)}
			r := &http.Response{StatusCode: 403, Header: http.Header{}, Body: orig}
			_, limited := rateLimitWait(r, time.Now())
			assert.Equal(t, tc.limited, limited)
			got, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(got), "the body comes back whole")
			require.NoError(t, r.Body.Close())
			assert.True(t, orig.closed, "closing the wrapped body closes the original")
		})
	}
}

func TestRetryableError(t *testing.T) {
	t.Parallel()
	cert := &x509.Certificate{}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", errors.New("read tcp: connection reset by peer"), true},
		{"EOF", io.EOF, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"dial error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, true},
		{"url.Error around a dial error", &url.Error{Op: "Get", URL: "https://api.github.com/", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, true},
		{"DNS error", &net.DNSError{Err: "no such host", Name: "ghe.example.com", IsTemporary: true}, true},
		{"client timeout", fmt.Errorf("net/http: request canceled (Client.Timeout exceeded while awaiting headers)"), true},
		{"unknown authority", fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{Cert: cert}), false},
		{"hostname mismatch", x509.HostnameError{Certificate: cert, Host: "x"}, false},
		{"expired certificate", x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}, false},
		{"tls verification error", &url.Error{Op: "Get", URL: "https://x/", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{Cert: cert}}}, false},
		{"unsupported scheme", errors.New(`unsupported protocol scheme "ftp"`), false},
		{"invalid header", errors.New(`net/http: invalid header field value for "Authorization"`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, retryableError(tc.err))
		})
	}
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		want   bool
	}{
		{"GET", true}, {"HEAD", true}, {"OPTIONS", true}, {"PUT", true}, {"DELETE", true},
		{"", true}, // net/http: an empty method means GET
		{"POST", false}, {"PATCH", false}, {"CONNECT", false}, {"TRACE", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = tc.method
		assert.Equal(t, tc.want, idempotent(r), "%q", tc.method)
	}
	for path, want := range map[string]bool{
		"/app/installations/7/access_tokens":           true,
		"/api/v3/app/installations/7/access_tokens":    true,
		"/repos/o/r/git/trees":                         true,
		"/repos/o/r/git/commits/":                      true,
		"/prefix/api/v3/repos/o/r/git/blobs":           true,
		"/repos/o/r/git/refs":                          false,
		"/repos/o/r/actions/workflows/1/dispatches":    false,
		"/repos/o/r/dispatches":                        false,
		"/app/installations/7":                         false,
		"/git/trees":                                   false,
		"/repos/o/r/git/trees/extra":                   false,
		"/app/installations/7/access_tokens/something": false,
	} {
		assert.Equal(t, want, idempotent(httptest.NewRequest("POST", path, nil)), "POST %s", path)
	}
	// Only POSTs: a PATCH to the same paths changes things.
	assert.False(t, idempotent(httptest.NewRequest("PATCH", "/repos/o/r/git/trees", nil)))
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	d := retryConfig{}.withDefaults()
	assert.Equal(t, defaultMaxRetries, d.MaxRetries)
	assert.Equal(t, defaultMinWait, d.MinWait)
	assert.Equal(t, defaultMaxWait, d.MaxWait)
	assert.Equal(t, defaultMaxRateLimitWait, d.MaxRateLimitWait)
	assert.Equal(t, defaultAttemptTimeout, d.AttemptTimeout)
	assert.NotNil(t, d.base)
	assert.NotNil(t, d.logger)
	assert.NotNil(t, d.now)

	assert.Equal(t, 0, RetryPolicy{MaxRetries: -1}.withDefaults().MaxRetries, "negative disables retries")
	assert.Equal(t, 7, RetryPolicy{MaxRetries: 7}.withDefaults().MaxRetries)

	c := RetryPolicy{MinWait: time.Second, MaxWait: time.Millisecond}.withDefaults()
	assert.Equal(t, time.Second, c.MaxWait, "MaxWait is raised to MinWait")
	c = RetryPolicy{MinWait: -time.Second, MaxRateLimitWait: -1, AttemptTimeout: -1}.withDefaults()
	assert.Equal(t, defaultMinWait, c.MinWait)
	assert.Equal(t, defaultMaxRateLimitWait, c.MaxRateLimitWait)
	assert.Equal(t, defaultAttemptTimeout, c.AttemptTimeout)
}
