package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ghbridge/ghbridge/internal/wait"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	assert.NoError(t, wait.Sleep(context.Background(), time.Millisecond))

	// An hour that only the context can end (else the test times out).
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Millisecond, cancel)
	assert.ErrorIs(t, wait.Sleep(ctx, time.Hour), context.Canceled)
}
