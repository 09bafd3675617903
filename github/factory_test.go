package github_test

import (
	"context"
	"errors"
	"net/http"
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

const dispatchRoute = "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"

var fast = github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond, MaxRateLimitWait: 3 * time.Second}

type setup struct {
	srv     *githubtest.Server
	f       *github.ClientFactory
	tokens  *credentials.TokenCache
	inst    githubtest.Installation
	headers *recorder
}

// recorder keeps the headers of every request below the retry layer.
type recorder struct {
	mu   sync.Mutex
	reqs []http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Header.Clone())
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func newSetup(t *testing.T, opts ...github.Option) *setup {
	t.Helper()
	srv := githubtest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
	inst := srv.AddInstallation(githubtest.Installation{Account: "acme", Repositories: []string{"acme/api"}})
	rec := &recorder{}
	f, err := github.NewClientFactory(append([]github.Option{github.WithBaseURL(srv.URL), github.WithRetryPolicy(fast), github.WithHTTPTransport(rec)}, opts...)...)
	require.NoError(t, err)
	tokens, err := credentials.NewTokenCache(srv.AppConfig(), credentials.WithTransport(f.Transport()))
	require.NoError(t, err)
	return &setup{srv: srv, f: f, tokens: tokens, inst: inst, headers: rec}
}

func (s *setup) installationClient(t *testing.T, id int64) *gh.Client {
	c, err := s.f.Client(credentials.ForInstallation(s.tokens, id, "test"))
	require.NoError(t, err)
	return c
}

func TestInstallationClient(t *testing.T) {
	s := newSetup(t)
	c := s.installationClient(t, s.inst.ID)
	repo, _, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, "acme/api", repo.GetFullName())
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, 1, s.srv.TokenExchanges(s.inst.ID), "the client fetches tokens from the shared cache")
	assert.True(t, strings.HasPrefix(s.headers.last().Get("Authorization"), "Bearer ghs_"))
	assert.Equal(t, github.DefaultUserAgent, s.headers.last().Get("User-Agent"))
	assert.Equal(t, "2022-11-28", s.headers.last().Get("X-GitHub-Api-Version"))
}

func TestStaticTokenClient(t *testing.T) {
	s := newSetup(t, github.WithUserAgent("acme-deployer/1.0"))
	s.srv.AddStaticToken("ghp_static")
	c, err := s.f.Client(credentials.StaticToken(credentials.NewSecret("ghp_static"), "test"))
	require.NoError(t, err)
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, "Bearer ghp_static", s.headers.last().Get("Authorization"))
	assert.Equal(t, "acme-deployer/1.0", s.headers.last().Get("User-Agent"))

	c, err = s.f.Client(credentials.StaticToken(credentials.NewSecret("ghp_wrong"), "test"))
	require.NoError(t, err)
	_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
	var er *gh.ErrorResponse
	require.True(t, errors.As(err, &er))
	assert.Equal(t, 401, er.Response.StatusCode)
	assert.Equal(t, "Bad credentials", er.Message)
}

func TestZeroCredential(t *testing.T) {
	s := newSetup(t)
	_, err := s.f.Client(credentials.Credential{})
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
}

func TestAppClient(t *testing.T) {
	s := newSetup(t)
	c, err := s.f.AppClient(s.srv.AppConfig())
	require.NoError(t, err)
	app, _, err := c.Apps.Get(context.Background(), "")
	require.NoError(t, err)
	assert.Equal(t, s.srv.AppID, app.GetID())
	insts, _, err := c.Apps.ListInstallations(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, insts, 1)
	assert.Equal(t, s.inst.ID, insts[0].GetID())

	_, err = s.f.AppClient(credentials.AppConfig{})
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
}

