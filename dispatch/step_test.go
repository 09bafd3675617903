package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// fakeClock is shared by the fake GitHub, the token cache and the
// dispatcher: time moves only when the test says.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

type stepEnv struct {
	srv   *githubtest.Server
	d     *dispatch.Dispatcher
	clock *fakeClock
	inst  githubtest.AppInstallation
}

func newStepEnv(t *testing.T, opts ...githubtest.Option) *stepEnv {
	t.Helper()
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	srv := githubtest.NewServer(append([]githubtest.Option{githubtest.WithClock(clock.Now), githubtest.WithContract(t)}, opts...)...)
	t.Cleanup(srv.Close)
	srv.AddRepo(deployerRepo())
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	// The transport never waits for a rate limit: the Step reports it and
	// the driver moves the clock.
	clients, err := github.NewClientFactory(github.WithBaseURL(srv.URL), github.WithClock(clock.Now),
		github.WithRetryPolicy(github.RetryPolicy{MinWait: time.Microsecond, MaxWait: time.Microsecond, MaxRateLimitWait: time.Microsecond, MaxRetries: 1}))
	require.NoError(t, err)
	tokens, err := clients.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	store := credentials.NewMemoryInstallationStore()
	require.NoError(t, store.UpsertInstallation(context.Background(), credentials.Installation{
		ID: inst.ID, Account: "acme", Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: []string{"acme/deployer"},
	}))
	// An unsure dispatch is looked for at 56 s and 112 s, then at the
	// settle (120 s) before it is sent again: more than one look while
	// uncertain, runs listed after 30 s, 100 s and 110 s are found before
	// the settle, and each round of a fault costs three lists, not the 24
	// of a 5 s interval.
	d := dispatch.New(github.NewClientSource(credentials.NewResolver(credentials.WithTokenSource(tokens), credentials.WithInstallationStore(store)), clients),
		dispatch.WithClock(clock.Now),
		dispatch.WithRunLookup(dispatch.RunLookup{Interval: 56 * time.Second, Timeout: 5 * time.Minute, Settle: 2 * time.Minute, ClockSkew: time.Minute}))
	return &stepEnv{srv: srv, d: d, clock: clock, inst: inst}
}

// drive calls Step as a queue would, keeping the saved State, and moves
// the clock to each retry time (or 10 s on), never sleeping. It returns
// the last result, how many Steps it took, and the last error.
func (e *stepEnv) drive(t *testing.T, j dispatch.Request, crashAfterSave int) (dispatch.Receipt, int, error) {
	t.Helper()
	var saved dispatch.State
	saves := 0
	for step := 1; step <= 200; step++ {
		res, st, err := e.d.Step(context.Background(), j, saved, func(_ context.Context, st dispatch.State) error {
			saves++
			saved = st
			if saves == crashAfterSave {
				// The process dies after saving, before the request: the
				// next worker starts from the saved State.
				return errCrash
			}
			return nil
		})
		if !errors.Is(err, errCrash) {
			saved = st
		}
		if err == nil || !failure.IsTransient(err) {
			return res, step, err
		}
		next := failure.RetryAfter(err)
		if next.IsZero() {
			next = e.clock.Now().Add(10 * time.Second)
		}
		e.clock.Set(next)
	}
	t.Fatalf("job %s: no outcome after 200 steps", j.ID)
	return dispatch.Receipt{}, 0, nil
}

var errCrash = errors.New("crash")

// runsOf counts the fake's runs that carry the job id.
func (e *stepEnv) runsOf(jobID string) int {
	n := 0
	for _, r := range e.srv.Runs() {
		if r.Inputs["job_id"] == jobID {
			n++
		}
	}
	return n
}

const (
	tokenRoute     = "POST /app/installations/{installation_id}/access_tokens"
	dispatchRoute2 = dispatchRoute
)

// TestStepFaultMatrix: every transient fault class on the token exchange
// and on the dispatch, at each of the first attempts, including "GitHub
// acted, then failed" and late run listings, on github.com and on GitHub
// Enterprise Server. Each job ends with exactly one run, dispatched.
func TestStepFaultMatrix(t *testing.T) {
	t.Parallel()
	common := map[string]githubtest.Fault{
		"500":              {Status: 500},
		"502":              {Status: 502},
		"503":              {Status: 503},
		"429":              {Status: 429},
		"connection reset": {ResetConnection: true},
	}
	// On the dispatch also GitHub's rate limits (a rate-limited request is
	// not processed), and requests GitHub acted on before failing. Rate
	// limits on the token exchange are covered by 429: go-github keeps a
	// long-lived client's rate-limit reset in real time, which a fake
	// clock cannot reach.
	dispatchOnly := map[string]githubtest.Fault{
		"secondary rate limit": {SecondaryRateLimit: true, RetryAfter: 30 * time.Second},
		"primary rate limit":   {PrimaryRateLimit: true, RetryAfter: 90 * time.Second},
		"acted, then 502":      {Status: 502, AfterHandling: true},
		"acted, then 500":      {Status: 500, AfterHandling: true},
		"acted, then reset":    {ResetConnection: true, AfterHandling: true},
	}
	faultsFor := func(route string) map[string]githubtest.Fault {
		if route == tokenRoute {
			return common
		}
		out := maps.Clone(common)
		maps.Copy(out, dispatchOnly)
		return out
	}
	type variant struct {
		name string
		opts []githubtest.Option
	}
	variants := []variant{
		{"github.com", nil},
		{"GHES, run listed after 30s", []githubtest.Option{githubtest.WithoutRunDetails(400), githubtest.WithRunDelay(30 * time.Second)}},
		{"github.com, run listed after 110s (settle 120s)", []githubtest.Option{githubtest.WithRunDelay(110 * time.Second)}},
	}
	cases := 0
	for _, v := range variants {
		for _, route := range []string{tokenRoute, dispatchRoute2} {
			for name, f := range faultsFor(route) {
				for times := 1; times <= 3; times++ {
					cases++
					t.Run(fmt.Sprintf("%s/%s/%s/x%d", v.name, route, name, times), func(t *testing.T) {
						t.Parallel()
						e := newStepEnv(t, v.opts...)
						f := f
						f.Route, f.Times = route, times
						e.srv.InjectFault(f)
						j := job("job-1", deployAgent)
						res, steps, err := e.drive(t, j, 0)
						require.NoError(t, err, "after %d steps", steps)
						assert.Equal(t, 1, e.runsOf("job-1"), "exactly one run")
						if res.RunID != 0 {
							run, ok := e.srv.GetRun(res.RunID)
							require.True(t, ok)
							assert.Equal(t, "job-1", run.Inputs["job_id"])
						}
					})
				}
			}
		}
	}
	t.Logf("fault matrix: %d cases", cases)
}

