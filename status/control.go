package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The transitions people ask for (package control drives them against
// GitHub; these methods only record them, with the same compare-and-set
// as deliveries, so that a request racing a delivery is decided once).
// Hosts act on jobs through control.Controller, which calls them; they
// are exported for it.

// StatusError is returned when a job's status does not allow what was
// asked: cancelling a finished job, re-running a running one, approving a
// job that waits for nothing. Its kind is ErrTransition. Hosts take it
// apart with errors.As to show the job's status and what it allows.
type StatusError struct {
	JobID  string
	Status Status
	// Reason says what the status allows instead.
	Reason string
}

// Error says the job's status and what it allows instead.
func (e *StatusError) Error() string {
	return fmt.Sprintf("job %s is %s: %s", e.JobID, e.Status, e.Reason)
}

// Is matches ErrTransition and its class (failure.ErrFailed).
func (e *StatusError) Is(target error) bool {
	return target == ErrTransition || errors.Is(ErrTransition, target)
}

// change runs decide on the job with compare-and-set retries. decide
// returns the update, or nil and an error to refuse; nil and nil leave
// the job as it is.
func (t *Tracker) change(ctx context.Context, id string, decide func(j Job) (*Update, error)) (Job, error) {
	var refused error
	res, err := t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, id) }, func(j Job) (*Update, Result) {
		u, err := decide(j)
		refused = err
		if u == nil {
			return nil, Result{Effect: Unchanged}
		}
		return u, Result{}
	})
	switch {
	case err != nil:
		return res.Job, err
	case res.Effect == NoJob:
		return Job{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	return res.Job, refused
}

// Cancel finishes an unfinished job as cancelled at once: a job that
// never reached GitHub (its dispatch, if queued, then never goes out: a
// dispatch step stores its state only for a pending job), or one whose
// GitHub object ghbridge has just ended (a deployment marked inactive, a
// pull request closed). by is recorded as the transition's actor.
// control.Controller.Cancel calls it; hosts rarely need it.
func (t *Tracker) Cancel(ctx context.Context, id, by, message string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		switch {
		case j.Status == Cancelled:
			return nil, nil // GitHub's delivery of what was done got here first
		case j.Status.Final():
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: "only an unfinished job can be cancelled"}
		}
		return &Update{Status: Cancelled, Message: &message, Control: &Control{}, Source: "cancel", Actor: by}, nil
	})
}

// CancelPending finishes a job as cancelled if it is still pending with
// nothing on GitHub; ok is false (and nothing changed) otherwise, for the
// caller to cancel what the job started. control.Controller.Cancel calls
// it.
func (t *Tracker) CancelPending(ctx context.Context, id, by, message string) (j Job, ok bool, err error) {
	j, err = t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Status != Pending || j.RunID != 0 || j.DeploymentID != 0 || j.PullRequestNumber != 0 {
			return nil, nil
		}
		return &Update{Status: Cancelled, Message: &message, Control: &Control{}, Source: "cancel", Actor: by}, nil
	})
	return j, err == nil && j.Status == Cancelled && j.Message == message, err
}

// RequestCancel records that by asked to cancel a job that runs on
// GitHub. The job stays as it is until GitHub reports the run cancelled
// (or finished otherwise: a run that completes first keeps its outcome).
// When the run is known, the cancel is recorded as being sent (the caller
// sends it; CancelSent with a zero time undoes that if it fails), so that
// a concurrent sweep does not send it too. control.Controller.Cancel
// calls it.
func (t *Tracker) RequestCancel(ctx context.Context, id, by string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Status.Final() {
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: "only an unfinished job can be cancelled"}
		}
		if j.Control.Cancelling() {
			return nil, nil // asked already: the first request stands
		}
		c := j.Control.clone()
		c.CancelRequestedAt, c.CancelRequestedBy = t.now(), by
		if j.RunID != 0 {
			c.CancelSentAt = c.CancelRequestedAt
		}
		msg := "cancel requested by " + by
		return &Update{Control: &c, Message: &msg, Source: "cancel"}, nil
	})
}

// CancelSent records that GitHub was asked to cancel (force false) or
// force-cancel (force true) the job's run at a time; a zero time records
// that it was not. control.Controller calls it.
func (t *Tracker) CancelSent(ctx context.Context, id string, force bool, at time.Time) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Status.Final() || !j.Control.Cancelling() {
			return nil, nil
		}
		c := j.Control.clone()
		if force {
			c.ForceCancelSentAt = at
		} else {
			c.CancelSentAt = at
		}
		return &Update{Control: &c, Source: "cancel"}, nil
	})
}

// RequestRerun records that by asked to re-run a finished job's run: the
// next run attempt is then followed as the job's (see ApplyRun), whatever
// the RerunPolicy. It returns the job with Control.RerunAttempt set.
// control.Controller.Rerun calls it, then RerunStarted or RerunRefused.
func (t *Tracker) RequestRerun(ctx context.Context, id, by string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if !j.Status.Final() {
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: "only a finished job can be re-run"}
		}
		if j.RunID == 0 {
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: "it has no workflow run to re-run"}
		}
		c := j.Control.clone()
		c.RerunAttempt, c.RerunBy = max(j.RunAttempt, 1)+1, by
		return &Update{Control: &c, Source: "rerun"}, nil
	})
}

