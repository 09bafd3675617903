package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/failure"
	"github.com/ghbridge/ghbridge/internal/jobid"
	"github.com/ghbridge/ghbridge/template"
)

// Effect says what an update did to a job (Result.Effect). Hosts log or
// count it; only Applied changed the job.
type Effect string

// Effects.
const (
	// Applied: the job changed.
	Applied Effect = "applied"
	// Unchanged: the update carried nothing new (a repeated delivery).
	Unchanged Effect = "unchanged"
	// NoJob: no job matches the run; deliveries of runs ghbridge did not
	// start land here.
	NoJob Effect = "no_job"
	// CrossTenant: the run's repository or installation is not the job's.
	CrossTenant Effect = "cross_tenant"
	// Stale: the update is older than what the job already has.
	Stale Effect = "stale"
	// Finished: the job is finished and stays as it is.
	Finished Effect = "finished"
)

// Result is the outcome of applying an update: what the Tracker's Apply
// methods, Set and Dispatched return. Hosts that route deliveries
// themselves log it.
type Result struct {
	Effect Effect
	Job    Job
	// Reason explains an effect other than Applied.
	Reason string
}

// RerunPolicy decides whether a finished job follows a re-run of its
// workflow run (attempt is the new run_attempt). Hosts that treat some
// re-runs on GitHub as retries of the job pass one to WithRerunPolicy;
// see the package documentation.
type RerunPolicy func(j Job, attempt int) bool

// Reporter mirrors a job's status to GitHub. It returns an Update to
// persist (a new check run id, say) or nil. GitHubReporter is ghbridge's;
// hosts implement it only to mirror statuses their own way.
type Reporter interface {
	Report(ctx context.Context, j Job) (*Update, error)
}

// Tracker applies what GitHub reports to jobs. Every host that follows
// its jobs makes one (NewTracker) and routes deliveries to it (Register).
// It is safe for concurrent use; concurrent updates of one job are
// serialised by the store's compare-and-set.
type Tracker struct {
	store    JobStore
	reporter Reporter
	log      *slog.Logger
	now      func() time.Time
	rerun    RerunPolicy
	observe  func(j Job, t Transition)
	appID    int64
	tracing  tracing // tracing.go
}

// TrackerOption configures a Tracker (NewTracker).
type TrackerOption func(*Tracker)

// WithReporter mirrors job statuses to GitHub with r (see
// GitHubReporter); default, and nil: no mirroring. Hosts set it when jobs
// ask for deployment statuses or check runs.
func WithReporter(r Reporter) TrackerOption { return func(t *Tracker) { t.reporter = r } }

// WithLogger sets the logger of the Tracker and its Pollers (default,
// and nil: none).
func WithLogger(l *slog.Logger) TrackerOption {
	return func(t *Tracker) {
		if l != nil {
			t.log = l
		}
	}
}

// WithRerunPolicy decides which finished jobs follow a re-run of their
// run (default, and nil: none). Hosts that treat a re-run on GitHub as a
// retry of the job set it.
func WithRerunPolicy(p RerunPolicy) TrackerOption {
	return func(t *Tracker) {
		if p != nil {
			t.rerun = p
		}
	}
}

// WithTransitionHook calls fn after every status change is stored (nil:
// none). Hosts set it for metrics and notifications.
func WithTransitionHook(fn func(j Job, t Transition)) TrackerOption {
	return func(t *Tracker) { t.observe = fn }
}

// WithAppID names ghbridge's own GitHub App, so that deployment statuses
// it posted (the Reporter's) are recognised when they come back as
// deliveries and never move a job. Hosts that run as a GitHub App set it.
func WithAppID(id int64) TrackerOption { return func(t *Tracker) { t.appID = id } }

// WithClock sets the clock of the Tracker and its Pollers (default, and
// nil: time.Now). Tests set it.
func WithClock(now func() time.Time) TrackerOption {
	return func(t *Tracker) {
		if now != nil {
			t.now = now
		}
	}
}

