package github_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func TestGETRetriedAfter5xx(t *testing.T) {
	t.Parallel()
	for _, code := range []int{500, 502, 503, 504} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			s := newSetup(t)
			s.srv.InjectFault(githubtest.Fault{Route: repoRoute, Status: code})
			repo, resp, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "acme/api", repo.GetFullName())
			assert.Equal(t, 2, s.srv.RequestCount(repoRoute))
			assert.Equal(t, 1, s.srv.TokenExchanges(s.inst.ID), "the retry reuses the token")
		})
	}
}

func TestGETGivesUpWithGitHubsAnswer(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.srv.InjectFault(githubtest.Fault{Route: repoRoute, Status: 502, Times: -1})
	_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er)
	assert.Equal(t, 502, er.Response.StatusCode)
	assert.Equal(t, "Bad Gateway", er.Message, "GitHub's error body reaches go-github")
	assert.Equal(t, 5, s.srv.RequestCount(repoRoute), "the first attempt and 4 retries (the default)")
}

func TestRetryPolicyMaxRetries(t *testing.T) {
	t.Parallel()
	p := fast
	p.MaxRetries = -1
	s := newSetup(t, github.WithRetryPolicy(p))
	s.srv.InjectFault(githubtest.Fault{Route: repoRoute, Status: 502})
	_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
	var er *gh.ErrorResponse
	require.ErrorAs(t, err, &er)
	assert.Equal(t, 502, er.Response.StatusCode)
	assert.Equal(t, 1, s.srv.RequestCount(repoRoute), "negative MaxRetries disables retries")

	p.MaxRetries = 1
	s = newSetup(t, github.WithRetryPolicy(p))
	s.srv.InjectFault(githubtest.Fault{Route: repoRoute, Status: 502, Times: 2})
	_, _, err = s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
	require.ErrorAs(t, err, &er)
	assert.Equal(t, 2, s.srv.RequestCount(repoRoute))
}

func TestDispatchNotRetriedAfter5xx(t *testing.T) {
	t.Parallel()
	for _, code := range []int{500, 502, 503} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			s := newSetup(t)
			s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, Status: code})
			err := dispatch(context.Background(), s.installationClient(t, s.inst.ID))
			var er *gh.ErrorResponse
			require.ErrorAs(t, err, &er, "%T %v", err, err)
			assert.Equal(t, code, er.Response.StatusCode)
			assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute), "a POST is never repeated after GitHub may have acted")
			assert.Empty(t, s.srv.Dispatches())
		})
	}
}

func TestDispatchNotRetriedAfterItWasSent(t *testing.T) {
	t.Parallel()
	// The run was created, the answer lost: repeating would run twice.
	s := newSetup(t)
	s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, AfterHandling: true, ResetConnection: true})
	err := dispatch(context.Background(), s.installationClient(t, s.inst.ID))
	require.Error(t, err)
	assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute))
	assert.Len(t, s.srv.Dispatches(), 1, "exactly one run")
}

func TestGETRetriedAfterConnectionReset(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.srv.InjectFault(githubtest.Fault{Route: repoRoute, ResetConnection: true})
	_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, 2, s.srv.RequestCount(repoRoute))
}

// Git trees and commits are content objects: creating one again is
// harmless, so their POSTs are retried like GETs.
func TestGitObjectPOSTsRetriedAfter5xx(t *testing.T) {
	t.Parallel()
	const treeRoute, commitRoute = "POST /repos/{owner}/{repo}/git/trees", "POST /repos/{owner}/{repo}/git/commits"
	s := newSetup(t)
	c := s.installationClient(t, s.inst.ID)
	ctx := context.Background()
	s.srv.InjectFault(githubtest.Fault{Route: treeRoute, Status: 502})
	tree, _, err := c.Git.CreateTree(ctx, "acme", "api", "", []*gh.TreeEntry{{Path: gh.String("a.txt"), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String("a")}})
	require.NoError(t, err)
	assert.Equal(t, 2, s.srv.RequestCount(treeRoute))
	s.srv.InjectFault(githubtest.Fault{Route: commitRoute, ResetConnection: true})
	_, _, err = c.Git.CreateCommit(ctx, "acme", "api", &gh.Commit{Message: gh.String("m"), Tree: tree}, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, s.srv.RequestCount(commitRoute))
}

func TestSecondaryRateLimitOnPOSTIsRetriedAfterTheWait(t *testing.T) {
	t.Parallel()
	w := &recordedWaits{}
	s := newSetup(t, w.option())
	c := s.installationClient(t, s.inst.ID)
	_, _, err := c.Repositories.Get(context.Background(), "acme", "api") // exchange the token first
	require.NoError(t, err)
	s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Second})
	require.NoError(t, dispatch(context.Background(), c))
	assert.Equal(t, []time.Duration{time.Second}, w.all(), "waited as GitHub asked")
	assert.Equal(t, 2, s.srv.RequestCount(dispatchRoute))
	assert.Len(t, s.srv.Dispatches(), 1, "GitHub did not act on the limited request: one run")
}

