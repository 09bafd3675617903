package dispatch

import (
	"context"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/template"
)

// findRunWindow is how long after the time given to FindRun (a job's
// dispatch) its run is looked for: a run is created when GitHub accepts
// the dispatch, so it only needs to cover dispatch retries.
const findRunWindow = time.Hour

// maxListed is how many runs GitHub lists for one filtered query: pages
// beyond the first thousand come back empty.
const maxListed = 1000

// findRunCreated looks for the job's run among the runs created in
// [from, to], every page of them. A window holding more runs than GitHub
// lists is searched in halves.
func (a *attempt) findRunCreated(ctx context.Context, from, to time.Time) (*gh.WorkflowRun, error) {
	from, to = from.UTC().Truncate(time.Second), to.UTC().Truncate(time.Second)
	opts := &gh.ListWorkflowRunsOptions{
		Event:       a.event(),
		Created:     from.Format(time.RFC3339) + ".." + to.Format(time.RFC3339),
		ListOptions: gh.ListOptions{PerPage: 100},
	}
	if a.cfg.Type == template.KindWorkflowDispatch {
		opts.Branch = branchOf(a.cfg.Ref)
	}
	for first := true; ; first = false {
		runs, resp, err := a.listRunsPage(ctx, opts)
		if err != nil {
			return nil, err
		}
		if first && runs.GetTotalCount() > maxListed && to.Sub(from) > time.Second {
			mid := from.Add(to.Sub(from) / 2).Truncate(time.Second)
			if run, err := a.findRunCreated(ctx, from, mid); err != nil || run != nil {
				return run, err
			}
			return a.findRunCreated(ctx, mid.Add(time.Second), to)
		}
		if run := matchRun(runs.WorkflowRuns, a.jobID); run != nil {
			return run, nil
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

// listRunsPage lists one page of the runs a dispatch of this config
// could have started.
func (a *attempt) listRunsPage(ctx context.Context, opts *gh.ListWorkflowRunsOptions) (*gh.WorkflowRuns, *gh.Response, error) {
	switch {
	case a.cfg.Type != template.KindWorkflowDispatch:
		return a.client.Actions.ListRepositoryWorkflowRuns(ctx, a.cfg.Owner, a.cfg.Repo, opts)
	case a.cfg.Workflow.ID != 0:
		return a.client.Actions.ListWorkflowRunsByID(ctx, a.cfg.Owner, a.cfg.Repo, a.cfg.Workflow.ID, opts)
	default:
		return a.client.Actions.ListWorkflowRunsByFileName(ctx, a.cfg.Owner, a.cfg.Repo, a.cfg.Workflow.File, opts)
	}
}
