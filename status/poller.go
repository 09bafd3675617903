package status

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// StaleLister finds quiet jobs for a Poller: unfinished jobs whose
// deliveries may have been lost. Stores implement it. The least recently
// polled come first and every poll is recorded, found something or not,
// so that jobs whose run cannot be found never crowd out the others.
type StaleLister interface {
	// ListStaleJobs returns up to limit unfinished jobs neither updated
	// nor polled since quietSince: first those never polled, oldest
	// update first, then the least recently polled.
	ListStaleJobs(ctx context.Context, quietSince time.Time, limit int) ([]Job, error)
	// MarkPolled records that the jobs were polled at the given time.
	// It changes neither their Version nor their UpdatedAt.
	MarkPolled(ctx context.Context, at time.Time, ids ...string) error
}

// RunFinder finds the run of a job whose run id is unknown, by its job id
// among the runs created around since; nil without error when there is
// none. Hosts make one of a dispatch.Dispatcher with ghbridge.NewRunFinder
// and pass it to WithRunFinder.
type RunFinder func(ctx context.Context, j Job, since time.Time) (*gh.WorkflowRun, error)

// Poller asks GitHub about jobs that have been quiet too long: GitHub
// does not retry failed deliveries, so a lost one would otherwise leave a
// job in progress forever. It reads the job's run (or finds it by job id),
// deployment or pull request and applies what it finds like a delivery.
// Hosts make one (NewPoller) and call Poll every few minutes.
type Poller struct {
	tracker *Tracker
	lister  StaleLister
	clients ClientSource
	finder  RunFinder
	after   time.Duration
	limit   int
	log     *slog.Logger
}

// PollerOption configures a Poller (NewPoller).
type PollerOption func(*Poller)

// WithRunFinder lets the poller find runs of jobs whose run id is
// unknown (default, and nil: such jobs are left as they are). Hosts that
// dispatch workflows set it: a dispatch does not always learn its run.
func WithRunFinder(f RunFinder) PollerOption {
	return func(p *Poller) { p.finder = f }
}

// WithQuietAfter sets how long a job must have been quiet to be polled
// (default, and 0: 15 minutes).
func WithQuietAfter(d time.Duration) PollerOption {
	return func(p *Poller) {
		if d > 0 {
			p.after = d
		}
	}
}

// WithPollLimit sets how many jobs one Poll looks at (default, and 0: 100).
func WithPollLimit(n int) PollerOption {
	return func(p *Poller) {
		if n > 0 {
			p.limit = n
		}
	}
}

// NewPoller returns a Poller over the tracker's jobs, with the tracker's
// logger and clock, that gets its clients from clients.
func NewPoller(t *Tracker, lister StaleLister, clients ClientSource, opts ...PollerOption) *Poller {
	p := &Poller{tracker: t, lister: lister, clients: clients, after: 15 * time.Minute, limit: 100, log: t.log}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PollReport counts what one Poll did, for the host's logs and metrics.
type PollReport struct {
	Checked, Updated, Failed int
}

// Poll looks at the quiet jobs once; hosts call it periodically. Failures
// for one job are logged and counted; the others are still polled. The jobs are marked polled before
// they are looked at, so that one that fails or hangs every time goes to
// the back of the line like the others.
func (p *Poller) Poll(ctx context.Context) (PollReport, error) {
	var rep PollReport
	now := p.tracker.now()
	jobs, err := p.lister.ListStaleJobs(ctx, now.Add(-p.after), p.limit)
	if err != nil {
		return rep, fmt.Errorf("listing quiet jobs: %w", err)
	}
	if len(jobs) > 0 {
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.ID
		}
		if err := p.lister.MarkPolled(ctx, now, ids...); err != nil {
			p.log.WarnContext(ctx, "recording the poll of quiet jobs failed; the same jobs may be polled first next time", "error", err)
		}
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep.Checked++
		res, err := p.pollJob(ctx, j)
		switch {
		case err != nil:
			rep.Failed++
			p.log.WarnContext(ctx, "polling a quiet job failed", "job_id", j.ID, "error", err)
		case res.Effect == Applied:
			rep.Updated++
			p.log.InfoContext(ctx, "quiet job updated from GitHub", "job_id", j.ID, "status", res.Job.Status)
		}
	}
	return rep, nil
}

