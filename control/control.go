// Package control lets operators act on jobs that run on GitHub: cancel
// them, run them again, and approve or reject the deployments their runs
// wait for. Package status records what was asked and follows what GitHub
// then reports; this package makes the GitHub calls.
//
//	action                   GitHub calls                                      job status
//	Cancel, not dispatched   none (a queued dispatch never goes out)           pending -> cancelled
//	Cancel, workflow run     POST .../runs/{id}/cancel, after the grace        unchanged until the run reports,
//	                         period POST .../runs/{id}/force-cancel            then cancelled (or its own outcome)
//	Cancel, deployment       POST .../deployments/{id}/statuses inactive       -> cancelled
//	Cancel, pull request     POST .../issues/{n}/comments, PATCH .../pulls/{n} -> cancelled
//	Rerun, workflow run      POST .../runs/{id}/rerun or rerun-failed-jobs     finished -> in_progress (attempt + 1)
//	Rerun, never dispatched  the host's dispatch again (WithRedispatch)        finished -> pending -> ...
//	Approve/Reject, rule     POST .../runs/{id}/deployment_protection_rule     action_required -> in_progress / run fails
//	Approve/Reject, review   POST .../runs/{id}/pending_deployments            action_required -> in_progress / run fails
//
// A Controller's Register routes the deliveries that ask for decisions
// (deployment_protection_rule), show reviewers are needed (a workflow_run
// waiting), or ask for a re-run on ghbridge's own check run (check_run
// rerequested, or a requested action "rerun" or "cancel").
//
// Who asked is recorded with each change (the by argument, "policy" for
// a ProtectionPolicy's decision, "github:LOGIN" for deliveries).
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/internal/textlimit"
	"github.com/ghbridge/ghbridge/status"
)

// Errors of a Controller's actions. Each matches a class of package
// failure (failure.ErrFailed: asking again does not help).
var (
	// ErrRefused is returned when GitHub refused an action; the error's
	// text carries GitHub's answer. Hosts test for it to tell a refusal
	// from an outage.
	ErrRefused = failure.New(failure.ErrFailed, "GitHub refused the request")
	// ErrNotReviewer is returned when approving or rejecting a pending
	// deployment with a credential that is not one of the environment's
	// required reviewers (see WithReviewer). It matches ErrRefused.
	ErrNotReviewer = fmt.Errorf("%w: the credential is not a required reviewer", ErrRefused)
	// ErrNotSupported is returned for an action the job's kind does not
	// have (re-running a deployment job, say). Hosts test for it to
	// answer "not supported" rather than "failed".
	ErrNotSupported = failure.New(failure.ErrFailed, "not supported for this job")
)

// ClientSource gives the GitHub client for a job's target and the
// credential it authenticates with; *github.ClientSource is the
// implementation. Hosts pass one to New.
type ClientSource interface {
	For(ctx context.Context, t credentials.Target) (*gh.Client, credentials.Credential, error)
}

// Verdict is a ProtectionPolicy's answer (Decision.Verdict).
type Verdict int

// Verdicts.
const (
	// Undecided leaves the decision to a person (Controller.Approve or
	// Reject).
	Undecided Verdict = iota
	// Approve and Reject answer the request at once.
	Approve
	Reject
)

// ProtectionRequest is a deployment protection rule's request for a
// decision, as a ProtectionPolicy receives it.
type ProtectionRequest struct {
	Environment string
	RunID       int64
	// Event, Ref and SHA describe what the run deploys.
	Event, Ref, SHA string
	// Requester is the login that caused the deployment.
	Requester string
}

// Decision is a ProtectionPolicy's answer, with the comment GitHub shows.
type Decision struct {
	Verdict Verdict
	Comment string
}

// ProtectionPolicy decides a deployment protection rule's request at
// once, or leaves it Undecided for a person. An error leaves it too, and
// is logged. Hosts that decide by rule (a deploy window, say) pass one to
// WithProtectionPolicy.
type ProtectionPolicy func(ctx context.Context, j status.Job, r ProtectionRequest) (Decision, error)

// Controller makes the GitHub calls of operators' actions on jobs. Hosts
// that let people cancel, re-run or approve jobs make one (New) and route
// its deliveries (Register). It is safe for concurrent use.
type Controller struct {
	tracker    *status.Tracker
	store      status.JobStore
	clients    ClientSource
	log        *slog.Logger
	now        func() time.Time
	grace      time.Duration
	policy     ProtectionPolicy
	redispatch func(ctx context.Context, j status.Job) error
	reviewer   func(ctx context.Context, j status.Job) (*gh.Client, bool, error)
	appID      int64
}

// Option configures a Controller (New).
type Option func(*Controller)

