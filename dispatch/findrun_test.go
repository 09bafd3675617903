package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// A job whose run was missed is found however many runs were started
// after it: FindRun pages through every run created around the dispatch,
// and splits a window holding more than the 1,000 runs GitHub lists.
func TestFindRunAmongManyNewerRuns(t *testing.T) {
	t.Parallel()
	// Each run newer than job-1's is created at dispatch time + at.
	type newer struct {
		n     int           // how many
		at    time.Duration // the first one's
		every time.Duration // between two
	}
	for _, tc := range []struct {
		name  string
		newer []newer
		// volume: the fake answers without contract checks, with lean
		// runs. The pages of the split case would weigh 15 MB in all;
		// the unsplit case checks the same route's answers, with whole
		// runs, against the contract.
		volume bool
		// jobWithout also looks for a job without a run, which searches
		// the whole window and finds nothing: the split case does so
		// through every half and every page (all ten of its 1,000-run
		// quarter, to the last as the paged case would its two), and
		// TestFindRun in a window of one page, under contract.
		jobWithout bool
	}{
		// More than a page, under the cap: job-1's run is the 101st,
		// the first of the second page of one listing (of 100 a page),
		// a listing GitHub's newest-500 would not have reached if
		// there were a few hundred more.
		{name: "paged", newer: []newer{{n: 100, at: time.Second, every: time.Second}}},
		// 1,101 runs in the window: it is split, and so is its first
		// half (FindRun's window runs from ClockSkew before the
		// dispatch to an hour after; its first quarter holds job-1's
		// run and 100 newer ones, its second 1,000 in two runs a
		// second, its second half none).
		{name: "split", volume: true, jobWithout: true, newer: []newer{
			{n: 100, at: time.Second, every: time.Second},
			{n: 1000, at: 20 * time.Minute, every: time.Second / 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
			e := newEnv(t, envOptions{volume: tc.volume, server: []githubtest.Option{githubtest.WithClock(clock.Now)}})
			ctx := context.Background()
			dispatched := clock.Now()
			res, err := e.d.Dispatch(ctx, job("job-1", deployAgent))
			require.NoError(t, err)
			wf := workflowID(e, "deploy")
			total := 0
			for _, nw := range tc.newer {
				for i := range nw.n {
					// Whole seconds, as GitHub's created filter has them.
					clock.Set(dispatched.Add(nw.at + time.Duration(i)*nw.every).Truncate(time.Second))
					_, err := e.srv.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: wf, Event: "workflow_dispatch",
						DisplayTitle: fmt.Sprint("Deploy job-other-", total)})
					require.NoError(t, err)
					total++
				}
			}
			run, err := e.d.FindRun(ctx, job("job-1", deployAgent), dispatched)
			require.NoError(t, err)
			require.NotNil(t, run, "the job's run is older than the newest %d", total)
			assert.Equal(t, res.RunID, run.GetID())

			if tc.jobWithout {
				run, err = e.d.FindRun(ctx, job("job-2", deployAgent), dispatched)
				require.NoError(t, err)
				assert.Nil(t, run, "a job without a run")
			}
		})
	}
}
