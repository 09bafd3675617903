package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/internal/jobid"
	"github.com/ghbridge/ghbridge/internal/wait"
	"github.com/ghbridge/ghbridge/template"
)

// dispatchRequest is the workflow_dispatch body. go-github v62 has no
// field for return_run_details, so the request is built here.
type dispatchRequest struct {
	Ref              string            `json:"ref"`
	Inputs           map[string]string `json:"inputs,omitempty"`
	ReturnRunDetails bool              `json:"return_run_details,omitempty"`
}

// runDetails is GitHub's answer to a dispatch with return_run_details.
type runDetails struct {
	WorkflowRunID int64  `json:"workflow_run_id"`
	RunURL        string `json:"run_url"`
	HTMLURL       string `json:"html_url"`
}

func (a *attempt) workflowDispatch(ctx context.Context, res *Receipt) error {
	const op = "workflow_dispatch"
	target := a.cfg.Workflow.String()
	inputs := withJobID(a.cfg.Inputs, a.jobID)
	base := a.client.BaseURL.String()
	since := a.d.now().Add(-a.d.lookup.ClockSkew)

	for {
		_, noDetails := a.d.noRunDetails.Load(base)
		// From API version 2026-03-10 the run is always answered and
		// the field is gone.
		noDetails = noDetails || a.d.alwaysRunDetails
		var details runDetails
		err := a.send(ctx, func() error {
			req, err := a.client.NewRequest(http.MethodPost, fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches",
				url.PathEscape(a.cfg.Owner), url.PathEscape(a.cfg.Repo), url.PathEscape(target)),
				dispatchRequest{Ref: a.cfg.Ref, Inputs: inputs, ReturnRunDetails: !noDetails})
			if err != nil {
				return err
			}
			_, err = a.client.Do(ctx, req, &details)
			return err
		})
		if err == nil {
			if details.WorkflowRunID != 0 {
				res.RunID, res.RunURL, res.HTMLURL = details.WorkflowRunID, details.RunURL, details.HTMLURL
				return nil
			}
			run, err := a.findRun(ctx, since, a.runTimeout())
			if err != nil {
				return err
			}
			if run == nil && a.step {
				return nil // accepted; the run is matched by its job id later
			}
			if run == nil {
				return &Error{Kind: ErrRunNotFound, Op: op, Repo: a.cfg.Repository(), Target: target,
					Hint: fmt.Sprintf("no run with the job id appeared within %s; put the job id in the workflow's run-name: \"run-name: Deploy ${{ inputs.job_id }}\"", a.d.lookup.Timeout)}
			}
			setRun(res, run)
			return nil
		}
		if !noDetails && !a.d.alwaysRunDetails && rejectsRunDetails(err) {
			// GitHub Enterprise Server 3.20 and older: nothing was
			// dispatched; send again without the field, and remember.
			a.d.noRunDetails.Store(base, true)
			a.d.log.InfoContext(ctx, "GitHub does not accept return_run_details; finding runs by job id instead", "base_url", base)
			continue
		}
		e, kind := a.classify(ctx, op, target, err)
		if kind == definite || a.step {
			// In a Step an ambiguous failure is resolved by the next
			// Step, which looks before it sends.
			a.unsure = kind == ambiguous
			return e
		}
		if err := a.resolveAmbiguous(ctx, e, since, res); err != nil || res.RunID != 0 {
			return err
		}
		if a.sent >= a.max {
			return e
		}
	}
}

// resolveAmbiguous looks for the job's run after a failure that may have
// started it. It fills res and returns nil when the run exists, returns
// nil with res untouched when provably no run was started (retry), and
// returns ErrDispatchUncertain otherwise.
func (a *attempt) resolveAmbiguous(ctx context.Context, failure *Error, since time.Time, res *Receipt) error {
	if ctx.Err() != nil {
		return a.uncertain(failure, "the context ended before the run could be looked for")
	}
	run, err := a.findRun(ctx, since, a.d.lookup.Settle)
	switch {
	case err != nil:
		return a.uncertain(failure, "looking for the run failed: "+err.Error())
	case run != nil:
		a.d.log.InfoContext(ctx, "dispatch failed ambiguously but its run exists", "job_id", a.jobID, "run_id", run.GetID())
		setRun(res, run)
		return nil
	}
	none, err := a.provablyNoRun(ctx, since)
	switch {
	case err != nil:
		return a.uncertain(failure, "listing runs failed: "+err.Error())
	case !none:
		return a.uncertain(failure, "runs without the job id in their title were started meanwhile; add the job id to the workflow's run-name so ghbridge can tell them apart")
	}
	return nil
}

func (a *attempt) uncertain(failure *Error, why string) error {
	return &Error{
		Kind: ErrDispatchUncertain, Op: failure.Op, Repo: failure.Repo, Target: failure.Target,
		StatusCode: failure.StatusCode, Message: failure.Message, Err: failure.Err,
		Hint: "not retried, to never start the job twice (" + why + "); the run is matched to the job by its id when it reports",
	}
}

func setRun(res *Receipt, run *gh.WorkflowRun) {
	res.RunID, res.RunURL, res.HTMLURL = run.GetID(), run.GetURL(), run.GetHTMLURL()
}

