package status

import (
	"context"
	"fmt"
	"time"
)

// DeploymentUpdate is what a deployment_status delivery says. Register
// and the Poller fill it; hosts that route deliveries themselves fill it
// for ApplyDeploymentStatus.
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

// fromDeploymentState maps a deployment status's state to a job status;
// known is false for a state GitHub did not document.
func fromDeploymentState(state string) (s Status, known bool) {
	s, known = deploymentStates[state]
	return s, known
}

// ApplyDeploymentStatus applies a deployment status to the deployment job
// that created the deployment. Statuses ghbridge posted itself come back
// as deliveries too and change nothing: those posted by the App named
// with WithAppID, and any whose state is the one ghbridge reports for the
// job's status (DeploymentState), such as the in_progress it posts for an
// action_required job. Register calls it for deployment_status
// deliveries; hosts that route deliveries themselves call it.
func (t *Tracker) ApplyDeploymentStatus(ctx context.Context, d DeploymentUpdate) (Result, error) {
	if d.JobID == "" {
		return Result{Effect: NoJob, Reason: "deployment has no job_id in its payload"}, nil
	}
	to, known := fromDeploymentState(d.State)
	if !known {
		t.log.WarnContext(ctx, "unknown deployment state ignored", "state", d.State, "deployment_id", d.DeploymentID)
		return Result{Effect: Unchanged, Reason: "unknown deployment state " + d.State}, nil
	}
	return t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, d.JobID) }, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, d.Repository, d.InstallationID); !ok {
			return nil, res
		}
		if j.DeploymentID != d.DeploymentID {
			return nil, Result{Effect: NoJob, Reason: fmt.Sprintf("job %s is not deployment %d's", j.ID, d.DeploymentID)}
		}
		if j.Status.Final() {
			return nil, Result{Effect: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
		}
		if t.appID != 0 && d.AppID == t.appID {
			return nil, Result{Effect: Unchanged, Reason: "ghbridge's own report"}
		}
		if d.State == DeploymentState(j.Status) {
			return nil, Result{Effect: Unchanged, Reason: "the state ghbridge reports for " + string(j.Status)}
		}
		if to == j.Status || !canTransition(j.Status, to) {
			return nil, Result{Effect: Unchanged}
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
