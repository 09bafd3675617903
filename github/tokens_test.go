package github_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

const accessTokensRoute = "POST /app/installations/{installation_id}/access_tokens"

// fakeClock is a settable clock shared by the fake GitHub and the cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type tokenEnv struct {
	srv   *githubtest.Server
	clock *fakeClock
	cache *github.TokenCache
	inst  githubtest.AppInstallation
	audit *credentials.MemoryAuditLog
}

// fastRetries keeps retry waits short in tests.
var fastRetries = github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, MaxRateLimitWait: 2 * time.Second}

func newTokenEnv(t *testing.T, app func(*credentials.AppConfig), opts ...github.Option) *tokenEnv {
	t.Helper()
	clock := newClock()
	srv := githubtest.NewServer(githubtest.WithContract(t), githubtest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api"})
	audit := &credentials.MemoryAuditLog{}
	f, err := github.NewClientFactory(append([]github.Option{github.WithBaseURL(srv.URL), github.WithRetryPolicy(fastRetries),
		github.WithClock(clock.Now), github.WithAudit(audit)}, opts...)...)
	require.NoError(t, err)
	cfg := srv.AppConfig()
	if app != nil {
		app(&cfg)
	}
	cache, err := f.TokenCache(cfg)
	require.NoError(t, err)
	return &tokenEnv{srv: srv, clock: clock, cache: cache, inst: inst, audit: audit}
}

func TestTokenCacheConcurrentColdCallersShareOneExchange(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Delay: 50 * time.Millisecond})
	var wg sync.WaitGroup
	tokens := make([]string, 100)
	errs := make([]error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := e.cache.Token(context.Background(), e.inst.ID)
			tokens[i], errs[i] = tok.Value.Reveal(), err
		}()
	}
	wg.Wait()
	for i := range 100 {
		require.NoError(t, errs[i])
		require.Equal(t, tokens[0], tokens[i])
	}
	assert.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
	assert.True(t, strings.HasPrefix(tokens[0], "ghs_"))
}

func TestTokenCacheWarmHitsDoNotExchange(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	ctx := context.Background()
	first, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	e.clock.Advance(54 * time.Minute) // 6 minutes left: outside the 5 minute margin
	for range 10 {
		tok, err := e.cache.Token(ctx, e.inst.ID)
		require.NoError(t, err)
		assert.Equal(t, first.Value.Reveal(), tok.Value.Reveal())
	}
	assert.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
	assert.Equal(t, "write", first.Permissions["actions"])
	assert.WithinDuration(t, e.clock.Now().Add(6*time.Minute), first.ExpiresAt, time.Second)
}

