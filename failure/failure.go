// Package failure sorts the errors of ghbridge into the few classes a
// host acts on: retry later (ErrTransient), or give up with a job status
// that says whose fix it is (ErrInvalidIntegration, ErrInvalidJobAgent,
// ErrRunNotFound, ErrFailed).
//
// Every error that packages credentials and dispatch return matches
// exactly one class with errors.Is:
//
//	switch {
//	case errors.Is(err, failure.ErrTransient):
//		retry at failure.RetryAfter(err), or with backoff
//	case errors.Is(err, failure.ErrInvalidIntegration):
//		the job is invalid_integration: the App, its key or installation
//	...
//	}
//
// Class returns the class itself. The package holds no state and imports
// nothing of ghbridge, so that every package may use it.
package failure

import (
	"errors"
	"time"
)

// The classes.
var (
	// ErrTransient: network errors, timeouts, 5xx answers, 429 and rate
	// limits, a token exchange that got no answer. Nothing is wrong with
	// the job; try again later.
	ErrTransient = errors.New("transient failure")
	// ErrInvalidIntegration: the GitHub side of the setup is wrong: the
	// App key or id, an installation gone, suspended or not the tenant's,
	// a missing permission or repository access.
	ErrInvalidIntegration = errors.New("invalid GitHub integration")
	// ErrInvalidJobAgent: the job's agent config is wrong: it does not
	// render or validate, or names a workflow, ref, trigger or inputs
	// that GitHub refuses.
	ErrInvalidJobAgent = errors.New("invalid job agent config")
	// ErrRunNotFound: GitHub accepted the job, but its run did not show
	// up (the workflow lacks the job id in its run-name).
	ErrRunNotFound = errors.New("run not found")
	// ErrFailed: GitHub refused the request for another reason that a
	// retry will not change.
	ErrFailed = errors.New("failed")
)

// classes in the order Class checks them: the specific permanent ones
// first, so that a permanent cause wrapped in a transient-looking error
// stays permanent.
var classes = []error{ErrInvalidJobAgent, ErrInvalidIntegration, ErrRunNotFound, ErrTransient, ErrFailed}

// Class returns the class of err: one of the Err values of this package,
// ErrFailed for an error that names no class, nil for nil.
func Class(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range classes {
		if errors.Is(err, c) {
			return c
		}
	}
	return ErrFailed
}

// IsTransient reports whether err is worth retrying: its class is
// ErrTransient.
func IsTransient(err error) bool { return Class(err) == ErrTransient }

// Sentinel is an error value of a class: errors.Is matches it by identity
// and its class too. Packages declare their sentinels with New.
type Sentinel struct {
	msg   string
	class error
}

// New returns a sentinel error with the text msg in the given class.
func New(class error, msg string) *Sentinel { return &Sentinel{msg: msg, class: class} }

func (s *Sentinel) Error() string { return s.msg }

// Is matches the sentinel's class.
func (s *Sentinel) Is(target error) bool { return target == s.class }

// Retryer is implemented by errors that know when to try again (a rate
// limit's reset, a Retry-After header).
type Retryer interface {
	RetryAfter() time.Time
}

// RetryAfter returns when err says to try again, the zero time when it
// does not say.
func RetryAfter(err error) time.Time {
	var r Retryer
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return time.Time{}
}

// Mark returns err in class: it matches class with errors.Is and unwraps
// to err. An error already in a class other than ErrFailed keeps it. A
// host's store that fails (a database outage) is marked ErrTransient by
// the packages that call it.
func Mark(class, err error) error {
	if err == nil {
		return nil
	}
	if c := Class(err); c != ErrFailed {
		return err
	}
	return &marked{err: err, class: class}
}

type marked struct {
	err   error
	class error
}

func (m *marked) Error() string        { return m.err.Error() }
func (m *marked) Unwrap() error        { return m.err }
func (m *marked) Is(target error) bool { return target == m.class }
