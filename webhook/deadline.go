package webhook

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is context.WithDeadline(parent, deadline) that creates its
// timer only when it must: when something waits on Done (directly, or by
// deriving a context), or when it is asked about after its deadline or
// its cancellation. Deliveries whose handlers and store never wait (an
// in-memory store, handlers that only compute) then cost no timer: a
// timer per delivery was a good part of a delivery's fixed cost.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time // the earlier of the parent's and the one asked for

	mu       sync.Mutex // serializes arm and stop
	armed    atomic.Pointer[armedDeadline]
	canceled atomic.Bool
}

// armedDeadline is the real context, once there is one.
type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// withLazyDeadline returns a context that is done at deadline, when the
// parent is done, or when stop is called, whichever comes first. Call
// stop when the work is done, as with a context.CancelFunc.
func withLazyDeadline(parent context.Context, deadline time.Time) *lazyDeadline {
	c := new(lazyDeadline)
	c.start(parent, deadline)
	return c
}

// start makes c, a zero lazyDeadline that nothing uses yet, what
// withLazyDeadline returns: so that it can be a field of a larger
// allocation.
func (c *lazyDeadline) start(parent context.Context, deadline time.Time) {
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.parent, c.deadline = parent, deadline
}

// Deadline implements context.Context.
func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context.
func (c *lazyDeadline) Done() <-chan struct{} { return c.arm().Done() }

// Err implements context.Context.
func (c *lazyDeadline) Err() error {
	if ctx := c.live(); ctx != nil {
		return ctx.Err()
	}
	return c.parent.Err() // a canceled parent's error, as a child's would be
}

// Value implements context.Context. It is the real context's once there
// is one, so that context.Cause and derived contexts see it.
func (c *lazyDeadline) Value(key any) any {
	if ctx := c.live(); ctx != nil {
		return ctx.Value(key)
	}
	return c.parent.Value(key)
}

// live returns the real context when there is one, or when one is needed
// to answer as context.WithDeadline would: after stop or the deadline.
func (c *lazyDeadline) live() context.Context {
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	// time.Until reads the monotonic clock only, when the deadline has a
	// monotonic reading (one made from time.Now).
	if c.canceled.Load() || time.Until(c.deadline) <= 0 {
		return c.arm()
	}
	return nil
}

// arm returns the real context, creating it the first time.
func (c *lazyDeadline) arm() context.Context {
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	if c.canceled.Load() {
		cancel()
	}
	c.armed.Store(&armedDeadline{ctx: ctx, cancel: cancel})
	return ctx
}

// stop cancels the context, like a context.CancelFunc.
func (c *lazyDeadline) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canceled.Store(true)
	if a := c.armed.Load(); a != nil {
		a.cancel()
	}
}

// String is for debugging, like the standard library's contexts.
func (c *lazyDeadline) String() string {
	return "webhook.withLazyDeadline(" + c.deadline.String() + ")"
}