func TestTokenCacheRefreshesInBackgroundWithinMargin(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	ctx := context.Background()
	first, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	e.clock.Advance(56 * time.Minute) // inside the margin, still usable

	got, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	assert.Equal(t, first.Value.Reveal(), got.Value.Reveal(), "a usable token is returned while the refresh runs")
	require.Eventually(t, func() bool { return e.srv.TokenExchanges(e.inst.ID) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		tok, err := e.cache.Token(ctx, e.inst.ID)
		return err == nil && tok.Value.Reveal() != first.Value.Reveal()
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokenCacheBlocksWhenTokenIsNearlyExpired(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	ctx := context.Background()
	first, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	e.clock.Advance(59*time.Minute + 30*time.Second) // 30 s left: too little to hand out

	got, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	assert.NotEqual(t, first.Value.Reveal(), got.Value.Reveal())
	assert.Equal(t, 2, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokenCacheShortLivedTokensAreNotRefreshedOnEveryCall(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := githubtest.NewServer(githubtest.WithContract(t), githubtest.WithClock(clock.Now), githubtest.WithTokenLifetime(4*time.Minute))
	t.Cleanup(srv.Close)
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	f, err := github.NewClientFactory(github.WithClock(clock.Now))
	require.NoError(t, err)
	cache, err := f.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	for range 5 {
		_, err := cache.Token(context.Background(), inst.ID)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.TokenExchanges(inst.ID), "a lifetime shorter than the margin must not cause an exchange per call")
}

// heldExchanges is a base transport that holds every installation token
// exchange until release: GitHub answering as late as a test needs.
type heldExchanges struct {
	sent    atomic.Int32  // exchanges sent
	arrived chan struct{} // a value when an exchange is held
	release chan struct{}
}

func (h *heldExchanges) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/access_tokens") {
		h.sent.Add(1)
		select {
		case h.arrived <- struct{}{}:
		default:
		}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type patientKey struct{}

func TestTokenCacheCallerDeadlineDoesNotFailTheSharedExchange(t *testing.T) {
	t.Parallel()
	hold := &heldExchanges{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	e := newTokenEnv(t, nil, github.WithHTTPTransport(hold))
	joining := make(chan struct{})
	e.cache.SetHookAfterMiss(func(ctx context.Context) {
		if ctx.Value(patientKey{}) != nil {
			close(joining)
		}
	})

	// The hurried caller starts the exchange, which GitHub holds; a
	// patient caller joins it; the hurried caller's deadline passes.
	hurried, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	hurriedErr := make(chan error, 1)
	go func() {
		_, err := e.cache.Token(hurried, e.inst.ID)
		hurriedErr <- err
	}()
	<-hold.arrived
	type result struct {
		tok credentials.InstallationToken
		err error
	}
	patient := make(chan result, 1)
	go func() {
		tok, err := e.cache.Token(context.WithValue(context.Background(), patientKey{}, true), e.inst.ID)
		patient <- result{tok, err}
	}()
	<-joining
	require.ErrorIs(t, <-hurriedErr, context.DeadlineExceeded)

	// GitHub answers: the exchange completes for the patient caller.
	close(hold.release)
	got := <-patient
	require.NoError(t, got.err, "the exchange started by the hurried caller must complete for the others")
	assert.False(t, got.tok.Value.IsZero())

	again, err := e.cache.Token(context.Background(), e.inst.ID)
	require.NoError(t, err)
	assert.Equal(t, got.tok.Value.Reveal(), again.Value.Reveal())
	assert.EqualValues(t, 1, hold.sent.Load(), "one exchange sent")
	assert.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokenCacheExchangeTimeout(t *testing.T) {
	t.Parallel()
	// GitHub answers in an hour: only the timeout can end the exchange
	// (else the test times out).
	e := newTokenEnv(t, nil, github.WithTokenExchangeTimeout(50*time.Millisecond))
	e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Delay: time.Hour})
	_, err := e.cache.Token(context.Background(), e.inst.ID)
	require.ErrorIs(t, err, credentials.ErrInstallationToken)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestTokenCacheRevoke(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	ctx := context.Background()
	first, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	e.cache.Revoke(e.inst.ID)
	second, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	assert.NotEqual(t, first.Value.Reveal(), second.Value.Reveal())
	assert.Equal(t, 2, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokenCacheRevokeDuringExchangeIsNotUndone(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	ctx := context.Background()
	e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Delay: 200 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.cache.Token(ctx, e.inst.ID)
	}()
	require.Eventually(t, func() bool { return e.srv.RequestCount(accessTokensRoute) == 1 }, time.Second, time.Millisecond)
	e.cache.Revoke(e.inst.ID)
	<-done
	require.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
	_, err := e.cache.Token(ctx, e.inst.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, e.srv.TokenExchanges(e.inst.ID), "a token fetched before Revoke must not be cached after it")
}

func TestTokenCacheJWTClaims(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := githubtest.NewServer(githubtest.WithContract(t), githubtest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	var authz []string
	var mu sync.Mutex
	rec := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		authz = append(authz, r.Header.Get("Authorization"))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	for _, tc := range []struct {
		name     string
		clientID string
		wantIss  string
	}{
		{"client id as issuer", srv.ClientID, srv.ClientID},
		{"app id as issuer", "", strconv.FormatInt(srv.AppID, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.AppConfig()
			cfg.ClientID = tc.clientID
			f, err := github.NewClientFactory(github.WithClock(clock.Now), github.WithHTTPTransport(rec))
			require.NoError(t, err)
			cache, err := f.TokenCache(cfg)
			require.NoError(t, err)
			_, err = cache.Token(context.Background(), inst.ID)
			require.NoError(t, err)
			mu.Lock()
			last := authz[len(authz)-1]
			mu.Unlock()
			raw, ok := strings.CutPrefix(last, "Bearer ")
			require.True(t, ok, last)
			var claims jwt.RegisteredClaims
			_, err = jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return &srv.PrivateKey().PublicKey, nil },
				jwt.WithoutClaimsValidation())
			require.NoError(t, err)
			assert.Equal(t, tc.wantIss, claims.Issuer)
			assert.Equal(t, clock.Now().Add(-60*time.Second).Unix(), claims.IssuedAt.Unix(), "iat is backdated 60 s")
			assert.LessOrEqual(t, claims.ExpiresAt.Unix(), clock.Now().Add(10*time.Minute).Unix(), "exp within GitHub's 10 minutes")
			assert.Greater(t, claims.ExpiresAt.Unix(), clock.Now().Add(5*time.Minute).Unix())
		})
	}
}

// One JWT serves the App's requests for a minute: exchanges for several
// installations at once sign once. A minute on, or with the clock set
// back, a new one is signed.
func TestTokenCacheReusesJWTForAMinute(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := githubtest.NewServer(githubtest.WithContract(t), githubtest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	var insts []int64
	for _, acct := range []string{"a", "b", "c", "d", "e"} {
		insts = append(insts, srv.AddInstallation(githubtest.AppInstallation{Account: acct, AllRepositories: true}).ID)
	}
	var mu sync.Mutex
	var authz []string
	rec := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		authz = append(authz, r.Header.Get("Authorization"))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	f, err := github.NewClientFactory(github.WithClock(clock.Now), github.WithHTTPTransport(rec))
	require.NoError(t, err)
	cache, err := f.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	jwtFor := func(inst int64) string {
		t.Helper()
		_, err := cache.Token(context.Background(), inst)
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		return authz[len(authz)-1]
	}
	first := jwtFor(insts[0])
	assert.Equal(t, first, jwtFor(insts[1]), "the same second")
	clock.Advance(59 * time.Second)
	assert.Equal(t, first, jwtFor(insts[2]), "59 s on")
	clock.Advance(time.Second)
	second := jwtFor(insts[3])
	assert.NotEqual(t, first, second, "a minute on")
	clock.Advance(-time.Minute)
	assert.NotEqual(t, second, jwtFor(insts[4]), "the clock set back before the last JWT")
	assert.Equal(t, 5, len(authz), "one exchange each")
}

// otherKeyPEM is an App key the fake does not know, generated once: RSA
// generation is slow (and 1024 bits are enough for a key that is only
// to be refused).
var otherKeyPEM = sync.OnceValue(func() string {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
})

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTokenCacheRetriesTransientExchangeFailures(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Status: http.StatusBadGateway})
	tok, err := e.cache.Token(context.Background(), e.inst.ID)
	require.NoError(t, err, "creating a token is safe to repeat, so a 502 is retried")
	assert.False(t, tok.Value.IsZero())
	assert.Equal(t, 2, e.srv.RequestCount(accessTokensRoute))
	assert.Equal(t, 1, e.srv.TokenExchanges(e.inst.ID))
}

func TestTokenCacheErrors(t *testing.T) {
	t.Parallel()
	otherKey := otherKeyPEM()
	for _, tc := range []struct {
		name       string
		app        func(*credentials.AppConfig)
		setup      func(e *tokenEnv) int64
		wantStatus int
		wantText   string
		transient  bool
	}{
		{name: "unknown installation", setup: func(*tokenEnv) int64 { return 999999 }, wantStatus: 404, wantText: "uninstalled or the installation id is wrong"},
		{name: "deleted installation", setup: func(e *tokenEnv) int64 { e.srv.DeleteInstallation(e.inst.ID); return e.inst.ID }, wantStatus: 404},
		{name: "suspended installation", setup: func(e *tokenEnv) int64 { e.srv.SetSuspended(e.inst.ID, true); return e.inst.ID }, wantStatus: 403, wantText: "suspended"},
		{name: "wrong App id", app: func(c *credentials.AppConfig) { c.AppID, c.ClientID = 1, "" }, wantStatus: 401, wantText: "Integration not found"},
		{name: "wrong key", app: func(c *credentials.AppConfig) { c.PrivateKey = credentials.NewSecret(otherKey) }, wantStatus: 401, wantText: "check that the App id matches the private key"},
		{name: "GitHub down", setup: func(e *tokenEnv) int64 {
			e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Status: 503, Times: -1})
			return e.inst.ID
		}, wantStatus: 503, wantText: "it is retried", transient: true},
		{name: "GitHub rate limit", setup: func(e *tokenEnv) int64 {
			e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, Status: 429, Times: -1})
			return e.inst.ID
		}, wantStatus: 429, transient: true},
		{name: "GitHub unreachable", setup: func(e *tokenEnv) int64 {
			e.srv.InjectFault(githubtest.Fault{Route: accessTokensRoute, ResetConnection: true, Times: -1})
			return e.inst.ID
		}, wantStatus: 0, wantText: "it is retried", transient: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEnv(t, tc.app)
			id := e.inst.ID
			if tc.setup != nil {
				id = tc.setup(e)
			}
			_, err := e.cache.Token(context.Background(), id)
			require.ErrorIs(t, err, credentials.ErrInstallationToken)
			var te *credentials.TokenError
			require.True(t, errors.As(err, &te))
			assert.Equal(t, tc.wantStatus, te.StatusCode)
			assert.Equal(t, id, te.InstallationID)
			assert.True(t, strings.HasPrefix(err.Error(), "failed to get installation token for installation "), err.Error())
			assert.Contains(t, err.Error(), tc.wantText)
			if tc.wantStatus != 0 {
				assert.Contains(t, err.Error(), fmt.Sprintf("GitHub answered %d %s", tc.wantStatus, http.StatusText(tc.wantStatus)))
			}
			if tc.transient {
				assert.Equal(t, failure.ErrTransient, failure.Class(err), "worth retrying")
			} else {
				assert.Equal(t, failure.ErrInvalidIntegration, failure.Class(err), "a refusal is the integration's fault")
			}

			evs := e.audit.Events()
			require.NotEmpty(t, evs)
			last := evs[len(evs)-1]
			assert.Equal(t, credentials.EventTokenExchange, last.Name)
			assert.Equal(t, credentials.OutcomeFailure, last.Outcome)
			assert.Equal(t, id, last.InstallationID)
			assert.Equal(t, err.Error(), last.Error)
		})
	}
}

