// Package failure sorts the errors of ghbridge into the few classes a
// host acts on: retry later (ErrTransient), or give up with a job status
// that says whose fix it is (ErrInvalidIntegration, ErrInvalidJobAgent,
// ErrRunNotFound, ErrFailed).
//
// Every error that packages credentials and dispatch return is in exactly
// one class, matched with errors.Is (Class says ErrFailed of an error that
// names none):
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

// The classes. Hosts match an error against them with errors.Is (or
// switch on Class) to choose between a retry and a final job status.
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
// ErrFailed for an error that names no class, nil for nil. Hosts that map
// errors to job statuses switch on it.
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
// ErrTransient. A host's queue calls it to decide between a retry and a
// final status.
func IsTransient(err error) bool { return Class(err) == ErrTransient }

// New returns a sentinel error with the text msg in class: errors.Is
// matches it by identity, and its class too. The packages of ghbridge
// declare their sentinels with it; a host may too, for the errors of its
// own stores or token source.
func New(class error, msg string) error { return &sentinel{msg: msg, class: class} }

type sentinel struct {
	msg   string
	class error
}

func (s *sentinel) Error() string { return s.msg }

// Is matches the sentinel's class.
func (s *sentinel) Is(target error) bool { return target == s.class }

// Retryer is implemented by errors that know when to try again (a rate
// limit's reset, a Retry-After header); dispatch.Error is one. Hosts
// rarely implement it: it names the method RetryAfter looks for.
type Retryer interface {
	RetryAfter() time.Time
}

// RetryAfter returns when err says to try again, the zero time when it
// does not say. A host's queue schedules a transient failure's retry at
// it, or with its own backoff for the zero time.
func RetryAfter(err error) time.Time {
	var r Retryer
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return time.Time{}
}

// Mark returns err in class: it matches class with errors.Is and unwraps
// to err. An error already in a class other than ErrFailed keeps it.
// Hosts rarely need it: the packages of ghbridge mark the failures of
// what they call with it (a host's store that fails, in a database
// outage say, is marked ErrTransient).
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