func TestBaseURLs(t *testing.T) {
	srv := githubtest.NewServer()
	defer srv.Close()
	srv.AddStaticToken("ghp_x")
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api"})
	host := strings.TrimSuffix(srv.URL, "/api/v3/")
	for _, base := range []string{srv.URL, strings.TrimSuffix(srv.URL, "/"), host, host + "/"} {
		f, err := github.NewClientFactory(github.WithBaseURL(base))
		require.NoError(t, err, base)
		assert.Equal(t, srv.URL, f.BaseURL().String(), "GHES hosts get /api/v3/")
		c, err := f.Client(credentials.StaticToken(credentials.NewSecret("ghp_x"), "t"))
		require.NoError(t, err)
		_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
		require.NoError(t, err, base)
	}
	f, err := github.NewClientFactory()
	require.NoError(t, err)
	assert.Equal(t, "https://api.github.com/", f.BaseURL().String())
	_, err = github.NewClientFactory(github.WithBaseURL("ftp://ghe"))
	assert.Error(t, err)
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("GET 502 is retried", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: "GET /repos/{owner}/{repo}", Status: 502})
		_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(ctx, "acme", "api")
		require.NoError(t, err)
		assert.Equal(t, 2, s.srv.RequestCount("GET /repos/{owner}/{repo}"))
	})
	t.Run("dispatch POST 502 is not retried", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 502})
		_, err := s.installationClient(t, s.inst.ID).Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml",
			gh.CreateWorkflowDispatchEventRequest{Ref: "main"})
		var er *gh.ErrorResponse
		require.True(t, errors.As(err, &er), "%T %v", err, err)
		assert.Equal(t, 502, er.Response.StatusCode)
		assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute))
	})
	t.Run("POST marked idempotent is retried", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: 502})
		_, err := s.installationClient(t, s.inst.ID).Actions.CreateWorkflowDispatchEventByFileName(github.MarkIdempotent(ctx), "acme", "api", "deploy.yml",
			gh.CreateWorkflowDispatchEventRequest{Ref: "main"})
		require.NoError(t, err)
		assert.Equal(t, 2, s.srv.RequestCount(dispatchRoute))
	})
	t.Run("secondary rate limit on a POST waits and retries", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Second})
		start := time.Now()
		_, err := s.installationClient(t, s.inst.ID).Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml",
			gh.CreateWorkflowDispatchEventRequest{Ref: "main"})
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		assert.Len(t, s.srv.Runs(), 1, "GitHub did not act on the limited request: one run")
	})
	t.Run("a wait beyond the cap reaches the caller typed", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Hour})
		_, err := s.installationClient(t, s.inst.ID).Actions.CreateWorkflowDispatchEventByFileName(ctx, "acme", "api", "deploy.yml",
			gh.CreateWorkflowDispatchEventRequest{Ref: "main"})
		var arl *gh.AbuseRateLimitError
		require.True(t, errors.As(err, &arl), "%T %v", err, err)
		require.NotNil(t, arl.RetryAfter)
		assert.Equal(t, time.Hour, *arl.RetryAfter)
		assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute))
	})
	t.Run("primary rate limit beyond the cap", func(t *testing.T) {
		s := newSetup(t)
		s.srv.InjectFault(githubtest.Fault{Route: "GET /repos/{owner}/{repo}", PrimaryRateLimit: true, RetryAfter: time.Hour})
		_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(ctx, "acme", "api")
		var rl *gh.RateLimitError
		require.True(t, errors.As(err, &rl), "%T %v", err, err)
		assert.WithinDuration(t, time.Now().Add(time.Hour), rl.Rate.Reset.Time, 5*time.Second)
	})
	t.Run("token exchange failure reaches the caller", func(t *testing.T) {
		s := newSetup(t)
		_, _, err := s.installationClient(t, 987654).Repositories.Get(ctx, "acme", "api")
		require.ErrorIs(t, err, credentials.ErrInstallationToken)
		var te *credentials.TokenError
		require.True(t, errors.As(err, &te))
		assert.Equal(t, 404, te.StatusCode)
	})
}