// TestStepCrashAfterSave: a process that dies between saving the State
// and sending (or after sending, before the answer was recorded) leaves
// the job for the next worker, which looks before it sends.
func TestStepCrashAfterSave(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  []githubtest.Option
		fault *githubtest.Fault
	}{
		{"crash before the request", nil, nil},
		{"request reached GitHub, answer lost", []githubtest.Option{githubtest.WithRunDelay(100 * time.Second)},
			&githubtest.Fault{Route: dispatchRoute, ResetConnection: true, AfterHandling: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStepEnv(t, tc.opts...)
			if tc.fault != nil {
				e.srv.InjectFault(*tc.fault)
			}
			_, _, err := e.drive(t, job("job-1", deployAgent), 1)
			require.NoError(t, err)
			assert.Equal(t, 1, e.runsOf("job-1"))
		})
	}
}

func TestStepPermanentFailures(t *testing.T) {
	t.Parallel()
	e := newStepEnv(t)
	for _, tc := range []struct {
		agent string
		class error
	}{
		{`{"owner": "acme", "repo": "deployer", "workflowId": "nope.yml"}`, failure.ErrInvalidJobAgent},
		{`{"owner": "acme", "repo": "deployer", "workflowId": "push.yml"}`, failure.ErrInvalidJobAgent},
		{`{"owner": "acme", "repo": "secret", "workflowId": "deploy.yml", "installationId": 1}`, failure.ErrInvalidIntegration},
		{`{"owner": "acme", "repo": "deployer", "workflowId": "{{ .nope }}"}`, failure.ErrInvalidJobAgent},
	} {
		_, st, err := e.d.Step(context.Background(), job("job-x", tc.agent), dispatch.State{}, func(context.Context, dispatch.State) error { return nil })
		require.Error(t, err)
		assert.Equal(t, tc.class, failure.Class(err), "%s: %v", tc.agent, err)
		assert.True(t, st.SentAt.IsZero(), "a refusal leaves nothing to look for")
	}
	assert.Zero(t, len(e.srv.Runs()))
}

func TestStepSaveFailureSendsNothing(t *testing.T) {
	t.Parallel()
	e := newStepEnv(t)
	_, st, err := e.d.Step(context.Background(), job("job-1", deployAgent), dispatch.State{}, func(context.Context, dispatch.State) error {
		return errors.New("database is down")
	})
	require.True(t, failure.IsTransient(err), "%v", err)
	assert.Equal(t, dispatch.State{}, st)
	assert.Zero(t, e.srv.RequestCount(dispatchRoute))
}

func TestStepAcceptedWithoutRunNeverResends(t *testing.T) {
	t.Parallel()
	// GHES without the run in the title: the dispatch is accepted, and
	// no later Step sends it again however long the run takes.
	e := newStepEnv(t, githubtest.WithoutRunDetails(400), githubtest.WithRunDelay(time.Hour))
	res, st, err := e.d.Step(context.Background(), job("job-1", deployAgent), dispatch.State{}, func(context.Context, dispatch.State) error { return nil })
	require.NoError(t, err)
	assert.True(t, st.Accepted)
	assert.Zero(t, res.RunID, "not listed yet")
	for range 5 {
		e.clock.Set(e.clock.Now().Add(time.Minute))
		_, st, err = e.d.Step(context.Background(), job("job-1", deployAgent), st, func(context.Context, dispatch.State) error {
			t.Fatal("an accepted dispatch is never saved for sending again")
			return nil
		})
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.srv.RequestCount(dispatchRoute), "the one refused with return_run_details, then the one accepted")
}

func TestCanceledContextIsNotABadConfig(t *testing.T) {
	t.Parallel()
	e := newStepEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := e.d.Step(ctx, job("job-1", deployAgent), dispatch.State{}, func(context.Context, dispatch.State) error { return nil })
	require.Error(t, err)
	assert.Equal(t, failure.ErrTransient, failure.Class(err), "%v", err)
}