// rejectsRunDetails reports GitHub's answer to return_run_details from a
// server that does not know the field.
func rejectsRunDetails(err error) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	code := er.Response.StatusCode
	return (code == http.StatusBadRequest || code == http.StatusUnprocessableEntity) &&
		strings.Contains(er.Message, "return_run_details")
}

// event returns the run event the config's dispatch produces.
func (a *attempt) event() string {
	if a.cfg.Type == template.KindRepositoryDispatch {
		return "repository_dispatch"
	}
	return "workflow_dispatch"
}

// listRuns lists the runs a dispatch of this config could have started
// since the given time, newest first.
func (a *attempt) listRuns(ctx context.Context, since time.Time) ([]*gh.WorkflowRun, error) {
	opts := &gh.ListWorkflowRunsOptions{
		Event:       a.event(),
		Created:     ">=" + since.UTC().Format(time.RFC3339),
		ListOptions: gh.ListOptions{PerPage: 100},
	}
	if a.cfg.Type == template.KindWorkflowDispatch {
		opts.Branch = branchOf(a.cfg.Ref)
	}
	var all []*gh.WorkflowRun
	for page := 0; page < 5; page++ {
		var runs *gh.WorkflowRuns
		var resp *gh.Response
		var err error
		switch {
		case a.cfg.Type != template.KindWorkflowDispatch:
			runs, resp, err = a.client.Actions.ListRepositoryWorkflowRuns(ctx, a.cfg.Owner, a.cfg.Repo, opts)
		case a.cfg.Workflow.ID != 0:
			runs, resp, err = a.client.Actions.ListWorkflowRunsByID(ctx, a.cfg.Owner, a.cfg.Repo, a.cfg.Workflow.ID, opts)
		default:
			runs, resp, err = a.client.Actions.ListWorkflowRunsByFileName(ctx, a.cfg.Owner, a.cfg.Repo, a.cfg.Workflow.File, opts)
		}
		if err != nil {
			return nil, err
		}
		all = append(all, runs.WorkflowRuns...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return all, nil
}

// findRun polls for the job's run until found or the timeout passes.
func (a *attempt) findRun(ctx context.Context, since time.Time, timeout time.Duration) (*gh.WorkflowRun, error) {
	// The number of looks, not the clock, ends the search: a clock that
	// a test holds still (WithClock) cannot make it endless.
	looks := 1 + int(timeout/a.d.lookup.Interval)
	for look := 1; ; look++ {
		runs, err := a.listRuns(ctx, since)
		if err != nil {
			return nil, err
		}
		if run := matchRun(runs, a.jobID); run != nil {
			return run, nil
		}
		if look >= looks {
			return nil, nil
		}
		if err := wait.Sleep(ctx, a.d.lookup.Interval); err != nil {
			return nil, err
		}
	}
}

// provablyNoRun reports whether no run of this config started since the
// given time could be the job's: either there is none, or every one names
// some other job in its title (a run-name is in use and ours is absent).
func (a *attempt) provablyNoRun(ctx context.Context, since time.Time) (bool, error) {
	runs, err := a.listRuns(ctx, since)
	if err != nil {
		return false, err
	}
	for _, r := range runs {
		if r.GetDisplayTitle() == "" || r.GetDisplayTitle() == r.GetName() {
			return false, nil // no run-name: this run could be ours
		}
	}
	return true, nil
}

// matchRun returns the run whose display title, else whose name, holds
// jobID as a whole word, preferring the newest. It is how runs are tied
// to jobs when GitHub does not return the run id.
func matchRun(runs []*gh.WorkflowRun, jobID string) *gh.WorkflowRun {
	for _, r := range runs {
		if jobid.Contains(r.GetDisplayTitle(), jobID) {
			return r
		}
	}
	for _, r := range runs {
		if jobid.Contains(r.GetName(), jobID) {
			return r
		}
	}
	return nil
}

// branchOf returns the branch (or tag) name runs report for a ref.
func branchOf(ref string) string {
	ref = strings.TrimPrefix(ref, "refs/heads/")
	return strings.TrimPrefix(ref, "refs/tags/")
}

// FindRun looks for the run a job's dispatch started, by the job id in
// run titles (see matchRun), among every run created around since (the
// dispatch time): from RunLookup.ClockSkew before it to an hour after.
// Reconcilers use it for jobs whose run id is unknown: a dispatch that
// ended with ErrDispatchUncertain or ErrRunNotFound. It returns nil
// without error when no run matches, and ErrInvalidJob for kinds without
// a workflow run (deployments, pull requests).
func (d *Dispatcher) FindRun(ctx context.Context, job Request, since time.Time) (*gh.WorkflowRun, error) {
	a, err := d.prepare(ctx, job)
	if err != nil {
		return nil, err
	}
	if a.cfg.Type != template.KindWorkflowDispatch && a.cfg.Type != template.KindRepositoryDispatch {
		return nil, fmt.Errorf("%w: a %s job has no workflow run to find", ErrInvalidJob, a.cfg.Type)
	}
	return a.findRunCreated(ctx, since.Add(-d.lookup.ClockSkew), since.Add(d.lookup.ClockSkew+findRunWindow))
}
