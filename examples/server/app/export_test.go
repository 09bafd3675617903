package app

import (
	"time"

	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/status"
)

// WithBackoff sets the wait before try n of a dispatch after a transient
// failure, for tests that ride out GitHub's failures without waiting
// seconds between tries.
func WithBackoff(backoff func(n int) time.Duration) Option {
	return func(s *Server) { s.backoff = backoff }
}

// WithQueuePoll sets how often the SQLite queue looks for due jobs, for
// tests of a job that nothing enqueued.
func WithQueuePoll(d time.Duration) Option {
	return func(s *Server) { s.queuePoll = d }
}

// WithClientOptions adds options to the server's GitHub client factory,
// for tests that ride out GitHub's failures with a short retry policy
// instead of the default waits of half a second and more.
func WithClientOptions(opts ...github.Option) Option {
	return func(s *Server) { s.clientOpts = append(s.clientOpts, opts...) }
}

// WithTransitionHook calls fn after every stored status change of a job,
// for tests that wait for one instead of polling.
func WithTransitionHook(fn func(status.Job, status.Transition)) Option {
	return func(s *Server) { s.onTransition = fn }
}

// UnverifiedBytes returns the body bytes the webhook route holds at this
// moment for deliveries whose signature is not checked yet.
func UnverifiedBytes(s *Server) int64 { return s.hooks.UnverifiedBytes() }
