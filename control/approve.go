package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook"
)

// Approve approves what a job waiting for approval (action_required)
// waits for: ghbridge answers each custom deployment protection rule
// request on the run's deployment callback, and reviews each pending
// deployment as a required reviewer (see WithReviewer). comment goes to
// GitHub and, with by, to the job's history.
//
// A job that waits for nothing answers a *status.StatusError. When GitHub
// decided first (it timed the rule out, the run was cancelled), the job
// shows what GitHub decided and the answer is a *status.StatusError with
// that status.
func (c *Controller) Approve(ctx context.Context, jobID, comment, by string) (status.Job, error) {
	return c.decide(ctx, jobID, true, comment, by)
}

// Reject rejects what a job waiting for approval waits for, as Approve
// approves it; GitHub then fails the run.
func (c *Controller) Reject(ctx context.Context, jobID, comment, by string) (status.Job, error) {
	return c.decide(ctx, jobID, false, comment, by)
}

func (c *Controller) decide(ctx context.Context, jobID string, approve bool, comment, by string) (status.Job, error) {
	j, err := c.store.GetJob(ctx, jobID)
	if err != nil {
		return j, err
	}
	if j.Status != status.ActionRequired {
		return j, &status.StatusError{JobID: j.ID, Status: j.Status, Reason: "only a job waiting for approval (action_required) can be approved or rejected"}
	}
	cl, cred, err := c.client(ctx, j)
	if err != nil {
		return j, err
	}
	if j, err = c.ensureApprovals(ctx, cl, j); err != nil {
		return j, err
	}
	if len(j.Control.Approvals) == 0 {
		return j, &status.StatusError{JobID: j.ID, Status: j.Status, Reason: "nothing waits for approval"}
	}
	return c.answer(ctx, cl, cred, j, j.Control.Approvals, approve, comment, by)
}

// answer sends the decision on approvals to GitHub and records it.
func (c *Controller) answer(ctx context.Context, cl *gh.Client, cred credentials.Credential, j status.Job, approvals []status.Approval, approve bool, comment, by string) (status.Job, error) {
	state := "rejected"
	if approve {
		state = "approved"
	}
	var envIDs []int64
	var envs []string
	for _, a := range approvals {
		if a.Kind != status.ApprovalProtectionRule {
			envIDs, envs = append(envIDs, a.EnvironmentID), append(envs, a.Environment)
			continue
		}
		body := map[string]string{"environment_name": a.Environment, "state": state, "comment": comment}
		req, err := cl.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/actions/runs/%d/deployment_protection_rule", j.Owner, j.Repo, j.RunID), body)
		if err == nil {
			_, err = cl.Do(ctx, req, nil)
		}
		if err != nil {
			return c.lateOrRefused(ctx, cl, j, refused(fmt.Sprintf("answering the protection rule of environment %q", a.Environment), err))
		}
	}
	if len(envIDs) > 0 {
		rcl, who := cl, "the job's credential ("+credentialName(cred)+")"
		if c.reviewer != nil {
			rc, ok, err := c.reviewer(ctx, j)
			if err != nil {
				return j, err
			}
			switch {
			case ok && rc == nil:
				return j, errors.New("the reviewer function reported a reviewer but returned no client")
			case ok:
				rcl, who = rc, "the reviewer credential"
			}
		}
		req, err := rcl.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/actions/runs/%d/pending_deployments", j.Owner, j.Repo, j.RunID),
			map[string]any{"environment_ids": envIDs, "state": state, "comment": comment})
		if err == nil {
			_, err = rcl.Do(ctx, req, nil)
		}
		if code := statusCode(err); code == http.StatusUnprocessableEntity || code == http.StatusForbidden {
			nj, lerr := c.lateOrRefused(ctx, cl, j, err)
			var se *status.StatusError
			if errors.As(lerr, &se) {
				return nj, lerr
			}
			return nj, fmt.Errorf("%w: GitHub lets only a required reviewer of environment %s review the run's deployment, and %s is not one (%v); give ghbridge a reviewer's token",
				ErrNotReviewer, strings.Join(envs, ", "), who, err)
		}
		if err != nil {
			return c.lateOrRefused(ctx, cl, j, refused("reviewing the pending deployments of "+strings.Join(envs, ", "), err))
		}
	}
	c.log.InfoContext(ctx, "approvals answered", "job_id", j.ID, "run_id", j.RunID, "state", state, "by", by)
	return c.tracker.Decided(ctx, j.ID, approvals, approve, by, comment)
}