// NewTracker returns a Tracker over store.
func NewTracker(store JobStore, opts ...TrackerOption) *Tracker {
	t := &Tracker{store: store, log: slog.New(slog.DiscardHandler), now: time.Now,
		rerun: func(Job, int) bool { return false }}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Store returns the tracker's job store. Package control reads jobs
// through it; hosts rarely need it.
func (t *Tracker) Store() JobStore { return t.store }

// maxConflicts bounds compare-and-set retries of one update.
const maxConflicts = 8

// update reads the job, asks decide for the change, and stores it with
// compare-and-set, retrying on conflicts. decide sees the current job and
// returns the update, or a non-Applied result to stop.
func (t *Tracker) apply(ctx context.Context, load func() (Job, error), decide func(Job) (*Update, Result)) (Result, error) {
	for range maxConflicts {
		j, err := load()
		if errors.Is(err, ErrJobNotFound) {
			return Result{Effect: NoJob, Reason: err.Error()}, nil
		}
		if err != nil {
			return Result{}, err
		}
		u, res := decide(j)
		if u == nil {
			res.Job = j
			return t.reportPending(ctx, res)
		}
		if u.At.IsZero() {
			u.At = t.now()
		}
		nj, err := t.store.UpdateJob(ctx, j.ID, j.Version, *u)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if nj.Status != j.Status {
			tr := nj.History[len(nj.History)-1]
			t.log.InfoContext(ctx, "job status changed", "job_id", nj.ID, "from", tr.From, "to", tr.To, "source", tr.Source, "run_id", nj.RunID)
			if t.observe != nil {
				t.observe(nj, tr)
			}
		}
		return t.reportPending(ctx, Result{Effect: Applied, Job: nj})
	}
	return Result{}, fmt.Errorf("%w: gave up after %d attempts", ErrConflict, maxConflicts)
}

// reportPending mirrors the job's status to GitHub when it has not been
// mirrored yet. Failures are returned, so that the delivery fails and is
// redelivered (or reconciled); the job's own status is already stored.
func (t *Tracker) reportPending(ctx context.Context, res Result) (Result, error) {
	j := res.Job
	if t.reporter == nil || !j.Report.wanted() || j.Report.Reported == j.Status {
		return res, nil
	}
	u, err := t.reporter.Report(ctx, j)
	if err != nil {
		return res, fmt.Errorf("reporting job %s status %s to GitHub: %w", j.ID, j.Status, err)
	}
	if u == nil {
		u = &Update{}
	}
	u.Reported, u.Source, u.At = j.Status, "report", t.now()
	for range maxConflicts {
		nj, err := t.store.UpdateJob(ctx, j.ID, j.Version, *u)
		if err == nil {
			res.Job = nj
			return res, nil
		}
		if !errors.Is(err, ErrConflict) {
			return res, err
		}
		// Someone updated the job meanwhile: record the report only if
		// the status is still the one reported.
		if j, err = t.store.GetJob(ctx, j.ID); err != nil || j.Status != u.Reported {
			return res, err
		}
	}
	return res, nil
}

// RunUpdate is what a workflow_run delivery (or a poll of the run) says.
// Register and the Poller fill it; hosts that route deliveries themselves
// fill it for ApplyRun (RunUpdateOf does for a run read from the API).
type RunUpdate struct {
	RunID        int64
	RunAttempt   int
	Status       string
	Conclusion   string
	DisplayTitle string
	Name         string
	HTMLURL      string
	UpdatedAt    time.Time
	// Repository is "owner/name"; InstallationID 0 when unknown.
	Repository     string
	InstallationID int64
	// Source names the origin for the history; default "workflow_run".
	Source string
	// TriggeredBy is the login that started the attempt, when known.
	TriggeredBy string
}

// ApplyRun applies a workflow run's state to its job. The job is found by
// run id, else by the job id in the run's display title, then its name
// (the job id as a whole word, see the dispatch package). Register calls
// it for workflow_run deliveries; hosts that route deliveries themselves
// call it.
func (t *Tracker) ApplyRun(ctx context.Context, u RunUpdate) (Result, error) {
	if u.RunID == 0 {
		return Result{Effect: NoJob, Reason: "no run id"}, nil
	}
	if u.RunAttempt == 0 {
		u.RunAttempt = 1
	}
	if u.Source == "" {
		u.Source = "workflow_run"
	}
	to, known := fromRun(u.Status, u.Conclusion)
	if !known {
		t.log.WarnContext(ctx, "unknown workflow run status or conclusion", "run_id", u.RunID, "status", u.Status, "conclusion", u.Conclusion, "mapped_to", to)
	}
	load := func() (Job, error) { return t.findRunJob(ctx, u) }
	return t.update(ctx, load, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, u.Repository, u.InstallationID); !ok {
			t.log.WarnContext(ctx, "run from another repository or installation ignored", "job_id", j.ID, "run_id", u.RunID, "run_repo", u.Repository, "run_installation", u.InstallationID)
			return nil, res
		}
		if j.RunID != 0 && j.RunID != u.RunID {
			return nil, Result{Effect: NoJob, Reason: fmt.Sprintf("job %s belongs to run %d", j.ID, j.RunID)}
		}
		newAttempt := u.RunAttempt > j.RunAttempt
		switch {
		case u.RunAttempt < j.RunAttempt:
			return nil, Result{Effect: Stale, Reason: fmt.Sprintf("attempt %d is older than the job's attempt %d", u.RunAttempt, j.RunAttempt)}
		case !newAttempt && !j.RunUpdatedAt.IsZero() && u.UpdatedAt.Before(j.RunUpdatedAt):
			return nil, Result{Effect: Stale, Reason: "older than the last applied update"}
		case !newAttempt && u.UpdatedAt.Equal(j.RunUpdatedAt) && to.rank() <= j.Status.rank():
			return nil, Result{Effect: Unchanged, Reason: "repeated update"}
		}
		reopen, actor := false, ""
		if j.Status.Final() {
			asked := j.Control.RerunAttempt != 0 && u.RunAttempt >= j.Control.RerunAttempt
			if !newAttempt || !(asked || t.rerun(j, u.RunAttempt)) {
				return nil, Result{Effect: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
			}
			reopen, actor = true, "github"
			if u.TriggeredBy != "" {
				actor = "github:" + u.TriggeredBy
			}
			if asked {
				actor = j.Control.RerunBy
			}
		}
		msg := runMessage(u, to, known)
		up := &Update{
			RunID: u.RunID, RunURL: u.HTMLURL, RunAttempt: u.RunAttempt, RunUpdatedAt: u.UpdatedAt,
			Message: &msg, Source: u.Source, Actor: actor,
		}
		if to != j.Status && (reopen || canTransition(j.Status, to)) {
			up.Status = to
		}
		switch c := j.Control; {
		case newAttempt && j.RunAttempt != 0:
			// A new attempt starts afresh: what was asked of the old one
			// is settled.
			up.Control, up.Progress = &Control{}, &Progress{}
		case up.Status.Final():
			if to == Cancelled && c.CancelRequestedBy != "" {
				up.Actor = c.CancelRequestedBy
				msg += " (cancel requested by " + c.CancelRequestedBy + ")"
			}
			up.Control = &Control{}
		case up.Status != "" && up.Status != ActionRequired && len(c.Approvals) > 0:
			// The run moved on: nothing waits for a decision any more.
			nc := c.clone()
			nc.Approvals = nil
			up.Control = &nc
		}
		if up.Status == "" && up.Control == nil && msg == j.Message && j.RunID == u.RunID && j.RunAttempt == u.RunAttempt && j.RunURL == u.HTMLURL {
			// Only the timestamp moved: record it without a new message.
			up.Message = nil
		}
		return up, Result{}
	})
}

