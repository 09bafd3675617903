package webhook

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ctxKey struct{}

// TestLazyDeadlineAnswersLikeWithDeadline checks each way a lazy deadline
// ends against context.WithDeadline, and that the usual path (asked for
// its deadline, error and values while live, then stopped) needs no timer.
func TestLazyDeadlineAnswersLikeWithDeadline(t *testing.T) {
	t.Parallel()
	base := context.WithValue(context.Background(), ctxKey{}, "v")

	t.Run("LiveNeedsNoTimer", func(t *testing.T) {
		t.Parallel()
		c := withLazyDeadline(base, time.Now().Add(time.Hour))
		require.NoError(t, c.Err())
		assert.Equal(t, "v", c.Value(ctxKey{}))
		d, ok := c.Deadline()
		assert.True(t, ok)
		assert.WithinDuration(t, time.Now().Add(time.Hour), d, time.Minute)
		assert.Nil(t, c.armed.Load(), "nothing waited")
		c.stop()
		assert.Nil(t, c.armed.Load(), "stopping needs no timer either")
		assert.ErrorIs(t, c.Err(), context.Canceled)
		assert.ErrorIs(t, context.Cause(c), context.Canceled)
		assertClosed(t, c.Done())
	})

	t.Run("PastDeadline", func(t *testing.T) {
		t.Parallel()
		c := withLazyDeadline(base, time.Now().Add(-time.Second))
		defer c.stop()
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
		assert.ErrorIs(t, context.Cause(c), context.DeadlineExceeded)
		assertClosed(t, c.Done())
		assert.Equal(t, "v", c.Value(ctxKey{}))
	})

	t.Run("DeadlineReachedWhileWaiting", func(t *testing.T) {
		t.Parallel()
		c := withLazyDeadline(base, time.Now().Add(20*time.Millisecond))
		defer c.stop()
		<-c.Done() // arms the timer, which ends the wait
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	})

	t.Run("ParentCanceled", func(t *testing.T) {
		t.Parallel()
		parent, cancel := context.WithCancelCause(base)
		c := withLazyDeadline(parent, time.Now().Add(time.Hour))
		defer c.stop()
		cause := errors.New("client went away")
		cancel(cause)
		assert.ErrorIs(t, c.Err(), context.Canceled)
		assert.ErrorIs(t, context.Cause(c), cause)
		assertClosed(t, c.Done())
	})

	t.Run("ParentDeadlineIsEarlier", func(t *testing.T) {
		t.Parallel()
		parent, cancel := context.WithDeadline(base, time.Now().Add(time.Minute))
		defer cancel()
		c := withLazyDeadline(parent, time.Now().Add(time.Hour))
		defer c.stop()
		want, _ := parent.Deadline()
		got, _ := c.Deadline()
		assert.Equal(t, want, got)
	})

	t.Run("DerivedContextsAndAfterFunc", func(t *testing.T) {
		t.Parallel()
		c := withLazyDeadline(base, time.Now().Add(time.Hour))
		child, cancelChild := context.WithCancel(c)
		defer cancelChild()
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		c.stop()
		assertClosed(t, child.Done())
		<-ran
		assert.ErrorIs(t, child.Err(), context.Canceled)
	})

	t.Run("ConcurrentWaitAndStop", func(t *testing.T) {
		t.Parallel()
		c := withLazyDeadline(base, time.Now().Add(time.Hour))
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-c.Done()
				assert.ErrorIs(t, c.Err(), context.Canceled)
			}()
		}
		c.stop()
		wg.Wait()
	})
}

func assertClosed(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	default:
		t.Fatal("Done is not closed")
	}
}
