// Package wait holds the one way ghbridge's packages spend a wait of real
// time: interrupted by the context.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends and then returns its error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