func TestTokenCacheFailuresAreNotCached(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	e.srv.SetSuspended(e.inst.ID, true)
	_, err := e.cache.Token(context.Background(), e.inst.ID)
	require.ErrorIs(t, err, credentials.ErrInstallationToken)
	e.srv.SetSuspended(e.inst.ID, false)
	_, err = e.cache.Token(context.Background(), e.inst.ID)
	require.NoError(t, err)
}

func TestTokenCacheRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	_, err := e.cache.Token(context.Background(), 0)
	require.Error(t, err)
	f, err := github.NewClientFactory()
	require.NoError(t, err)
	_, err = f.TokenCache(credentials.AppConfig{})
	require.ErrorIs(t, err, credentials.ErrNotConfigured)
}

func TestTokenCacheAuditsSuccess(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	_, err := e.cache.Token(context.Background(), e.inst.ID)
	require.NoError(t, err)
	evs := e.audit.Events()
	require.Len(t, evs, 1)
	assert.Equal(t, credentials.AuditEvent{
		Time: e.clock.Now(), Name: credentials.EventTokenExchange, CredentialType: credentials.TypeInstallation,
		InstallationID: e.inst.ID, Attempt: 1, Outcome: credentials.OutcomeSuccess,
	}, evs[0])
}

func TestTokenWorksAgainstGitHub(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	f, err := github.NewClientFactory(github.WithBaseURL(e.srv.URL))
	require.NoError(t, err)
	c, err := f.Client(credentials.ForInstallation(e.cache, e.inst.ID, "test"))
	require.NoError(t, err)
	repo, _, err := c.Repositories.Get(context.Background(), "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, "acme/api", repo.GetFullName())
}

// Without a slow exchange, late joiners race the end of the flight; the
// count must still be one exchange per round.
func TestTokenCacheOneExchangePerRoundWithoutDelay(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil)
	const rounds = 30
	for range rounds {
		e.cache.Revoke(e.inst.ID)
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.cache.Token(context.Background(), e.inst.ID)
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	assert.Equal(t, rounds, e.srv.TokenExchanges(e.inst.ID))
}