// WithForceCancelAfter sets how long a run may ignore its cancel before
// it is force-cancelled (default, and 0: 2 minutes; see Sweep).
func WithForceCancelAfter(d time.Duration) Option {
	return func(c *Controller) {
		if d > 0 {
			c.grace = d
		}
	}
}

// WithProtectionPolicy decides deployment protection rule requests as
// they arrive, the way a go-githubapp handler would: approve or reject
// at once with a comment, or leave the request to a person (default, and
// nil: every request waits for a person).
func WithProtectionPolicy(p ProtectionPolicy) Option { return func(c *Controller) { c.policy = p } }

// WithRedispatch lets Rerun run again a finished job that never reached
// GitHub (its dispatch failed): fn is called after the job is back to
// pending, and must queue its dispatch (the host's queue: reset its
// retry schedule, keep what says whether a request may have reached
// GitHub, and enqueue). Without it (or with nil) such jobs cannot be
// re-run.
func WithRedispatch(fn func(ctx context.Context, j status.Job) error) Option {
	return func(c *Controller) { c.redispatch = fn }
}

// WithReviewer gives the client that reviews pending deployments of a
// job's run, authenticated with a token of one of the environment's
// required reviewers (GitHub lets only them approve; build it with
// github.ClientFactory.Client). ok false means none: the job's own
// client is used, and GitHub's refusal reported as ErrNotReviewer. Hosts
// whose runs wait for required reviewers set it (nil: none).
func WithReviewer(fn func(ctx context.Context, j status.Job) (client *gh.Client, ok bool, err error)) Option {
	return func(c *Controller) { c.reviewer = fn }
}

// WithAppID names ghbridge's own GitHub App, so that check_run deliveries
// of check runs it created can re-run or cancel their jobs; without it
// they are ignored. Hosts that run as a GitHub App set it.
func WithAppID(id int64) Option { return func(c *Controller) { c.appID = id } }

