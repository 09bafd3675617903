package github_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

const (
	repoRoute     = "GET /repos/{owner}/{repo}"
	dispatchRoute = "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"
	tokenRoute    = "POST /app/installations/{installation_id}/access_tokens"
)

// fast keeps backoff sleeps to a millisecond or two.
var fast = github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxRateLimitWait: 3 * time.Second}

type setup struct {
	srv     *githubtest.Server
	f       *github.ClientFactory
	tokens  *github.TokenCache
	inst    githubtest.AppInstallation
	headers *recorder
}

// recorder keeps the headers of every request below the retry layer, so
// each attempt is seen.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, &http.Request{Method: req.Method, URL: req.URL, Header: req.Header.Clone()})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// last returns the last request whose path ends with suffix.
func (r *recorder) last(t *testing.T, suffix string) *http.Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if strings.HasSuffix(r.reqs[i].URL.Path, suffix) {
			return r.reqs[i]
		}
	}
	t.Fatalf("no request to ...%s", suffix)
	return nil
}

func newSetup(t *testing.T, opts ...github.Option) *setup {
	t.Helper()
	srv := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(srv.Close)
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", DefaultBranch: "trunk", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})
	rec := &recorder{}
	f, err := github.NewClientFactory(append([]github.Option{github.WithBaseURL(srv.URL), github.WithRetryPolicy(fast), github.WithHTTPTransport(rec)}, opts...)...)
	require.NoError(t, err)
	tokens, err := f.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	return &setup{srv: srv, f: f, tokens: tokens, inst: inst, headers: rec}
}

// recordedWaits records the retrying transport's waits instead of
// spending them (see github.WithSleep).
type recordedWaits struct {
	mu  sync.Mutex
	got []time.Duration
}

func (w *recordedWaits) option() github.Option {
	return github.WithSleep(func(ctx context.Context, d time.Duration) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.got = append(w.got, d)
		return ctx.Err()
	})
}

func (w *recordedWaits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func (s *setup) installationClient(t *testing.T, id int64) *gh.Client {
	t.Helper()
	c, err := s.f.Client(credentials.ForInstallation(s.tokens, id, "test"))
	require.NoError(t, err)
	return c
}

func dispatch(ctx context.Context, c *gh.Client) error {
	_, err := c.Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml", gh.CreateWorkflowDispatchEventRequest{Ref: "trunk"})
	return err
}

func TestInstallationClient(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := s.installationClient(t, s.inst.ID)
	assert.Equal(t, s.srv.URL, c.BaseURL.String())
	assert.True(t, strings.HasSuffix(c.UploadURL.String(), "/api/uploads/"), c.UploadURL.String())

	repo, resp, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "acme/api", repo.GetFullName())
	assert.Equal(t, "trunk", repo.GetDefaultBranch())
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, 1, s.srv.TokenExchanges(s.inst.ID), "the client fetches tokens from the shared cache")
	assert.Equal(t, 2, s.srv.RequestCount(repoRoute))

	last := s.headers.last(t, "/repos/acme/api")
	issued := s.srv.IssuedTokens()
	require.Len(t, issued, 1)
	assert.Equal(t, "Bearer "+issued[0], last.Header.Get("Authorization"))
	assert.Equal(t, github.DefaultUserAgent, last.Header.Get("User-Agent"))
	assert.Equal(t, "2022-11-28", last.Header.Get("X-GitHub-Api-Version"))

	// A workflow dispatch through the same client.
	require.NoError(t, dispatch(context.Background(), c))
	require.Len(t, s.srv.Dispatches(), 1)
	assert.Equal(t, "trunk", s.srv.Dispatches()[0].Ref)
}

func TestInstallationClientFollowsTokenRefresh(t *testing.T) {
	t.Parallel()
	// Tokens come from the source per request: a long-lived client picks
	// up a new token once the old one is revoked.
	s := newSetup(t)
	c := s.installationClient(t, s.inst.ID)
	ctx := context.Background()
	_, _, err := c.Repositories.Get(ctx, "acme", "api")
	require.NoError(t, err)
	first := s.headers.last(t, "/repos/acme/api").Header.Get("Authorization")
	s.tokens.Revoke(s.inst.ID)
	_, _, err = c.Repositories.Get(ctx, "acme", "api")
	require.NoError(t, err)
	second := s.headers.last(t, "/repos/acme/api").Header.Get("Authorization")
	assert.Equal(t, 2, s.srv.TokenExchanges(s.inst.ID))
	assert.NotEqual(t, first, second)
}

func TestStaticTokenClient(t *testing.T) {
	t.Parallel()
	s := newSetup(t, github.WithUserAgent("acme-deployer/1.0"))
	s.srv.AddStaticToken("ghp_static")
	c, err := s.f.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	require.NoError(t, err)
	repo, _, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, "acme/api", repo.GetFullName())
	last := s.headers.last(t, "/repos/acme/api")
	assert.Equal(t, "Bearer ghp_static", last.Header.Get("Authorization"))
	assert.Equal(t, "acme-deployer/1.0", last.Header.Get("User-Agent"))
	assert.Zero(t, s.srv.TotalTokenExchanges(), "a static token needs no exchange")

	c, err = s.f.Client(credentials.StaticToken(credentials.NewSecret("ghp_wrong"), "test"))
	require.NoError(t, err)
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er)
	assert.Equal(t, 401, er.Response.StatusCode)
	assert.Equal(t, "Bad credentials", er.Message)
	assert.NotContains(t, err.Error(), "ghp_wrong")
}

func TestZeroCredential(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c, err := s.f.Client(credentials.Credential{})
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
	assert.Nil(t, c)
}

func TestInstallationCredentialWithoutTokenSource(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c, err := s.f.Client(credentials.ForInstallation(nil, s.inst.ID, "test"))
	require.NoError(t, err)
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
	assert.Zero(t, s.srv.RequestCount(repoRoute), "nothing is sent without a token")
}

// failingSource is a TokenSource that always fails.
type failingSource struct{ err error }

func (f failingSource) Token(context.Context, int64) (credentials.InstallationToken, error) {
	return credentials.InstallationToken{}, f.err
}

// closeTracker records whether Close was called.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestTokenFailureClosesTheRequestBody(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	boom := errors.New("boom")
	c, err := s.f.Client(credentials.ForInstallation(failingSource{boom}, 1, "test"))
	require.NoError(t, err)
	body := &closeTracker{Reader: strings.NewReader(`{"ref":"main"}`)}
	req, err := http.NewRequest("POST", s.srv.URL+"repos/acme/api/dispatches", body)
	require.NoError(t, err)
	resp, err := c.Client().Transport.RoundTrip(req)
	require.ErrorIs(t, err, boom)
	assert.Nil(t, resp)
	assert.True(t, body.closed, "a RoundTripper closes the body, even on error")
}

func TestRequestIsNotModified(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.srv.AddStaticToken("ghp_static")
	c, err := s.f.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	require.NoError(t, err)
	req, err := c.NewRequest("GET", "repos/acme/api", nil)
	require.NoError(t, err)
	var repo gh.Repository
	_, err = c.Do(context.Background(), req, &repo)
	require.NoError(t, err)
	assert.Equal(t, "acme/api", repo.GetFullName())
	assert.Empty(t, req.Header.Get("Authorization"), "the token is set on a copy of the caller's request")
}

