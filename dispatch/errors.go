package dispatch

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ghbridge/ghbridge/failure"
)

// Errors a dispatch can fail with, matched with errors.Is. Each comes
// wrapped in an *Error that says what to do about it, and each is in one
// class of package failure: ErrUnavailable, ErrRateLimited and
// ErrDispatchUncertain are failure.ErrTransient (try again: a dispatch
// whose outcome is unknown is looked up before anything is sent again);
// the others are permanent. Errors from the
// credentials and template packages pass through unchanged (so
// credentials.ErrNotConfigured and template.ErrMissingKey match too),
// wrapped by ErrInvalidAgentConfig or ErrInvalidIntegration. Hosts act on
// the class and match a sentinel when they tell a person what is wrong.
var (
	// ErrInvalidJob means the job itself is unusable (no id, say).
	ErrInvalidJob = failure.New(failure.ErrInvalidJobAgent, "invalid job")
	// ErrInvalidAgentConfig means the agent config did not render or
	// validate; the job's status is invalid_job_agent.
	ErrInvalidAgentConfig = failure.New(failure.ErrInvalidJobAgent, "invalid job agent config")
	// ErrInvalidIntegration means no credential could be resolved or used;
	// the job's status is invalid_integration.
	ErrInvalidIntegration = failure.New(failure.ErrInvalidIntegration, "GitHub integration not usable")
	// ErrWorkflowNotFound means the repository has no such workflow.
	ErrWorkflowNotFound = failure.New(failure.ErrInvalidJobAgent, "workflow not found")
	// ErrNoDispatchTrigger means the workflow lacks on: workflow_dispatch.
	ErrNoDispatchTrigger = failure.New(failure.ErrInvalidJobAgent, "workflow has no workflow_dispatch trigger")
	// ErrWorkflowDisabled means the workflow is disabled.
	ErrWorkflowDisabled = failure.New(failure.ErrInvalidJobAgent, "workflow is disabled")
	// ErrRefNotFound means the ref to run on does not exist.
	ErrRefNotFound = failure.New(failure.ErrInvalidJobAgent, "ref not found")
	// ErrInvalidInputs means the workflow rejected the inputs.
	ErrInvalidInputs = failure.New(failure.ErrInvalidJobAgent, "workflow rejected the inputs")
	// ErrMissingPermission means the App lacks a permission the call needs
	// (Actions: write for workflow_dispatch).
	ErrMissingPermission = failure.New(failure.ErrInvalidIntegration, "missing GitHub App permission")
	// ErrRepoNotAccessible means the credential cannot see the repository.
	ErrRepoNotAccessible = failure.New(failure.ErrInvalidIntegration, "repository not accessible")
	// ErrRateLimited means GitHub rate-limited the request for longer than
	// the transport would wait; Error.RetryAt says when to try again.
	ErrRateLimited = failure.New(failure.ErrTransient, "rate limited by GitHub")
	// ErrRejected means GitHub rejected the request for another reason.
	ErrRejected = failure.New(failure.ErrFailed, "GitHub rejected the request")
	// ErrUnavailable means GitHub could not be reached or failed, and no
	// run was started: the dispatch can be retried.
	ErrUnavailable = failure.New(failure.ErrTransient, "GitHub unavailable")
	// ErrDispatchUncertain means a request may have reached GitHub and
	// ghbridge cannot tell yet whether it started a run, so it did not
	// send it again: that could start the job twice. The next Step looks
	// for the run before anything else; the run, if any, is also matched
	// to the job by its job id when it reports.
	ErrDispatchUncertain = failure.New(failure.ErrTransient, "dispatch outcome unknown")
	// ErrRunNotFound means the dispatch was accepted but no run carrying
	// the job id showed up in time. The Receipt is still returned.
	ErrRunNotFound = failure.New(failure.ErrRunNotFound, "dispatched, but the run was not found")
)

// Error is a dispatch failure with what GitHub said and what to do. Hosts
// get it with errors.As to show StatusCode, Message and Hint to a person.
type Error struct {
	// Kind is one of the sentinel errors above.
	Kind error
	// Op is the kind of dispatch: workflow_dispatch, repository_dispatch,
	// deployment or pull_request.
	Op string
	// Repo is "owner/name"; Target the workflow, event type, environment
	// or branch.
	Repo, Target string
	// StatusCode and Message are GitHub's answer, when there was one.
	StatusCode int
	Message    string
	// RetryAt is set for ErrRateLimited.
	RetryAt time.Time
	// Hint says what to do.
	Hint string
	// Err is the underlying error.
	Err error
}

// Error describes the failure, GitHub's answer and what to do.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s", e.Op, e.Repo)
	if e.Target != "" {
		s += " " + e.Target
	}
	s += ": " + e.Kind.Error()
	if e.StatusCode != 0 {
		s += fmt.Sprintf(" (GitHub answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Message != "" {
			s += fmt.Sprintf(": %q", e.Message)
		}
		s += ")"
	} else if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	if !e.RetryAt.IsZero() {
		s += "; retry after " + e.RetryAt.UTC().Format(time.RFC3339)
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Is matches the Kind and its failure class.
func (e *Error) Is(target error) bool { return target == e.Kind || errors.Is(e.Kind, target) }

// RetryAfter returns RetryAt: when GitHub said to try again. Hosts read
// it through failure.RetryAfter.
func (e *Error) RetryAfter() time.Time { return e.RetryAt }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
