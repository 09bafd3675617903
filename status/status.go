// Package status keeps jobs' statuses in step with GitHub: it maps
// workflow runs to job statuses, applies webhook deliveries to jobs
// without ever regressing a finished one, and reports job statuses back to
// GitHub as deployment statuses and check runs.
//
// # Mapping
//
//	workflow_run status requested, queued, pending, in_progress           -> in_progress
//	workflow_run status waiting (an environment awaits approval)         -> action_required
//	conclusion success                                                   -> successful
//	conclusion failure, timed_out, startup_failure                       -> failure
//	conclusion cancelled                                                 -> cancelled
//	conclusion action_required                                           -> action_required
//	conclusion skipped, neutral, stale                                   -> skipped
//
// An unknown status of a run that has not completed maps to in_progress;
// an unknown conclusion maps to failure, so that a job never looks
// successful by accident. Both are logged.
//
// # Rules
//
// A finished job (successful, failure, cancelled, skipped, and the
// invalid_* statuses set before any run) never changes status again: a
// late or repeated delivery is acknowledged and ignored. Updates of one
// run attempt apply in the order of the run's updated_at, so an
// out-of-order delivery cannot move a job backwards. A run is applied to a
// job only if the run's repository (and installation, when both are known)
// match the job's: one tenant cannot move another tenant's job.
//
// A re-run (run_attempt above the job's) of an unfinished job is followed.
// A re-run of a finished job that was asked for through the SDK
// (RequestRerun, which package control's Rerun calls) is followed: the
// job goes back to in_progress for the new attempt, its history keeps the
// earlier ones, and deliveries of older attempts never move it again.
// Other re-runs of a finished job (someone clicked "Re-run" on GitHub)
// follow the RerunPolicy, whose default is to ignore them, which keeps
// the rule above: the job's outcome was reported and acted upon. A host
// that treats such re-runs as retries of the job says so with
// WithRerunPolicy.
//
// Each transition records its source, its run attempt and who asked for
// it (Transition.Actor), when someone did.
package status

import "slices"

// Status is a job's status. Hosts store it with the job and show it.
type Status string

// Job statuses, in the order of a job's life. The invalid_* statuses and
// external_run_not_found come from a failed dispatch (see
// StatusForDispatchError).
const (
	Pending             Status = "pending"
	InProgress          Status = "in_progress"
	ActionRequired      Status = "action_required"
	Successful          Status = "successful"
	Failure             Status = "failure"
	Cancelled           Status = "cancelled"
	Skipped             Status = "skipped"
	InvalidJobAgent     Status = "invalid_job_agent"
	InvalidIntegration  Status = "invalid_integration"
	ExternalRunNotFound Status = "external_run_not_found"
)

var statuses = []Status{Pending, InProgress, ActionRequired, Successful, Failure, Cancelled, Skipped,
	InvalidJobAgent, InvalidIntegration, ExternalRunNotFound}

// Statuses returns every status, in the order of a job's life. Hosts use
// it to list the valid values (an API's error message, a query filter).
func Statuses() []Status { return slices.Clone(statuses) }

// Valid reports whether s is a known status. Hosts check a status read
// from outside (a request, a database row) with it.
func (s Status) Valid() bool {
	for _, v := range statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether a job in status s is finished for good, so that
// hosts stop waiting on it. external_run_not_found is not final: the run
// may still report.
func (s Status) Final() bool {
	switch s {
	case Successful, Failure, Cancelled, Skipped, InvalidJobAgent, InvalidIntegration:
		return true
	}
	return false
}

// rank orders statuses along a job's life, for updates that carry the
// same timestamp.
func (s Status) rank() int {
	switch {
	case s == Pending:
		return 0
	case s.Final():
		return 3
	case s == ExternalRunNotFound:
		return 1
	}
	return 2
}

// canTransition reports whether a job may go from one status to another:
// never out of a final status, never back to pending.
func canTransition(from, to Status) bool {
	switch {
	case !to.Valid():
		return false
	case from == to:
		return true
	case from.Final():
		return false
	case to == Pending:
		return false
	}
	return true
}

// runStatuses maps a workflow run's status, before completion, to a job
// status.
var runStatuses = map[string]Status{
	"requested": InProgress,
	"queued":    InProgress,
	"pending":   InProgress,
	// waiting: the run waits for a person to approve a protected
	// environment's deployment.
	"waiting":         ActionRequired,
	"action_required": ActionRequired,
	"in_progress":     InProgress,
}

// runConclusions maps a completed workflow run's conclusion to a job
// status.
var runConclusions = map[string]Status{
	"success":         Successful,
	"failure":         Failure,
	"timed_out":       Failure,
	"startup_failure": Failure,
	"cancelled":       Cancelled,
	"action_required": ActionRequired,
	"skipped":         Skipped,
	"neutral":         Skipped,
	"stale":           Skipped,
}

// fromRun maps a workflow run's status and conclusion to a job status.
// known is false for a value missing from the tables; the status returned
// then is the safe one (in_progress before completion, failure after).
func fromRun(status, conclusion string) (s Status, known bool) {
	if status != "completed" {
		if s, ok := runStatuses[status]; ok {
			return s, true
		}
		return InProgress, false
	}
	if s, ok := runConclusions[conclusion]; ok {
		return s, true
	}
	return Failure, false
}
