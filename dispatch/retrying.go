package dispatch

import (
	"context"
)

// retrying sends a request that may start the job until it succeeds,
// fails definitely, or fails ambiguously and recover cannot prove that
// nothing happened. recover returns done when it found the effect of an
// earlier attempt, and nil with done false when a retry is safe.
func (a *attempt) retrying(ctx context.Context, op, target string, send func() error, recover func(*Error) (bool, error)) error {
	for {
		err := a.send(ctx, send)
		if err == nil {
			return nil
		}
		e, kind := a.classify(ctx, op, target, err)
		if kind == definite || a.step {
			// In a Step an ambiguous failure is resolved by the next
			// Step, which looks before it sends.
			a.unsure = kind == ambiguous
			return e
		}
		if ctx.Err() != nil {
			return a.uncertain(e, "the context ended before the outcome could be checked")
		}
		done, rerr := recover(e)
		if rerr != nil || done {
			return rerr
		}
		if a.sent >= a.max {
			return e
		}
	}
}