func (p *Poller) pollJob(ctx context.Context, j Job) (Result, error) {
	client, _, err := p.clients.For(ctx, target(j))
	if err != nil {
		return Result{}, err
	}
	repo := j.Repository()
	switch {
	case j.RunID != 0:
		run, _, err := client.Actions.GetWorkflowRunByID(ctx, j.Owner, j.Repo, j.RunID)
		if err != nil {
			return Result{}, err
		}
		return p.tracker.ApplyRun(ctx, runUpdate(run, repo, j.InstallationID))
	case j.DeploymentID != 0:
		statuses, _, err := client.Repositories.ListDeploymentStatuses(ctx, j.Owner, j.Repo, j.DeploymentID, &gh.ListOptions{PerPage: 1})
		if err != nil || len(statuses) == 0 {
			return Result{Effect: Unchanged}, err
		}
		s := statuses[0]
		return p.tracker.ApplyDeploymentStatus(ctx, DeploymentUpdate{
			DeploymentID: j.DeploymentID, State: s.GetState(), Description: s.GetDescription(), LogURL: s.GetLogURL(),
			JobID: j.ID, Repository: repo, InstallationID: j.InstallationID, CreatedAt: s.GetCreatedAt().Time,
		})
	case j.PullRequestNumber != 0:
		pr, _, err := client.PullRequests.Get(ctx, j.Owner, j.Repo, j.PullRequestNumber)
		if err != nil || pr.GetState() != "closed" {
			return Result{Effect: Unchanged}, err
		}
		return p.tracker.ApplyPullRequest(ctx, PullRequestUpdate{
			Action: "closed", Number: pr.GetNumber(), Merged: pr.GetMerged(), Body: pr.GetBody(), HeadRef: pr.GetHead().GetRef(),
			Repository: repo, InstallationID: j.InstallationID,
		})
	case p.finder != nil && (j.Kind == "workflow_dispatch" || j.Kind == "repository_dispatch" || j.Kind == ""):
		run, err := p.finder(ctx, j, j.CreatedAt)
		if err != nil || run == nil {
			return Result{Effect: Unchanged}, err
		}
		return p.tracker.ApplyRun(ctx, runUpdate(run, repo, j.InstallationID))
	}
	return Result{Effect: Unchanged}, nil
}

func runUpdate(run *gh.WorkflowRun, repo string, installationID int64) RunUpdate {
	if r := run.GetRepository().GetFullName(); r != "" {
		repo = r
	}
	return RunUpdate{
		RunID: run.GetID(), RunAttempt: run.GetRunAttempt(), Status: run.GetStatus(), Conclusion: run.GetConclusion(),
		DisplayTitle: run.GetDisplayTitle(), Name: run.GetName(), HTMLURL: run.GetHTMLURL(), UpdatedAt: run.GetUpdatedAt().Time,
		Repository: repo, InstallationID: installationID, Source: "reconcile",
	}
}

// ListStaleJobs implements StaleLister.
func (s *MemoryJobStore) ListStaleJobs(ctx context.Context, quietSince time.Time, limit int) ([]Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type stale struct {
		job    Job
		polled time.Time
	}
	s.mu.RLock()
	var found []stale
	for _, j := range s.jobs {
		polled := s.polled[j.ID]
		if !j.Status.Final() && j.UpdatedAt.Before(quietSince) && polled.Before(quietSince) {
			found = append(found, stale{cloneJob(j), polled})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(found, func(a, b stale) int {
		if c := a.polled.Compare(b.polled); c != 0 {
			return c
		}
		return a.job.UpdatedAt.Compare(b.job.UpdatedAt)
	})
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	out := make([]Job, len(found))
	for i, f := range found {
		out[i] = f.job
	}
	return out, nil
}

// MarkPolled implements StaleLister.
func (s *MemoryJobStore) MarkPolled(ctx context.Context, at time.Time, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polled == nil {
		s.polled = map[string]time.Time{}
	}
	for _, id := range ids {
		if _, ok := s.jobs[id]; ok {
			s.polled[id] = at
		}
	}
	return nil
}
