package github

import (
	"context"
	"time"
)

// WithSleep replaces the retrying transport's waits (backoff, GitHub's
// rate-limit waits), for tests that check a wait without spending it.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(f *ClientFactory) { f.cfg.sleep = sleep }
}

// SetHookAfterMiss sets a function run between a cache miss and joining
// the exchange in flight (see TokenCache.hookAfterMiss).
func (c *TokenCache) SetHookAfterMiss(hook func(ctx context.Context)) { c.hookAfterMiss = hook }