func runMessage(u RunUpdate, to Status, known bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %d", u.RunID)
	if u.RunAttempt > 1 {
		fmt.Fprintf(&b, " attempt %d", u.RunAttempt)
	}
	b.WriteString(" " + u.Status)
	if u.Conclusion != "" {
		b.WriteString(": " + u.Conclusion)
	}
	if !known {
		fmt.Fprintf(&b, " (unknown to ghbridge; treated as %s)", to)
	}
	return b.String()
}

// findRunJob finds the job of a run by run id, else by the job id in its
// display title or name.
func (t *Tracker) findRunJob(ctx context.Context, u RunUpdate) (Job, error) {
	j, err := t.store.FindJobByRunID(ctx, u.RunID)
	if err == nil || !errors.Is(err, ErrJobNotFound) {
		return j, err
	}
	for _, text := range []string{u.DisplayTitle, u.Name} {
		for _, id := range jobid.Candidates(text) {
			j, err := t.store.GetJob(ctx, id)
			if err == nil {
				return j, nil
			}
			if !errors.Is(err, ErrJobNotFound) {
				return Job{}, err
			}
		}
	}
	return Job{}, fmt.Errorf("%w: run %d (%q)", ErrJobNotFound, u.RunID, u.DisplayTitle)
}

// sameTenant checks that a delivery's repository and installation are the
// job's.
func (t *Tracker) sameTenant(j Job, repo string, installationID int64) (Result, bool) {
	if repo != "" && !strings.EqualFold(repo, j.Repository()) {
		return Result{Effect: CrossTenant, Reason: fmt.Sprintf("delivery for %s, job for %s", repo, j.Repository())}, false
	}
	if repo == "" && j.Owner != "" {
		return Result{Effect: CrossTenant, Reason: "delivery names no repository"}, false
	}
	if installationID != 0 && j.InstallationID != 0 && installationID != j.InstallationID {
		return Result{Effect: CrossTenant, Reason: fmt.Sprintf("delivery for installation %d, job for %d", installationID, j.InstallationID)}, false
	}
	return Result{}, true
}