func TestRateLimitBeyondCapReachesTheCallerTyped(t *testing.T) {
	t.Parallel()
	t.Run("secondary", func(t *testing.T) {
		w := &recordedWaits{}
		s := newSetup(t, w.option())
		s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Hour})
		err := dispatch(context.Background(), s.installationClient(t, s.inst.ID))
		var arl *gh.AbuseRateLimitError
		require.ErrorAs(t, err, &arl, "%T %v", err, err)
		require.NotNil(t, arl.RetryAfter)
		assert.Equal(t, time.Hour, *arl.RetryAfter)
		assert.Contains(t, arl.Message, "secondary rate limit")
		assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute), "a wait beyond the cap is not attempted")
		assert.Empty(t, w.all(), "nor waited")
		assert.Empty(t, s.srv.Dispatches())
	})
	t.Run("primary", func(t *testing.T) {
		w := &recordedWaits{}
		s := newSetup(t, w.option())
		s.srv.InjectFault(githubtest.Fault{Route: repoRoute, PrimaryRateLimit: true, RetryAfter: time.Hour})
		_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
		var rl *gh.RateLimitError
		require.ErrorAs(t, err, &rl, "%T %v", err, err)
		assert.Equal(t, 0, rl.Rate.Remaining)
		assert.Equal(t, 5000, rl.Rate.Limit)
		assert.WithinDuration(t, time.Now().Add(time.Hour), rl.Rate.Reset.Time, 5*time.Second)
		assert.Equal(t, 1, s.srv.RequestCount(repoRoute))
		assert.Empty(t, w.all(), "nor waited")
	})
}

func TestRateLimitBeyondDeadlineReachesTheCallerTyped(t *testing.T) {
	t.Parallel()
	w := &recordedWaits{}
	s := newSetup(t, w.option())
	c := s.installationClient(t, s.inst.ID)
	_, _, err := c.Repositories.Get(context.Background(), "acme", "api") // exchange the token first
	require.NoError(t, err)
	s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = dispatch(ctx, c)
	var arl *gh.AbuseRateLimitError
	require.ErrorAs(t, err, &arl, "GitHub's answer, not a deadline error: %T %v", err, err)
	require.NotNil(t, arl.RetryAfter)
	assert.Equal(t, 2*time.Second, *arl.RetryAfter)
	assert.Empty(t, w.all(), "no wait past the deadline")
	assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute))
}

func TestCancelDuringRateLimitWait(t *testing.T) {
	t.Parallel()
	// The wait is an hour: were it not cut short, the test would time out.
	p := fast
	p.MaxRateLimitWait = 2 * time.Hour
	s := newSetup(t, github.WithRetryPolicy(p))
	c := s.installationClient(t, s.inst.ID)
	_, _, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	s.srv.InjectFault(githubtest.Fault{Route: dispatchRoute, SecondaryRateLimit: true, RetryAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err = dispatch(ctx, c)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, s.srv.RequestCount(dispatchRoute))
}

func TestTokenExchangeFailureReachesTheCaller(t *testing.T) {
	t.Parallel()
	t.Run("unknown installation", func(t *testing.T) {
		s := newSetup(t)
		_, _, err := s.installationClient(t, 987654).Repositories.Get(context.Background(), "acme", "api")
		require.ErrorIs(t, err, credentials.ErrInstallationToken)
		var te *credentials.TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, int64(987654), te.InstallationID)
		assert.Equal(t, 404, te.StatusCode)
		assert.Equal(t, 1, s.srv.RequestCount(tokenRoute), "a 404 exchange is not retried")
		assert.Zero(t, s.srv.RequestCount(repoRoute), "nothing is sent without a token")
	})
	t.Run("suspended installation", func(t *testing.T) {
		s := newSetup(t)
		s.srv.SetSuspended(s.inst.ID, true)
		_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
		require.ErrorIs(t, err, credentials.ErrInstallationToken)
		var te *credentials.TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, 403, te.StatusCode)
	})
	t.Run("GitHub unreachable", func(t *testing.T) {
		// Nothing listens on the address: every dial is refused.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		srv := githubtest.NewServer()
		defer srv.Close()
		app := srv.AppConfig()
		app.BaseURL = "http://" + addr + "/api/v3/"
		p := fast
		p.MaxRetries = 1
		f, err := github.NewClientFactory(github.WithBaseURL(app.BaseURL), github.WithRetryPolicy(p))
		require.NoError(t, err)
		tokens, err := f.TokenCache(app)
		require.NoError(t, err)
		c, err := f.Client(credentials.ForInstallation(tokens, 1, "test"))
		require.NoError(t, err)
		_, _, err = c.Repositories.Get(context.Background(), "acme", "api")
		require.ErrorIs(t, err, credentials.ErrInstallationToken)
		var op *net.OpError
		assert.ErrorAs(t, err, &op)
	})
}

func TestTokenExchangeIsRetriedThroughTheSharedTransport(t *testing.T) {
	t.Parallel()
	// Creating a token is safe to repeat: a 502 on it is retried by the
	// factory's transport.
	s := newSetup(t)
	s.srv.InjectFault(githubtest.Fault{Route: tokenRoute, Status: 502})
	_, _, err := s.installationClient(t, s.inst.ID).Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, 2, s.srv.RequestCount(tokenRoute))
	assert.Equal(t, 1, s.srv.TokenExchanges(s.inst.ID))
}
