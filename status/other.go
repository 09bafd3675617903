package status

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// PullRequestUpdate is what a pull_request delivery says.
type PullRequestUpdate struct {
	Action         string
	Number         int
	Merged         bool
	Body           string
	HeadRef        string
	Repository     string
	InstallationID int64
}

// prMarker finds the job id in a pull request's body; qualified ids
// ("tenant.id") hold a '.'.
var prMarker = regexp.MustCompile(`ghbridge-job: ([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)`)

// pullJobID finds the job id of a pull request ghbridge opened: in the
// marker of its body, else in its default head branch name.
func pullJobID(p PullRequestUpdate) string {
	if m := prMarker.FindStringSubmatch(p.Body); m != nil {
		return m[1]
	}
	if id, ok := strings.CutPrefix(p.HeadRef, "ghbridge/job-"); ok {
		return id
	}
	return ""
}

// ApplyPullRequest finishes a pull-request job when its pull request is
// closed: merged is successful, closed without merging is cancelled.
func (t *Tracker) ApplyPullRequest(ctx context.Context, p PullRequestUpdate) (Result, error) {
	if p.Action != "closed" {
		return Result{Outcome: Unchanged, Reason: "only closing a pull request finishes its job"}, nil
	}
	id := pullJobID(p)
	if id == "" {
		return Result{Outcome: NoJob, Reason: "not a ghbridge pull request"}, nil
	}
	return t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, id) }, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, p.Repository, p.InstallationID); !ok {
			return nil, res
		}
		if j.PullRequestNumber != 0 && j.PullRequestNumber != p.Number {
			return nil, Result{Outcome: NoJob, Reason: fmt.Sprintf("job %s belongs to pull request #%d", j.ID, j.PullRequestNumber)}
		}
		if j.Status.Final() {
			return nil, Result{Outcome: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
		}
		to, msg := Cancelled, fmt.Sprintf("pull request #%d closed without merging", p.Number)
		if p.Merged {
			to, msg = Successful, fmt.Sprintf("pull request #%d merged", p.Number)
		}
		u := &Update{Status: to, Message: &msg, PullRequestNumber: p.Number, Source: "pull_request", Control: &Control{}}
		if to == Cancelled && j.Control.CancelRequestedBy != "" {
			u.Actor = j.Control.CancelRequestedBy
		}
		return u, Result{}
	})
}

// DeploymentUpdate is what a deployment_status delivery says.
type DeploymentUpdate struct {
	DeploymentID int64
	State        string
	Description  string
	LogURL       string
	// JobID is the job_id of the deployment's payload.
	JobID          string
	Repository     string
	InstallationID int64
	CreatedAt      time.Time
	// AppID is the App that posted the status (performed_via_github_app),
	// 0 when unknown.
	AppID int64
}

// deploymentStates maps a deployment status state to a job status.
var deploymentStates = map[string]Status{
	"queued":      Pending,
	"pending":     Pending,
	"in_progress": InProgress,
	// waiting: the deployment awaits approval of a protected environment.
	"waiting":  ActionRequired,
	"success":  Successful,
	"failure":  Failure,
	"error":    Failure,
	"inactive": Cancelled,
}

// FromDeploymentState maps a deployment status's state to a job status;
// known is false for a state GitHub did not document.
func FromDeploymentState(state string) (s Status, known bool) {
	s, known = deploymentStates[state]
	return s, known
}

// ApplyDeploymentStatus applies a deployment status to the deployment job
// that created the deployment. Statuses ghbridge posted itself come back
// as deliveries too and change nothing: those posted by the App named
// with WithAppID, and any whose state is the one ghbridge reports for the
// job's status (DeploymentState), such as the in_progress it posts for an
// action_required job.
func (t *Tracker) ApplyDeploymentStatus(ctx context.Context, d DeploymentUpdate) (Result, error) {
	if d.JobID == "" {
		return Result{Outcome: NoJob, Reason: "deployment has no job_id in its payload"}, nil
	}
	to, known := FromDeploymentState(d.State)
	if !known {
		t.log.WarnContext(ctx, "unknown deployment state ignored", "state", d.State, "deployment_id", d.DeploymentID)
		return Result{Outcome: Unchanged, Reason: "unknown deployment state " + d.State}, nil
	}
	return t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, d.JobID) }, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, d.Repository, d.InstallationID); !ok {
			return nil, res
		}
		if j.DeploymentID != d.DeploymentID {
			return nil, Result{Outcome: NoJob, Reason: fmt.Sprintf("job %s is not deployment %d's", j.ID, d.DeploymentID)}
		}
		if j.Status.Final() {
			return nil, Result{Outcome: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
		}
		if t.appID != 0 && d.AppID == t.appID {
			return nil, Result{Outcome: Unchanged, Reason: "ghbridge's own report"}
		}
		if d.State == DeploymentState(j.Status) {
			return nil, Result{Outcome: Unchanged, Reason: "the state ghbridge reports for " + string(j.Status)}
		}
		if to == j.Status || !CanTransition(j.Status, to) {
			return nil, Result{Outcome: Unchanged}
		}
		msg := "deployment " + d.State
		if d.Description != "" {
			msg += ": " + d.Description
		}
		u := &Update{Status: to, Message: &msg, Source: "deployment_status"}
		if to.Final() {
			u.Control = &Control{}
			if to == Cancelled && j.Control.CancelRequestedBy != "" {
				u.Actor = j.Control.CancelRequestedBy
			}
		}
		if d.LogURL != "" && j.RunURL == "" {
			u.RunURL = d.LogURL
		}
		return u, Result{}
	})
}