// JobProgress is what a workflow_job delivery says about a run's jobs.
// Register fills it; hosts that route deliveries themselves fill it for
// ApplyJobProgress.
type JobProgress struct {
	RunID          int64
	RunAttempt     int
	JobName        string
	Status         string
	Conclusion     string
	Step           string
	Repository     string
	InstallationID int64
}

// ApplyJobProgress records a workflow job's progress as the job's message.
// It never changes a status other than pending, which becomes in_progress.
// Register calls it for workflow_job deliveries; hosts that route
// deliveries themselves call it.
func (t *Tracker) ApplyJobProgress(ctx context.Context, p JobProgress) (Result, error) {
	load := func() (Job, error) { return t.store.FindJobByRunID(ctx, p.RunID) }
	return t.update(ctx, load, func(j Job) (*Update, Result) {
		if res, ok := t.sameTenant(j, p.Repository, p.InstallationID); !ok {
			return nil, res
		}
		if j.Status.Final() {
			return nil, Result{Effect: Finished, Reason: fmt.Sprintf("job is %s", j.Status)}
		}
		if p.RunAttempt != 0 && p.RunAttempt < j.RunAttempt {
			return nil, Result{Effect: Stale, Reason: "older attempt"}
		}
		msg := fmt.Sprintf("job %s %s", p.JobName, p.Status)
		if p.Conclusion != "" {
			msg += ": " + p.Conclusion
		}
		if p.Step != "" {
			msg += " (" + p.Step + ")"
		}
		pr := Progress{WorkflowJob: p.JobName, Status: p.Status, Step: p.Step, At: t.now()}
		if msg == j.Message && pr.WorkflowJob == j.Progress.WorkflowJob && pr.Status == j.Progress.Status && pr.Step == j.Progress.Step {
			return nil, Result{Effect: Unchanged}
		}
		u := &Update{Message: &msg, Progress: &pr, Source: "workflow_job"}
		if j.Status == ActionRequired && len(j.Control.Approvals) > 0 {
			u.Message = nil // the approval asked for stays the message
		}
		if j.Status == Pending {
			u.Status = InProgress
		}
		return u, Result{}
	})
}

// Set changes a job's status by hand (a report from the workflow itself,
// when webhooks are off) or from the host. The transition rules apply: a
// finished job answers ErrTransition.
func (t *Tracker) Set(ctx context.Context, jobID string, to Status, message, source string) (Result, error) {
	if !to.Valid() {
		return Result{}, fmt.Errorf("%w: unknown status %q", ErrTransition, to)
	}
	if source == "" {
		source = "manual"
	}
	var refused error
	res, err := t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, jobID) }, func(j Job) (*Update, Result) {
		refused = nil
		if j.Status == to && j.Message == message {
			return nil, Result{Effect: Unchanged}
		}
		if !canTransition(j.Status, to) {
			refused = fmt.Errorf("%w: job %s is %s and cannot become %s", ErrTransition, j.ID, j.Status, to)
			return nil, Result{Effect: Finished, Reason: refused.Error()}
		}
		return &Update{Status: to, Message: &message, Source: source}, Result{}
	})
	if err == nil && res.Effect == NoJob {
		return res, fmt.Errorf("%w: %s", ErrJobNotFound, jobID)
	}
	if err == nil && refused != nil {
		return res, refused
	}
	return res, err
}

