package dispatch

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors a dispatch can fail with, matched with errors.Is. Each comes
// wrapped in an *Error that says what to do about it. Errors from the
// credentials and template packages pass through unchanged (so
// credentials.ErrNotConfigured and template.ErrMissingKey match too),
// wrapped by ErrInvalidAgentConfig or ErrInvalidIntegration.
var (
	// ErrInvalidJob means the job itself is unusable (no id, say).
	ErrInvalidJob = errors.New("invalid job")
	// ErrInvalidAgentConfig means the agent config did not render or
	// validate; the job's status is invalid_job_agent.
	ErrInvalidAgentConfig = errors.New("invalid job agent config")
	// ErrInvalidIntegration means no credential could be resolved or used;
	// the job's status is invalid_integration.
	ErrInvalidIntegration = errors.New("GitHub integration not usable")
	// ErrWorkflowNotFound means the repository has no such workflow.
	ErrWorkflowNotFound = errors.New("workflow not found")
	// ErrNoDispatchTrigger means the workflow lacks on: workflow_dispatch.
	ErrNoDispatchTrigger = errors.New("workflow has no workflow_dispatch trigger")
	// ErrWorkflowDisabled means the workflow is disabled.
	ErrWorkflowDisabled = errors.New("workflow is disabled")
	// ErrRefNotFound means the ref to run on does not exist.
	ErrRefNotFound = errors.New("ref not found")
	// ErrInvalidInputs means the workflow rejected the inputs.
	ErrInvalidInputs = errors.New("workflow rejected the inputs")
	// ErrMissingPermission means the App lacks a permission the call needs
	// (Actions: write for workflow_dispatch).
	ErrMissingPermission = errors.New("missing GitHub App permission")
	// ErrRepoNotAccessible means the credential cannot see the repository.
	ErrRepoNotAccessible = errors.New("repository not accessible")
	// ErrRateLimited means GitHub rate-limited the request for longer than
	// the transport would wait; Error.RetryAt says when to try again.
	ErrRateLimited = errors.New("rate limited by GitHub")
	// ErrRejected means GitHub rejected the request for another reason.
	ErrRejected = errors.New("GitHub rejected the request")
	// ErrUnavailable means GitHub could not be reached or failed, and no
	// run was started: the dispatch can be retried.
	ErrUnavailable = errors.New("GitHub unavailable")
	// ErrDispatchUncertain means a request failed after it may have reached
	// GitHub and ghbridge could not tell whether it started a run, so it
	// did not retry: retrying could start the job twice. The run, if any,
	// is matched to the job by its job id when it reports.
	ErrDispatchUncertain = errors.New("dispatch outcome unknown")
	// ErrRunNotFound means the dispatch was accepted but no run carrying
	// the job id showed up in time. The Result is still returned.
	ErrRunNotFound = errors.New("dispatched, but the run was not found")
)

// Error is a dispatch failure with what GitHub said and what to do.
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

// Is matches the Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }
