package status

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
)

// StaleLister lists unfinished jobs that have not been updated since a
// time, oldest first. Stores implement it so that a Poller can find jobs
// whose deliveries were lost.
type StaleLister interface {
	ListStaleJobs(ctx context.Context, updatedBefore time.Time, limit int) ([]Job, error)
}

// RunFinder finds a job's run by its job id; *dispatch.Dispatcher is one.
type RunFinder interface {
	FindRun(ctx context.Context, job dispatch.Job, since time.Time) (*gh.WorkflowRun, error)
}

// Poller asks GitHub about jobs that have been quiet too long: GitHub
// does not retry failed deliveries, so a lost one would otherwise leave a
// job in progress forever. It reads the job's run (or finds it by job id),
// deployment or pull request and applies what it finds like a delivery.
type Poller struct {
	tracker  *Tracker
	lister   StaleLister
	resolver CredentialResolver
	clients  ClientProvider
	finder   RunFinder
	source   func(ctx context.Context, j Job) (dispatch.Job, error)
	after    time.Duration
	limit    int
	log      *slog.Logger
}

// PollerOption configures a Poller.
type PollerOption func(*Poller)

// WithRunFinder lets the poller find runs of jobs whose run id is unknown;
// source rebuilds the dispatch.Job (agent config and context) of a job.
func WithRunFinder(f RunFinder, source func(ctx context.Context, j Job) (dispatch.Job, error)) PollerOption {
	return func(p *Poller) { p.finder, p.source = f, source }
}

// WithQuietPeriod sets how long a job must have been quiet to be polled
// (default 15 minutes) and how many jobs one Poll looks at (default 100).
func WithQuietPeriod(d time.Duration, limit int) PollerOption {
	return func(p *Poller) {
		if d > 0 {
			p.after = d
		}
		if limit > 0 {
			p.limit = limit
		}
	}
}

// WithPollerLogger sets the logger.
func WithPollerLogger(l *slog.Logger) PollerOption {
	return func(p *Poller) {
		if l != nil {
			p.log = l
		}
	}
}

// NewPoller returns a Poller.
func NewPoller(t *Tracker, lister StaleLister, resolver CredentialResolver, clients ClientProvider, opts ...PollerOption) *Poller {
	p := &Poller{tracker: t, lister: lister, resolver: resolver, clients: clients, after: 15 * time.Minute, limit: 100,
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PollReport counts what one Poll did.
type PollReport struct {
	Checked, Updated, Failed int
}

// Poll looks at the quiet jobs once. Failures for one job are logged and
// counted; the others are still polled.
func (p *Poller) Poll(ctx context.Context) (PollReport, error) {
	var rep PollReport
	jobs, err := p.lister.ListStaleJobs(ctx, p.tracker.now().Add(-p.after), p.limit)
	if err != nil {
		return rep, fmt.Errorf("listing quiet jobs: %w", err)
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
		case res.Outcome == Applied:
			rep.Updated++
			p.log.InfoContext(ctx, "quiet job updated from GitHub", "job_id", j.ID, "status", res.Job.Status)
		}
	}
	return rep, nil
}

func (p *Poller) pollJob(ctx context.Context, j Job) (Result, error) {
	cred, err := p.resolver.Resolve(ctx, credentials.Target{Tenant: j.Tenant, Owner: j.Owner, Repo: j.Repo, InstallationID: j.InstallationID, JobID: j.ID})
	if err != nil {
		return Result{}, err
	}
	client, err := p.clients.Client(cred)
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
			return Result{Outcome: Unchanged}, err
		}
		s := statuses[0]
		return p.tracker.ApplyDeploymentStatus(ctx, DeploymentUpdate{
			DeploymentID: j.DeploymentID, State: s.GetState(), Description: s.GetDescription(), LogURL: s.GetLogURL(),
			JobID: j.ID, Repository: repo, InstallationID: j.InstallationID, CreatedAt: s.GetCreatedAt().Time,
		})
	case j.PullRequestNumber != 0:
		pr, _, err := client.PullRequests.Get(ctx, j.Owner, j.Repo, j.PullRequestNumber)
		if err != nil || pr.GetState() != "closed" {
			return Result{Outcome: Unchanged}, err
		}
		return p.tracker.ApplyPullRequest(ctx, PullRequestUpdate{
			Action: "closed", Number: pr.GetNumber(), Merged: pr.GetMerged(), Body: pr.GetBody(), HeadRef: pr.GetHead().GetRef(),
			Repository: repo, InstallationID: j.InstallationID,
		})
	case p.finder != nil && p.source != nil && (j.Kind == "workflow_dispatch" || j.Kind == "repository_dispatch" || j.Kind == ""):
		dj, err := p.source(ctx, j)
		if err != nil {
			return Result{}, err
		}
		run, err := p.finder.FindRun(ctx, dj, j.CreatedAt)
		if err != nil || run == nil {
			return Result{Outcome: Unchanged}, err
		}
		return p.tracker.ApplyRun(ctx, runUpdate(run, repo, j.InstallationID))
	}
	return Result{Outcome: Unchanged}, nil
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
func (s *MemoryJobStore) ListStaleJobs(ctx context.Context, updatedBefore time.Time, limit int) ([]Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	var out []Job
	for _, j := range s.jobs {
		if !j.Status.Final() && j.UpdatedAt.Before(updatedBefore) {
			out = append(out, cloneJob(j))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Job) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
