package failure_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/failure"
)

type rateLimited struct{ at time.Time }

func (r rateLimited) Error() string         { return "rate limited" }
func (r rateLimited) Is(target error) bool  { return target == failure.ErrTransient }
func (r rateLimited) RetryAfter() time.Time { return r.at }

func TestClass(t *testing.T) {
	notConfigured := failure.New(failure.ErrInvalidIntegration, "not configured")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"unclassified", errors.New("boom"), failure.ErrFailed},
		{"sentinel", notConfigured, failure.ErrInvalidIntegration},
		{"wrapped sentinel", fmt.Errorf("resolving: %w", notConfigured), failure.ErrInvalidIntegration},
		{"transient", rateLimited{at}, failure.ErrTransient},
		{"permanent cause wins over transient wrapper", fmt.Errorf("%w: %w", rateLimited{at}, failure.New(failure.ErrInvalidJobAgent, "bad config")), failure.ErrInvalidJobAgent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failure.Class(tc.err); got != tc.want {
				t.Errorf("Class = %v, want %v", got, tc.want)
			}
		})
	}
	if !errors.Is(notConfigured, notConfigured) {
		t.Error("a sentinel matches itself")
	}
	if errors.Is(notConfigured, failure.ErrTransient) {
		t.Error("a sentinel matches its own class only")
	}
	if got := failure.RetryAfter(fmt.Errorf("x: %w", rateLimited{at})); !got.Equal(at) {
		t.Errorf("RetryAfter = %v", got)
	}
	if !failure.RetryAfter(errors.New("x")).IsZero() {
		t.Error("no retry time for an error that does not say")
	}
	if !failure.IsTransient(rateLimited{at}) || failure.IsTransient(notConfigured) {
		t.Error("IsTransient")
	}
}

func ExampleClass() {
	err := fmt.Errorf("dispatching job-1: %w", failure.New(failure.ErrTransient, "GitHub unavailable"))
	switch failure.Class(err) {
	case failure.ErrTransient:
		fmt.Println("retry later:", err)
	case failure.ErrInvalidIntegration, failure.ErrInvalidJobAgent:
		fmt.Println("fix the setup:", err)
	}
	// Output: retry later: dispatching job-1: GitHub unavailable
}

func TestMark(t *testing.T) {
	down := errors.New("database is down")
	m := failure.Mark(failure.ErrTransient, down)
	if !errors.Is(m, down) || failure.Class(m) != failure.ErrTransient || m.Error() != down.Error() {
		t.Errorf("Mark: %v class %v", m, failure.Class(m))
	}
	bad := failure.New(failure.ErrInvalidJobAgent, "bad")
	if failure.Mark(failure.ErrTransient, bad) != bad {
		t.Error("a classified error keeps its class")
	}
	if failure.Mark(failure.ErrTransient, nil) != nil {
		t.Error("nil stays nil")
	}
}
