package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/status"
)

// Rerun runs a finished job again for by:
//   - a job with a workflow run: GitHub re-runs the run (all its jobs, or
//     with failedOnly the failed ones) as a new run_attempt, and the job
//     goes back to in_progress for that attempt. Earlier attempts stay in
//     its history, and late deliveries of them do not move it;
//   - a job that never reached GitHub (its dispatch failed): dispatched
//     again through WithRedispatch, exactly once however many callers ask
//     at the same time.
//
// An unfinished job answers a *status.StatusError; a deployment or pull
// request job ErrNotSupported (create a new job instead).
func (c *Controller) Rerun(ctx context.Context, jobID string, failedOnly bool, by string) (status.Job, error) {
	j, err := c.store.GetJob(ctx, jobID)
	if err != nil {
		return j, err
	}
	switch {
	case !j.Status.Final():
		return j, &status.StatusError{JobID: j.ID, Status: j.Status, Reason: "only a finished job can be re-run"}
	case j.NeverReachedGitHub():
		if c.redispatch == nil {
			return j, fmt.Errorf("%w: job %s never reached GitHub, and this host does not dispatch jobs again", ErrNotSupported, j.ID)
		}
		if j, err = c.tracker.Redispatch(ctx, jobID, by); err != nil {
			return j, err
		}
		return j, c.redispatch(ctx, j)
	case j.RunID == 0:
		return j, fmt.Errorf("%w: job %s is a %s job without a workflow run to re-run; create a new job", ErrNotSupported, j.ID, j.Kind)
	}
	if j, err = c.tracker.RequestRerun(ctx, jobID, by); err != nil {
		return j, err
	}
	cl, _, err := c.client(ctx, j)
	if err == nil {
		op := "rerun"
		if failedOnly {
			op = "rerun-failed-jobs"
		}
		var req *http.Request
		req, err = cl.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/actions/runs/%d/%s", j.Owner, j.Repo, j.RunID, op), nil)
		if err == nil {
			_, err = cl.Do(ctx, req, nil)
			if err != nil {
				err = refused(fmt.Sprintf("%s of run %d", op, j.RunID), err)
			}
		}
	}
	if err != nil {
		if _, rerr := c.tracker.RerunRefused(ctx, jobID); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return j, err
	}
	c.log.InfoContext(ctx, "run re-run", "job_id", j.ID, "run_id", j.RunID, "attempt", j.Control.RerunAttempt, "failed_only", failedOnly, "by", by)
	return c.tracker.RerunStarted(ctx, jobID)
}

// ensureApprovals returns the job's approvals, reading the run's pending
// deployments when none are recorded (a waiting delivery lost, say).
func (c *Controller) ensureApprovals(ctx context.Context, cl *gh.Client, j status.Job) (status.Job, error) {
	if len(j.Control.Approvals) > 0 || j.RunID == 0 {
		return j, nil
	}
	return c.recordReviewers(ctx, cl, j)
}

// pendingDeployment is one entry of GET .../pending_deployments; go-github
// v62 has no method for it.
type pendingDeployment struct {
	Environment struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"environment"`
	CurrentUserCanApprove bool `json:"current_user_can_approve"`
	Reviewers             []struct {
		Type     string `json:"type"`
		Reviewer struct {
			Login string `json:"login"`
			Slug  string `json:"slug"`
		} `json:"reviewer"`
	} `json:"reviewers"`
}

// recordReviewers reads the run's pending deployments and records each as
// an approval the job waits for.
func (c *Controller) recordReviewers(ctx context.Context, cl *gh.Client, j status.Job) (status.Job, error) {
	req, err := cl.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/actions/runs/%d/pending_deployments", j.Owner, j.Repo, j.RunID), nil)
	if err != nil {
		return j, err
	}
	var pending []pendingDeployment
	if _, err := cl.Do(ctx, req, &pending); err != nil {
		return j, refused(fmt.Sprintf("reading the pending deployments of run %d", j.RunID), err)
	}
	for _, p := range pending {
		a := status.Approval{Kind: status.ApprovalReviewers, Environment: p.Environment.Name, EnvironmentID: p.Environment.ID}
		for _, r := range p.Reviewers {
			name := r.Reviewer.Login
			if r.Type == "Team" {
				name = "team:" + r.Reviewer.Slug
			}
			a.Reviewers = append(a.Reviewers, name)
		}
		if j, err = c.tracker.AwaitApproval(ctx, j.ID, a); err != nil {
			return j, err
		}
	}
	return j, nil
}