// WithLogger sets the logger (default, and nil: none).
func WithLogger(l *slog.Logger) Option {
	return func(c *Controller) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the clock (default, and nil: time.Now). Tests set it.
func WithClock(now func() time.Time) Option {
	return func(c *Controller) {
		if now != nil {
			c.now = now
		}
	}
}

// New returns a Controller over the tracker's jobs that gets its clients
// from clients.
func New(t *status.Tracker, clients ClientSource, opts ...Option) *Controller {
	c := &Controller{tracker: t, store: t.Store(), clients: clients,
		log: slog.New(slog.DiscardHandler), now: time.Now, grace: 2 * time.Minute}
	for _, o := range opts {
		o(c)
	}
	return c
}

// client returns a client with the job's credential.
func (c *Controller) client(ctx context.Context, j status.Job) (*gh.Client, credentials.Credential, error) {
	return c.clients.For(ctx, credentials.Target{Tenant: j.Tenant, Owner: j.Owner, Repo: j.Repo, InstallationID: j.InstallationID, JobID: j.ID})
}

// refused wraps GitHub's refusal of a request (a 4xx answer) as
// ErrRefused. A rate limit, a 5xx or no answer at all is transient: the
// operator's action can be tried again. Credential errors keep their
// class.
func refused(op string, err error) error {
	var rl *gh.RateLimitError
	var arl *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	switch {
	case errors.As(err, &rl), errors.As(err, &arl):
		return failure.Mark(failure.ErrTransient, fmt.Errorf("%s: %w", op, err))
	case errors.As(err, &er) && er.Response != nil:
		if code := er.Response.StatusCode; code == http.StatusTooManyRequests || code >= 500 {
			return failure.Mark(failure.ErrTransient, fmt.Errorf("%s: %w", op, err))
		}
		return fmt.Errorf("%w: %s: %d %s", ErrRefused, op, er.Response.StatusCode, er.Message)
	case failure.Class(err) != failure.ErrFailed:
		return fmt.Errorf("%s: %w", op, err) // a credential's error, classified
	}
	return failure.Mark(failure.ErrTransient, fmt.Errorf("%s: %w", op, err)) // no answer
}

func statusCode(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// accepted treats go-github's AcceptedError (a 202 answer) as success.
func accepted(err error) error {
	var ae *gh.AcceptedError
	if errors.As(err, &ae) {
		return nil
	}
	return err
}

// Cancel cancels a job for by (recorded in its history):
//   - not dispatched yet (pending): cancelled at once, nothing sent;
//   - a workflow run: GitHub is asked to cancel it, and the job becomes
//     cancelled when the run reports so (a run that completes first
//     keeps its outcome); Sweep force-cancels it after the grace period,
//     and sends the cancel of a run not known yet once it is;
//   - a deployment: marked inactive, then cancelled;
//   - a pull request: commented on and closed, then cancelled.
//
// A finished job answers a *status.StatusError.
func (c *Controller) Cancel(ctx context.Context, jobID, by string) (status.Job, error) {
	j, err := c.store.GetJob(ctx, jobID)
	if err != nil {
		return j, err
	}
	if j.Status.Final() {
		return j, &status.StatusError{JobID: j.ID, Status: j.Status, Reason: "only an unfinished job can be cancelled"}
	}
	if j.Status == status.Pending {
		nj, ok, err := c.tracker.CancelPending(ctx, jobID, by, "cancelled by "+by+" before it reached GitHub")
		if ok || err != nil {
			return nj, err
		}
		j = nj // dispatched meanwhile: cancel what it started
		if j.Status.Final() {
			return j, &status.StatusError{JobID: j.ID, Status: j.Status, Reason: "only an unfinished job can be cancelled"}
		}
	}
	switch {
	case j.RunID != 0 || j.Kind == "" || j.Kind == "workflow_dispatch" || j.Kind == "repository_dispatch":
		if j, err = c.tracker.RequestCancel(ctx, jobID, by); err != nil || j.RunID == 0 {
			return j, err // the run is not known yet: Sweep cancels it once it is
		}
		return c.sendCancel(ctx, j, false)
	case j.DeploymentID != 0:
		if j, err = c.tracker.RequestCancel(ctx, jobID, by); err != nil {
			return j, err
		}
		if err := c.endDeployment(ctx, j, "cancelled by "+by); err != nil {
			return j, err
		}
		return c.tracker.Cancel(ctx, jobID, by, fmt.Sprintf("cancelled by %s: deployment %d marked inactive", by, j.DeploymentID))
	case j.PullRequestNumber != 0:
		if j, err = c.tracker.RequestCancel(ctx, jobID, by); err != nil {
			return j, err
		}
		if err := c.closePull(ctx, j, by); err != nil {
			return j, err
		}
		return c.tracker.Cancel(ctx, jobID, by, fmt.Sprintf("cancelled by %s: pull request #%d closed", by, j.PullRequestNumber))
	}
	return c.tracker.Cancel(ctx, jobID, by, "cancelled by "+by)
}

// sendCancel asks GitHub to cancel (or force-cancel) the job's run. A
// run that completed already (409) is read and applied to the job, and
// the job's final status returned as a *status.StatusError.
func (c *Controller) sendCancel(ctx context.Context, j status.Job, force bool) (status.Job, error) {
	cl, _, err := c.client(ctx, j)
	if err != nil {
		return j, err
	}
	op := "cancel"
	if force {
		op = "force-cancel"
	}
	req, err := cl.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/actions/runs/%d/%s", j.Owner, j.Repo, j.RunID, op), nil)
	if err != nil {
		return j, err
	}
	_, err = cl.Do(ctx, req, nil)
	if err = accepted(err); err != nil {
		if statusCode(err) == http.StatusConflict {
			if nj, ok := c.refresh(ctx, cl, j, "cancel"); ok && nj.Status.Final() {
				return nj, &status.StatusError{JobID: j.ID, Status: nj.Status, Reason: "its run completed before the cancel reached GitHub"}
			}
		}
		if _, uerr := c.tracker.CancelSent(ctx, j.ID, force, time.Time{}); uerr != nil {
			c.log.WarnContext(ctx, "recording an unsent cancel failed", "job_id", j.ID, "error", uerr)
		}
		return j, refused(op+" of run "+fmt.Sprint(j.RunID), err)
	}
	c.log.InfoContext(ctx, "run cancel sent", "job_id", j.ID, "run_id", j.RunID, "force", force)
	return c.tracker.CancelSent(ctx, j.ID, force, c.now())
}

// refresh reads the job's run and applies it.
func (c *Controller) refresh(ctx context.Context, cl *gh.Client, j status.Job, source string) (status.Job, bool) {
	run, _, err := cl.Actions.GetWorkflowRunByID(ctx, j.Owner, j.Repo, j.RunID)
	if err != nil {
		c.log.WarnContext(ctx, "reading the job's run failed", "job_id", j.ID, "run_id", j.RunID, "error", err)
		return j, false
	}
	res, err := c.tracker.ApplyRun(ctx, status.RunUpdateOf(run, j.Repository(), j.InstallationID, source))
	if err != nil {
		return j, false
	}
	if res.Job.ID == "" {
		return j, true
	}
	return res.Job, true
}

func (c *Controller) endDeployment(ctx context.Context, j status.Job, why string) error {
	cl, _, err := c.client(ctx, j)
	if err != nil {
		return err
	}
	// GitHub's documentation: "inactive" marks a deployment that no
	// longer runs; a cancelled one never will.
	_, _, err = cl.Repositories.CreateDeploymentStatus(ctx, j.Owner, j.Repo, j.DeploymentID, &gh.DeploymentStatusRequest{
		State: gh.String("inactive"), Description: gh.String(textlimit.Runes(why, 140)),
	})
	if err != nil {
		return refused(fmt.Sprintf("marking deployment %d inactive", j.DeploymentID), err)
	}
	return nil
}

func (c *Controller) closePull(ctx context.Context, j status.Job, by string) error {
	cl, _, err := c.client(ctx, j)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("Cancelled by %s through ghbridge (job `%s`).", by, j.ID)
	if _, _, err := cl.Issues.CreateComment(ctx, j.Owner, j.Repo, j.PullRequestNumber, &gh.IssueComment{Body: gh.String(body)}); err != nil {
		return refused(fmt.Sprintf("commenting on pull request #%d", j.PullRequestNumber), err)
	}
	if _, _, err := cl.PullRequests.Edit(ctx, j.Owner, j.Repo, j.PullRequestNumber, &gh.PullRequest{State: gh.String("closed")}); err != nil {
		return refused(fmt.Sprintf("closing pull request #%d", j.PullRequestNumber), err)
	}
	return nil
}

// Started is for the host's dispatch queue, after a dispatch step that
// started something (res): if the job was cancelled meanwhile (a cancel
// that raced the step), what the step started is ended at once, so that
// no run goes on for a cancelled job. It reports whether it did.
func (c *Controller) Started(ctx context.Context, jobID string, res dispatch.Receipt) (bool, error) {
	j, err := c.store.GetJob(ctx, jobID)
	if err != nil || j.Status != status.Cancelled {
		return false, err
	}
	if j.Owner == "" {
		j.Owner, j.Repo = res.Owner, res.Repo
	}
	if j.InstallationID == 0 {
		j.InstallationID = res.InstallationID
	}
	by := "ghbridge"
	if n := len(j.History); n > 0 && j.History[n-1].Actor != "" {
		by = j.History[n-1].Actor
	}
	switch {
	case res.RunID != 0:
		j.RunID = res.RunID
		_, err = c.sendCancel(ctx, j, false)
		var se *status.StatusError
		if errors.As(err, &se) {
			err = nil // completed already
		}
	case res.DeploymentID != 0:
		j.DeploymentID = res.DeploymentID
		err = c.endDeployment(ctx, j, "cancelled by "+by)
	case res.PullRequestNumber != 0:
		j.PullRequestNumber = res.PullRequestNumber
		err = c.closePull(ctx, j, by)
	default:
		return false, nil
	}
	if err == nil {
		c.log.WarnContext(ctx, "a dispatch raced a cancel: what it started was ended", "job_id", jobID, "run_id", res.RunID,
			"deployment_id", res.DeploymentID, "pull_request", res.PullRequestNumber)
	}
	return err == nil, err
}

// SweepReport counts what a Sweep did, for the host's logs and metrics.
type SweepReport struct {
	Checked, Sent, Forced, Failed int
}

// Sweep moves the cancels under way along: it sends the cancel of runs
// that were not known when it was asked, and force-cancels runs still
// going a grace period after their cancel was sent. Hosts call it
// periodically; the job store must implement status.CancelLister.
func (c *Controller) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	lister, ok := c.store.(status.CancelLister)
	if !ok {
		return rep, errors.New("control: the job store does not list cancels; implement status.CancelLister on it to sweep them")
	}
	jobs, err := lister.ListCancelling(ctx, 100)
	if err != nil {
		return rep, err
	}
	now := c.now()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Checked++
		force := false
		switch k := j.Control; {
		case j.RunID == 0:
			continue
		case k.CancelSentAt.IsZero():
		case k.ForceCancelSentAt.IsZero() && now.Sub(k.CancelSentAt) >= c.grace:
			force = true
		default:
			continue
		}
		_, err := c.sendCancel(ctx, j, force)
		var se *status.StatusError
		switch {
		case errors.As(err, &se):
			// The run completed meanwhile; its outcome stands.
		case err != nil:
			rep.Failed++
			c.log.WarnContext(ctx, "sending a cancel failed", "job_id", j.ID, "run_id", j.RunID, "force", force, "error", err)
		case force:
			rep.Forced++
		default:
			rep.Sent++
		}
	}
	return rep, nil
}

// actorOf names the sender of a delivery for the history.
func actorOf(login string) string {
	if login == "" {
		return "github"
	}
	return "github:" + strings.TrimSpace(login)
}