// lateOrRefused reads the run after GitHub refused an answer: when GitHub
// decided already (timed out the rule, ended the run), the job takes the
// run's status and the error says so.
func (c *Controller) lateOrRefused(ctx context.Context, cl *gh.Client, j status.Job, err error) (status.Job, error) {
	if nj, ok := c.refresh(ctx, cl, j, "approval"); ok && nj.Status != status.ActionRequired {
		return nj, &status.StatusError{JobID: j.ID, Status: nj.Status, Reason: "GitHub decided before the answer (" + nj.Message + ")"}
	}
	return j, err
}

func credentialName(cred credentials.Credential) string {
	if cred.Type == credentials.TypeInstallation {
		return "installation " + strconv.FormatInt(cred.InstallationID, 10)
	}
	return string(cred.Type)
}

// callbackPath matches a deployment_callback_url.
var callbackPath = regexp.MustCompile(`/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/deployment_protection_rule$`)

// Register routes the deliveries a Controller acts on. Register the
// tracker's routes first (status.Tracker.Register): these handlers read
// what it stored.
//   - deployment_protection_rule requested: the job of the run waits for
//     this App's decision (action_required, the environment named); a
//     ProtectionPolicy may decide at once.
//   - workflow_run waiting: the run waits for required reviewers; their
//     environments and names are read from the run's pending deployments.
//     A run still going for a cancelled job is cancelled.
//   - check_run rerequested, or requested_action "rerun" / "cancel", on
//     a check run this App created for a job (WithAppID): the job is
//     re-run or cancelled, by the delivery's sender.
func (c *Controller) Register(h *webhook.Handler) {
	webhook.Handle(h, "deployment_protection_rule.requested", func(ctx context.Context, d *webhook.Delivery, e *webhook.DeploymentProtectionRuleEvent) error {
		return c.protectionRequested(ctx, e)
	})
	webhook.Handle(h, "workflow_run", func(ctx context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		return c.runReported(ctx, e)
	})
	webhook.Handle(h, "check_run", func(ctx context.Context, d *webhook.Delivery, e *webhook.CheckRunEvent) error {
		return c.checkRunAsked(ctx, e)
	})
}

// jobOfRun finds the job of a run of repo; ok is false for runs of no
// job, or of a job of another repository or installation.
func (c *Controller) jobOfRun(ctx context.Context, u status.RunUpdate) (status.Job, bool, error) {
	j, err := c.tracker.FindRunJob(ctx, u)
	if errors.Is(err, status.ErrJobNotFound) {
		return j, false, nil
	}
	if err != nil {
		return j, false, err
	}
	if !strings.EqualFold(j.Repository(), u.Repository) || (u.InstallationID != 0 && j.InstallationID != 0 && u.InstallationID != j.InstallationID) ||
		(j.RunID != 0 && j.RunID != u.RunID) {
		return j, false, nil
	}
	return j, true, nil
}