// NewJob returns the record of a job about to be dispatched: pending,
// with the repository and reporting its rendered config asks for. Hosts
// store it (JobStore.CreateJob) before the dispatch; ghbridge.JobRecord
// renders the config and calls it.
func NewJob(id string, cfg template.AgentConfig) Job {
	j := Job{ID: id, Status: Pending, Kind: string(cfg.Type), Owner: cfg.Owner, Repo: cfg.Repo, InstallationID: cfg.InstallationID}
	j.Report.DeploymentStatus = cfg.Report.DeploymentStatus
	if cfg.Report.CheckRun != nil {
		j.Report.CheckRunName, j.Report.HeadSHA = cfg.Report.CheckRun.Name, cfg.Report.CheckRun.HeadSHA
	}
	return j
}

// Receipt is what a dispatch started on GitHub for a job, as Dispatched
// records it. Hosts make one of a dispatch.Receipt with ghbridge.Dispatched.
type Receipt struct {
	// RunID and RunURL (web) identify the run, when known.
	RunID  int64
	RunURL string
	// DeploymentID and PullRequestNumber are set for those kinds.
	DeploymentID      int64
	PullRequestNumber int
	// InstallationID is the installation the dispatch used; 0 for a
	// static token.
	InstallationID int64
}

// Dispatched records the outcome of dispatching a job: the run (or
// deployment, or pull request) it started, or the status its failure
// means (see StatusForDispatchError). A job that its run's deliveries
// already moved on (they can arrive before the dispatch call returns)
// keeps its status and message; only missing ids are filled in. A host's
// dispatch queue calls it after each dispatch step.
func (t *Tracker) Dispatched(ctx context.Context, jobID string, res Receipt, derr error) (Result, error) {
	return t.update(ctx, func() (Job, error) { return t.store.GetJob(ctx, jobID) }, func(j Job) (*Update, Result) {
		u := &Update{Source: "dispatch", DeploymentID: res.DeploymentID, PullRequestNumber: res.PullRequestNumber, InstallationID: res.InstallationID}
		if j.RunID == 0 && res.RunID != 0 {
			u.RunID, u.RunURL, u.RunAttempt = res.RunID, res.RunURL, 1
		}
		if j.Status != Pending {
			return u, Result{}
		}
		var msg string
		to := InProgress
		switch {
		case derr != nil:
			to, msg = StatusForDispatchError(derr), derr.Error()
		case res.RunID != 0:
			msg = fmt.Sprintf("dispatched: run %d", res.RunID)
		case res.DeploymentID != 0:
			msg = fmt.Sprintf("dispatched: deployment %d", res.DeploymentID)
		case res.PullRequestNumber != 0:
			msg = fmt.Sprintf("dispatched: pull request #%d", res.PullRequestNumber)
		default:
			msg = "dispatched"
		}
		u.Status, u.Message = to, &msg
		return u, Result{}
	})
}

// StatusForDispatchError maps a dispatch failure to the job status it
// leaves the job in, by its class (package failure): a transient failure
// leaves the job pending, to be tried again; permanent ones end it.
// Dispatched applies it; a host's queue uses it to decide whether to try
// again.
func StatusForDispatchError(err error) Status {
	switch failure.Class(err) {
	case nil:
		return InProgress
	case failure.ErrTransient:
		return Pending
	case failure.ErrRunNotFound:
		return ExternalRunNotFound
	case failure.ErrInvalidIntegration:
		return InvalidIntegration
	case failure.ErrInvalidJobAgent:
		return InvalidJobAgent
	}
	return Failure
}

// FindRunJob returns the job a run belongs to, found as ApplyRun finds
// it: by run id, else by the job id in the run's display title or name.
// It does not check the run's repository; callers compare it with the
// job's (Job.Repository). Package control calls it; hosts rarely need it.
func (t *Tracker) FindRunJob(ctx context.Context, u RunUpdate) (Job, error) {
	return t.findRunJob(ctx, u)
}

// RunUpdateOf maps a workflow run read from GitHub's API to a RunUpdate
// for ApplyRun; repo and installationID are the job's, used when the run
// does not say, and source is the history's (default "reconcile").
// Package control and hosts that read runs themselves use it.
func RunUpdateOf(run *gh.WorkflowRun, repo string, installationID int64, source string) RunUpdate {
	u := runUpdate(run, repo, installationID)
	if source != "" {
		u.Source = source
	}
	return u
}
