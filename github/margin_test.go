package github_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

type marginClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *marginClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *marginClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A token inside the refresh margin is exchanged again; outside it, not.
func TestTokenRefreshMargin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		margin    time.Duration
		exchanges int
	}{
		{0, 1},                // default 5 minutes: 51 minutes in, the token still has 9
		{10 * time.Minute, 2}, // 10 minutes: it is refreshed
	} {
		clock := &marginClock{t: time.Now()}
		srv := githubtest.New(t, githubtest.WithClock(clock.Now))
		inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
		clients, err := github.NewClientFactory(github.WithBaseURL(srv.URL), github.WithClock(clock.Now), github.WithTokenRefreshMargin(tc.margin))
		require.NoError(t, err)
		tokens, err := clients.TokenCache(srv.AppConfig())
		require.NoError(t, err)
		_, err = tokens.Token(context.Background(), inst.ID)
		require.NoError(t, err)
		clock.Add(51 * time.Minute)
		_, err = tokens.Token(context.Background(), inst.ID)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return srv.TokenExchanges(inst.ID) >= tc.exchanges }, 5*time.Second, time.Millisecond)
		assert.Equal(t, tc.exchanges, srv.TokenExchanges(inst.ID), "margin %s", tc.margin)
	}
}