func TestAppClient(t *testing.T) {
	t.Parallel()
	s := newSetup(t, github.WithUserAgent("acme-deployer/1.0"))
	c, err := s.f.AppClient(s.srv.AppConfig())
	require.NoError(t, err)
	assert.Equal(t, s.srv.URL, c.BaseURL.String())
	app, _, err := c.Apps.Get(context.Background(), "")
	require.NoError(t, err)
	assert.Equal(t, s.srv.AppID, app.GetID())
	assert.Equal(t, s.srv.AppSlug, app.GetSlug())
	last := s.headers.last(t, "/app")
	assert.True(t, strings.HasPrefix(last.Header.Get("Authorization"), "Bearer ey"), "a JWT")
	assert.Equal(t, "acme-deployer/1.0", last.Header.Get("User-Agent"))

	other := s.srv.AddInstallation(githubtest.AppInstallation{Account: "globex", AllRepositories: true})
	insts, _, err := c.Apps.ListInstallations(context.Background(), nil)
	require.NoError(t, err)
	var ids []int64
	for _, in := range insts {
		ids = append(ids, in.GetID())
	}
	assert.ElementsMatch(t, []int64{s.inst.ID, other.ID}, ids)
	assert.Zero(t, s.srv.TotalTokenExchanges(), "the App client authenticates with its JWT")
}

func TestAppClientErrors(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	_, err := s.f.AppClient(credentials.AppConfig{})
	require.ErrorIs(t, err, credentials.ErrNotConfigured)

	bad := s.srv.AppConfig()
	bad.PrivateKey = credentials.NewSecret("not a key")
	_, err = s.f.AppClient(bad)
	require.ErrorIs(t, err, credentials.ErrInvalidKey)

	// A key GitHub does not know: the JWT is rejected with 401.
	wrong := s.srv.AppConfig()
	wrong.PrivateKey = credentials.NewSecret(otherKeyPEM())
	c, err := s.f.AppClient(wrong)
	require.NoError(t, err)
	_, _, err = c.Apps.Get(context.Background(), "")
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er)
	assert.Equal(t, 401, er.Response.StatusCode)
}

func TestBaseURLs(t *testing.T) {
	t.Parallel()
	srv := githubtest.NewServer(githubtest.WithContract(t))
	defer srv.Close()
	srv.AddStaticToken("ghp_x")
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api"})
	host := strings.TrimSuffix(srv.URL, "/api/v3/")
	for _, base := range []string{srv.URL, strings.TrimSuffix(srv.URL, "/"), host, host + "/", " " + host + " "} {
		t.Run(base, func(t *testing.T) {
			f, err := github.NewClientFactory(github.WithBaseURL(base))
			require.NoError(t, err)
			assert.Equal(t, srv.URL, f.BaseURL().String(), "GHES hosts get /api/v3/")
			c, err := f.Client(credentials.StaticToken(credentials.NewSecret("ghp_x"), "t"))
			require.NoError(t, err)
			assert.Equal(t, srv.URL, c.BaseURL.String())
			assert.Equal(t, host+"/api/uploads/", c.UploadURL.String())
			repo, _, err := c.Repositories.Get(context.Background(), "acme", "api")
			require.NoError(t, err)
			assert.Equal(t, "acme/api", repo.GetFullName())
		})
	}
}

func TestDefaultBaseURL(t *testing.T) {
	t.Parallel()
	f, err := github.NewClientFactory()
	require.NoError(t, err)
	assert.Equal(t, "https://api.github.com/", f.BaseURL().String())
	c, err := f.Client(credentials.StaticToken(credentials.NewSecret("x"), "t"))
	require.NoError(t, err)
	assert.Equal(t, "https://api.github.com/", c.BaseURL.String())
	assert.Equal(t, "https://uploads.github.com/", c.UploadURL.String())

	// BaseURL hands out a copy.
	f.BaseURL().Host = "evil.example.com"
	assert.Equal(t, "https://api.github.com/", f.BaseURL().String())
	c2, err := f.Client(credentials.StaticToken(credentials.NewSecret("x"), "t"))
	require.NoError(t, err)
	c.BaseURL.Host = "evil.example.com"
	assert.Equal(t, "https://api.github.com/", c2.BaseURL.String(), "clients do not share their URLs")
}

func TestBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"ftp://ghe.example.com", "ghe.example.com", "https://", "https://user:pw@ghe.example.com", "https://ghe.example.com/?x=1", "http://[::1"} {
		t.Run(bad, func(t *testing.T) {
			f, err := github.NewClientFactory(github.WithBaseURL(bad))
			require.Error(t, err)
			assert.Nil(t, f)
		})
	}
}

func TestUserAgent(t *testing.T) {
	t.Parallel()
	// Seen by the server itself, not only below the retry layer.
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent"))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"full_name":"acme/api"}`)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		opts []github.Option
		want string
	}{
		{nil, github.DefaultUserAgent},
		{[]github.Option{github.WithUserAgent("")}, github.DefaultUserAgent},
		{[]github.Option{github.WithUserAgent("acme-deployer/1.0 (+https://acme.example)")}, "acme-deployer/1.0 (+https://acme.example)"},
	} {
		f, err := github.NewClientFactory(append([]github.Option{github.WithBaseURL(srv.URL)}, tc.opts...)...)
		require.NoError(t, err)
		c, err := f.Client(credentials.StaticToken(credentials.NewSecret("x"), "t"))
		require.NoError(t, err)
		_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
		require.NoError(t, err)
		mu.Lock()
		assert.Equal(t, tc.want, agents[len(agents)-1])
		mu.Unlock()
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := s.installationClient(t, s.inst.ID)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client per goroutine and a shared one: both are fine.
			mine := s.installationClient(t, s.inst.ID)
			for _, cl := range []*gh.Client{c, mine} {
				if _, _, err := cl.Repositories.Get(context.Background(), "acme", "api"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 1, s.srv.TokenExchanges(s.inst.ID), "one exchange shared by every caller")
	assert.Equal(t, 32, s.srv.RequestCount(repoRoute))
}

// logRecords is a slog handler that prints every record, attributes
// included, into a buffer.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(&h.buf, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&h.buf, " %s=%v", a.Key, a.Value); return true })
	h.buf.WriteByte('\n')
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }
func (h *logRecords) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

func TestLogger(t *testing.T) {
	t.Parallel()
	logs := &logRecords{}
	s := newSetup(t, github.WithLogger(slog.New(logs)))
	s.srv.InjectFault(githubtest.Fault{Route: repoRoute, Status: 502})
	s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Hour})
	c := s.installationClient(t, s.inst.ID)
	_, _, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	require.Error(t, dispatch(context.Background(), c))
	out := logs.String()
	assert.Contains(t, out, "WARN retrying GitHub request attempt=1")
	assert.Contains(t, out, "rate limit wait exceeds cap")
	for _, tok := range s.srv.IssuedTokens() {
		assert.NotContains(t, out, tok, "no token in the log")
	}
}

func TestAPIVersionOption(t *testing.T) {
	t.Parallel()
	srv := githubtest.NewServer(githubtest.WithContract(t))
	defer srv.Close()
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api"})
	for _, v := range []string{"", github.APIVersion20221128, github.APIVersion20260310} {
		// An empty version means the default.
		f, err := github.NewClientFactory(github.WithAPIVersion(v), github.WithBaseURL(srv.URL))
		require.NoError(t, err)
		tokens, err := f.TokenCache(srv.AppConfig())
		require.NoError(t, err)
		c, err := f.Client(credentials.ForInstallation(tokens, inst.ID, "test"))
		require.NoError(t, err)
		_, resp, err := c.Repositories.Get(context.Background(), "acme", "api")
		require.NoError(t, err)
		want := v
		if want == "" {
			want = github.DefaultAPIVersion
		}
		assert.Equal(t, want, f.APIVersion())
		assert.Equal(t, want, resp.Header.Get("X-GitHub-Api-Version-Selected"), "the version GitHub served")
	}
	_, err := github.NewClientFactory(github.WithAPIVersion("latest"))
	require.Error(t, err)
}
