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

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A job whose run was missed is found however many runs were started
// after it: FindRun pages through every run created around the dispatch,
// and splits a window holding more than the 1,000 runs GitHub lists.
func TestFindRunAmongManyNewerRuns(t *testing.T) {
	for _, newer := range []int{600, 1100} {
		t.Run(fmt.Sprint(newer), func(t *testing.T) {
			clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
			e := newEnv(t, envOptions{server: []githubtest.Option{githubtest.WithClock(clock.Now)}})
			ctx := context.Background()
			dispatched := clock.Now()
			res, err := e.d.Dispatch(ctx, job("job-1", deployAgent))
			require.NoError(t, err)
			wf := workflowID(e, "deploy")
			for i := range newer {
				clock.Advance(time.Second)
				_, err := e.srv.CreateRun(githubtest.Run{Owner: "acme", Repo: "deployer", WorkflowID: wf, Event: "workflow_dispatch",
					DisplayTitle: fmt.Sprint("Deploy job-other-", i)})
				require.NoError(t, err)
			}
			run, err := e.d.FindRun(ctx, job("job-1", deployAgent), dispatched)
			require.NoError(t, err)
			require.NotNil(t, run, "the job's run is older than the newest %d", newer)
			assert.Equal(t, res.RunID, run.GetID())

			run, err = e.d.FindRun(ctx, job("job-2", deployAgent), dispatched)
			require.NoError(t, err)
			assert.Nil(t, run, "a job without a run")
		})
	}
}