func (c *Controller) protectionRequested(ctx context.Context, e *webhook.DeploymentProtectionRuleEvent) error {
	m := callbackPath.FindStringSubmatch(e.DeploymentCallbackURL)
	if m == nil || !strings.EqualFold(m[1]+"/"+m[2], e.Repository.FullName) {
		c.log.WarnContext(ctx, "deployment protection rule request without a callback of its repository ignored", "repo", e.Repository.FullName)
		return nil
	}
	runID, _ := strconv.ParseInt(m[3], 10, 64)
	j, ok, err := c.jobOfRun(ctx, status.RunUpdate{RunID: runID, Repository: e.Repository.FullName, InstallationID: e.Installation.ID})
	if err != nil || !ok {
		return err
	}
	if j.Status.Final() {
		return nil
	}
	a := status.Approval{Kind: status.ApprovalProtectionRule, Environment: e.Environment}
	if j, err = c.tracker.AwaitApproval(ctx, j.ID, a); err != nil {
		var se *status.StatusError
		if errors.As(err, &se) {
			return nil
		}
		return err
	}
	if c.policy == nil {
		return nil
	}
	dec, err := c.policy(ctx, j, ProtectionRequest{Environment: e.Environment, RunID: runID, Event: e.Event, Ref: e.Ref, SHA: e.SHA, Requester: e.Sender.Login})
	if err != nil {
		c.log.WarnContext(ctx, "the protection policy failed; the request waits for a person", "job_id", j.ID, "error", err)
		return nil
	}
	if dec.Verdict == Undecided {
		return nil
	}
	cl, cred, err := c.client(ctx, j)
	if err != nil {
		return err
	}
	_, err = c.answer(ctx, cl, cred, j, []status.Approval{a}, dec.Verdict == Approve, dec.Comment, "policy")
	var se *status.StatusError
	if errors.As(err, &se) {
		return nil
	}
	return err
}

func (c *Controller) runReported(ctx context.Context, e *webhook.WorkflowRunEvent) error {
	r := e.WorkflowRun
	if r.Status == "completed" {
		return nil
	}
	j, ok, err := c.jobOfRun(ctx, status.RunUpdate{RunID: r.ID, RunAttempt: r.RunAttempt, DisplayTitle: r.DisplayTitle, Name: r.Name,
		Repository: e.Repository.FullName, InstallationID: e.Installation.ID})
	if err != nil || !ok {
		return err
	}
	switch {
	case j.Status == status.Cancelled && j.RunID == 0:
		// A run going on for a job cancelled before its run was known (an
		// earlier dispatch request reached GitHub after all): end it.
		j.RunID = r.ID
		_, err := c.sendCancel(ctx, j, false)
		var se *status.StatusError
		if errors.As(err, &se) {
			err = nil
		}
		return err
	case r.Status == "waiting" && j.Status == status.ActionRequired &&
		!slices.ContainsFunc(j.Control.Approvals, func(a status.Approval) bool { return a.Kind == status.ApprovalReviewers }):
		cl, _, err := c.client(ctx, j)
		if err != nil {
			return err
		}
		_, err = c.recordReviewers(ctx, cl, j)
		return err
	}
	return nil
}

func (c *Controller) checkRunAsked(ctx context.Context, e *webhook.CheckRunEvent) error {
	action := e.Action
	if action == "requested_action" {
		action = e.RequestedAction.Identifier
	}
	if action != "rerequested" && action != "rerun" && action != "cancel" {
		return nil
	}
	cr := e.CheckRun
	if c.appID == 0 || cr.App.ID != c.appID || cr.ExternalID == "" {
		return nil // not a check run of ghbridge's
	}
	j, err := c.store.GetJob(ctx, cr.ExternalID)
	if errors.Is(err, status.ErrJobNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if j.Report.CheckRunID != cr.ID || !strings.EqualFold(j.Repository(), e.Repository.FullName) ||
		(e.Installation.ID != 0 && j.InstallationID != 0 && e.Installation.ID != j.InstallationID) {
		c.log.WarnContext(ctx, "check run delivery for another job's check run ignored", "job_id", j.ID, "check_run_id", cr.ID)
		return nil
	}
	by := actorOf(e.Sender.Login)
	if action == "cancel" {
		_, err = c.Cancel(ctx, j.ID, by)
	} else {
		_, err = c.Rerun(ctx, j.ID, false, by)
	}
	var se *status.StatusError
	if errors.As(err, &se) || errors.Is(err, ErrNotSupported) {
		c.log.InfoContext(ctx, "check run request not applicable", "job_id", j.ID, "action", action, "reason", err)
		return nil
	}
	return err
}