// RerunStarted records that GitHub accepted the re-run asked with
// RequestRerun: the job goes back to in_progress for the new attempt,
// unless the attempt's deliveries got there first.
func (t *Tracker) RerunStarted(ctx context.Context, id string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		attempt := j.Control.RerunAttempt
		if attempt == 0 || j.RunAttempt >= attempt || !j.Status.Final() {
			return nil, nil
		}
		msg := fmt.Sprintf("re-run requested by %s: run %d attempt %d", j.Control.RerunBy, j.RunID, attempt)
		return &Update{Status: InProgress, Message: &msg, RunID: j.RunID, RunAttempt: attempt, Progress: &Progress{},
			Control: &Control{}, Source: "rerun", Actor: j.Control.RerunBy}, nil
	})
}

// RerunRefused withdraws a re-run request GitHub refused.
func (t *Tracker) RerunRefused(ctx context.Context, id string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Control.RerunAttempt == 0 || j.RunAttempt >= j.Control.RerunAttempt {
			return nil, nil
		}
		c := j.Control.clone()
		c.RerunAttempt, c.RerunBy = 0, ""
		return &Update{Control: &c, Source: "rerun"}, nil
	})
}

// NeverReachedGitHub reports whether a finished job ended before anything
// of it existed on GitHub (its dispatch failed), so that running it again
// means dispatching it again (see control.WithRedispatch). Hosts use it
// to offer the right action.
func (j Job) NeverReachedGitHub() bool {
	return j.Status.Final() && j.RunID == 0 && j.DeploymentID == 0 && j.PullRequestNumber == 0
}

// Redispatch puts a finished job that never reached GitHub back to
// pending, for its dispatch to run again. Of concurrent calls one
// succeeds; the others find the job pending and get a *StatusError.
// control.Controller.Rerun calls it.
func (t *Tracker) Redispatch(ctx context.Context, id, by string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if !j.NeverReachedGitHub() {
			reason := "only a finished job can be run again"
			if j.Status.Final() {
				reason = "it reached GitHub; re-run its run instead"
			}
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: reason}
		}
		msg := "dispatch requested again by " + by
		return &Update{Status: Pending, Message: &msg, Control: &Control{}, Progress: &Progress{}, Source: "rerun", Actor: by}, nil
	})
}

// AwaitApproval records that the job's run waits for a decision: the job
// becomes action_required with the approval listed (one per kind and
// environment). control.Controller's routes call it.
func (t *Tracker) AwaitApproval(ctx context.Context, id string, a Approval) (Job, error) {
	if a.RequestedAt.IsZero() {
		a.RequestedAt = t.now()
	}
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Status.Final() {
			return nil, &StatusError{JobID: j.ID, Status: j.Status, Reason: "a finished job waits for nothing"}
		}
		c := j.Control.clone()
		i := slices.IndexFunc(c.Approvals, func(o Approval) bool { return o.Kind == a.Kind && o.Environment == a.Environment })
		if i >= 0 {
			if j.Status == ActionRequired && slices.Equal(c.Approvals[i].Reviewers, a.Reviewers) && c.Approvals[i].EnvironmentID == a.EnvironmentID {
				return nil, nil
			}
			c.Approvals[i] = a
		} else {
			c.Approvals = append(c.Approvals, a)
		}
		msg := approvalMessage(c.Approvals)
		return &Update{Status: ActionRequired, Message: &msg, Control: &c, Source: "approval"}, nil
	})
}

func approvalMessage(as []Approval) string {
	var parts []string
	for _, a := range as {
		s := fmt.Sprintf("environment %q", a.Environment)
		if a.Kind == ApprovalProtectionRule {
			s += " (deployment protection rule)"
		} else if len(a.Reviewers) > 0 {
			s += " (reviewers: " + strings.Join(a.Reviewers, ", ") + ")"
		}
		parts = append(parts, s)
	}
	return "waiting for approval of " + strings.Join(parts, ", ")
}

// Decided records a decision on the approvals decided (all of the job's
// when nil): approved ones let the run go on (in_progress once none is
// left), a rejection leaves the job until GitHub ends the run. by and
// comment go into the history. control.Controller.Approve and Reject
// call it.
func (t *Tracker) Decided(ctx context.Context, id string, decided []Approval, approved bool, by, comment string) (Job, error) {
	return t.change(ctx, id, func(j Job) (*Update, error) {
		if j.Status.Final() {
			return nil, nil // GitHub decided meanwhile: what it said stands
		}
		c := j.Control.clone()
		c.Approvals = slices.DeleteFunc(c.Approvals, func(a Approval) bool {
			return decided == nil || slices.ContainsFunc(decided, func(d Approval) bool { return d.Kind == a.Kind && d.Environment == a.Environment })
		})
		verb := "approved"
		if !approved {
			verb = "rejected"
		}
		msg := verb + " by " + by
		if comment != "" {
			msg += ": " + comment
		}
		u := &Update{Message: &msg, Control: &c, Source: "approval", Actor: by}
		if approved && len(c.Approvals) == 0 && j.Status == ActionRequired {
			u.Status = InProgress
		}
		return u, nil
	})
}
