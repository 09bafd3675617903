package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ghbridge/ghbridge/failure"
)

// Errors of stores and of the Tracker. Each matches a class of package
// failure: ErrConflict is failure.ErrTransient (read the job again and
// retry), the others failure.ErrFailed.
var (
	// ErrJobNotFound is returned for a job the store does not hold. Store
	// implementations wrap it; hosts test for it with errors.Is (an
	// unknown job id in an API request, say).
	ErrJobNotFound = failure.New(failure.ErrFailed, "job not found")
	// ErrJobExists is returned by CreateJob for an id already taken.
	// Store implementations wrap it; hosts test for it to answer a
	// repeated job creation.
	ErrJobExists = failure.New(failure.ErrFailed, "job already exists")
	// ErrConflict is returned by UpdateJob when the job changed since it
	// was read (its version moved on): read it again and retry. Store
	// implementations wrap it; the Tracker retries on it.
	ErrConflict = failure.New(failure.ErrTransient, "job was changed concurrently")
	// ErrTransition is matched by errors for a status change the rules
	// forbid (Tracker.Set, and *StatusError); hosts test for it to answer
	// "conflict" rather than "failed".
	ErrTransition = failure.New(failure.ErrFailed, "status transition not allowed")
)

// Job is what ghbridge tracks of a host's job: the record a JobStore
// keeps. Hosts create it (NewJob) and read it; the Tracker changes it.
type Job struct {
	// ID identifies the job in the store and on GitHub (the job_id the
	// run carries): it is unique across tenants. A multi-tenant host
	// qualifies its tenants' own ids (the reference server uses
	// "tenant.id").
	ID string
	// Tenant owns the job. Reports and polls of the job resolve
	// credentials for this tenant only; empty for single-tenant hosts.
	Tenant string
	// Status and Message say where the job is; Message is for people.
	Status  Status
	Message string
	// Kind is how the job was started: workflow_dispatch,
	// repository_dispatch, deployment or pull_request.
	Kind string
	// Owner, Repo and InstallationID are the repository and installation
	// the job was dispatched to; runs from elsewhere are not applied.
	Owner, Repo    string
	InstallationID int64
	// RunID, RunURL (web), RunAttempt and RunUpdatedAt describe the run
	// and the last update applied from it.
	RunID        int64
	RunURL       string
	RunAttempt   int
	RunUpdatedAt time.Time
	// DeploymentID and PullRequestNumber are set for those kinds.
	DeploymentID      int64
	PullRequestNumber int
	// Report says what to mirror back to GitHub.
	Report Report
	// Progress is what the run is doing now, from workflow_job
	// deliveries.
	Progress Progress
	// Control holds what people asked of the job (a cancel, a re-run)
	// and what it waits for (approvals) while GitHub acts on it.
	Control Control
	// CreatedAt is set by CreateJob when zero; UpdatedAt by every update.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version increases with every update; UpdateJob compares it.
	Version int64
	// History lists the job's status changes, oldest first.
	History []Transition
}

// Repository returns "owner/repo", for logs and for comparing with the
// repository a delivery names.
func (j Job) Repository() string { return j.Owner + "/" + j.Repo }

// Report configures the mirroring of a job's status to GitHub (see
// GitHubReporter). NewJob fills it from the job's agent config; stores
// keep it.
type Report struct {
	// DeploymentStatus mirrors the status onto the job's deployment.
	DeploymentStatus bool
	// CheckRunName and HeadSHA, when both set, mirror the status onto a
	// check run of that commit; CheckRunID is the run once created.
	CheckRunName string
	HeadSHA      string
	CheckRunID   int64
	// Reported is the last status mirrored; a status not yet mirrored is
	// reported again by the next update, even an unchanged one.
	Reported Status
}

// wanted reports whether anything is to be mirrored.
func (r Report) wanted() bool {
	return r.DeploymentStatus || (r.CheckRunName != "" && r.HeadSHA != "")
}

// Progress is the workflow job and step a run is at, from workflow_job
// deliveries. Stores keep it; hosts show it.
type Progress struct {
	// WorkflowJob is the workflow job last reported, Status its status
	// and Step the step it runs ("" between steps).
	WorkflowJob string
	Status      string
	Step        string
	// At is when it was reported.
	At time.Time
}

// Control is what was asked of a job that GitHub has yet to act on. The
// Tracker and package control keep it up to date; stores keep it, and
// hosts may show it (a cancel under way, the approvals awaited).
type Control struct {
	// CancelRequestedAt and CancelRequestedBy record a cancel asked for
	// a running job; CancelSentAt is when GitHub was asked to cancel its
	// run, ForceCancelSentAt when to force-cancel it.
	CancelRequestedAt time.Time
	CancelRequestedBy string
	CancelSentAt      time.Time
	ForceCancelSentAt time.Time
	// RerunAttempt is the run attempt a re-run asked through the SDK
	// starts (0 when none is asked): the tracker follows that attempt
	// even though the job is finished. RerunBy asked for it.
	RerunAttempt int
	RerunBy      string
	// Approvals are the decisions the run waits for.
	Approvals []Approval
}

// Approval kinds (Approval.Kind).
const (
	// ApprovalProtectionRule: a custom deployment protection rule (a
	// GitHub App, this one) must answer the run's deployment callback.
	ApprovalProtectionRule = "protection_rule"
	// ApprovalReviewers: one of the environment's required reviewers must
	// review the run's pending deployment.
	ApprovalReviewers = "reviewers"
)

// Approval is one decision a run waits for. Hosts show it to the people
// who decide (control.Controller.Approve and Reject).
type Approval struct {
	// Kind is ApprovalProtectionRule or ApprovalReviewers.
	Kind string
	// Environment names the environment; EnvironmentID is GitHub's id
	// of it (reviewers).
	Environment   string
	EnvironmentID int64
	// Reviewers are the users and teams allowed to review (reviewers).
	Reviewers []string
	// RequestedAt is when GitHub asked.
	RequestedAt time.Time
}

// Transition is one status change of a job, kept in its History. Hosts
// show it as the job's trail; WithTransitionHook passes each new one.
type Transition struct {
	From, To Status
	Message  string
	At       time.Time
	// Source says what caused it: "dispatch", "workflow_run",
	// "workflow_job", "pull_request", "deployment_status", "manual",
	// "reconcile", "cancel", "rerun", "approval".
	Source string
	// Actor says who asked for it, when someone did: the caller of
	// Cancel or Rerun, the person who approved, "github" for a re-run
	// started on GitHub.
	Actor string
	// Attempt is the run attempt the job was at after the change (0
	// before any run).
	Attempt int
}

// Update is a change to a job, as JobStore.UpdateJob receives it. Zero
// fields leave the job's value as it is. Store implementations apply it
// with Apply; hosts rarely build one.
type Update struct {
	Status Status
	// Message, when not nil, replaces the job's message.
	Message *string
	// Run fields are set together.
	RunID        int64
	RunURL       string
	RunAttempt   int
	RunUpdatedAt time.Time

	DeploymentID      int64
	PullRequestNumber int
	InstallationID    int64
	// CheckRunID and Reported set the job's Report fields of those names.
	CheckRunID int64
	Reported   Status

	// Progress and Control, when set, replace the job's.
	Progress *Progress
	Control  *Control

	// Source, Actor and At are recorded with the transition (see
	// Transition); At is also the job's UpdatedAt, the current time when
	// zero.
	Source string
	Actor  string
	At     time.Time
}

// JobStore persists jobs. Hosts implement it over their database (or use
// MemoryJobStore); implementations must be safe for concurrent use and
// make UpdateJob atomic: compare the version, apply, bump the version,
// append a Transition to the history when the status changes.
// statustest.TestJobStore checks an implementation.
type JobStore interface {
	// CreateJob stores a new job; its Version must be 0 and is stored as 1.
	CreateJob(ctx context.Context, j Job) error
	// GetJob returns a job with its history.
	GetJob(ctx context.Context, id string) (Job, error)
	// FindJobByRunID returns the job tied to a workflow run.
	FindJobByRunID(ctx context.Context, runID int64) (Job, error)
	// UpdateJob applies u if the job's version is still version, and
	// returns the updated job; otherwise ErrConflict.
	UpdateJob(ctx context.Context, id string, version int64, u Update) (Job, error)
}

// Apply returns j with u applied, as UpdateJob implementations must do it
// (the version and the history included). Store implementations call it
// after comparing the version, so that every store applies updates alike.
func Apply(j Job, u Update) Job {
	if u.At.IsZero() {
		u.At = time.Now()
	}
	if u.Status != "" && u.Status != j.Status {
		msg := j.Message
		if u.Message != nil {
			msg = *u.Message
		}
		attempt := j.RunAttempt
		if u.RunAttempt != 0 {
			attempt = u.RunAttempt
		}
		j.History = append(slices.Clone(j.History), Transition{From: j.Status, To: u.Status, Message: msg, At: u.At,
			Source: u.Source, Actor: u.Actor, Attempt: attempt})
		j.Status = u.Status
	}
	if u.Progress != nil {
		j.Progress = *u.Progress
	}
	if u.Control != nil {
		j.Control = u.Control.clone()
	}
	if u.Message != nil {
		j.Message = *u.Message
	}
	if u.RunID != 0 {
		j.RunID = u.RunID
	}
	if u.RunURL != "" {
		j.RunURL = u.RunURL
	}
	if u.RunAttempt != 0 {
		j.RunAttempt = u.RunAttempt
	}
	if !u.RunUpdatedAt.IsZero() {
		j.RunUpdatedAt = u.RunUpdatedAt
	}
	if u.DeploymentID != 0 {
		j.DeploymentID = u.DeploymentID
	}
	if u.PullRequestNumber != 0 {
		j.PullRequestNumber = u.PullRequestNumber
	}
	if u.InstallationID != 0 {
		j.InstallationID = u.InstallationID
	}
	if u.CheckRunID != 0 {
		j.Report.CheckRunID = u.CheckRunID
	}
	if u.Reported != "" {
		j.Report.Reported = u.Reported
	}
	j.UpdatedAt = u.At
	j.Version++
	return j
}

// CheckNew validates a new job. Store implementations call it first in
// CreateJob.
func CheckNew(j Job) error {
	switch {
	case j.ID == "":
		return errors.New("job id is required")
	case !j.Status.Valid():
		return fmt.Errorf("job %s: invalid status %q", j.ID, j.Status)
	case j.Version != 0:
		return fmt.Errorf("job %s: a new job has version 0", j.ID)
	}
	return nil
}

// MemoryJobStore is a JobStore, StaleLister and CancelLister in memory,
// for tests and single-process hosts (nothing survives a restart).
type MemoryJobStore struct {
	mu     sync.RWMutex
	jobs   map[string]Job
	byRun  map[int64]string
	polled map[string]time.Time // by the Poller: see MarkPolled
}

// NewMemoryJobStore returns an empty store; the zero value is one too.
func NewMemoryJobStore() *MemoryJobStore { return &MemoryJobStore{} }

func cloneJob(j Job) Job {
	j.History = slices.Clone(j.History)
	j.Control = j.Control.clone()
	return j
}

// clone returns a deep copy of c.
func (c Control) clone() Control {
	c.Approvals = slices.Clone(c.Approvals)
	for i := range c.Approvals {
		c.Approvals[i].Reviewers = slices.Clone(c.Approvals[i].Reviewers)
	}
	return c
}

// Cancelling reports whether a cancel was asked and not yet concluded.
// Stores use it to find the jobs ListCancelling returns; hosts show it.
func (c Control) Cancelling() bool { return !c.CancelRequestedAt.IsZero() }

// CancelLister lists the unfinished jobs whose cancel was asked, oldest
// request first. Stores implement it so that a controller can send the
// cancels still to send and force-cancel runs that ignore theirs.
type CancelLister interface {
	ListCancelling(ctx context.Context, limit int) ([]Job, error)
}

// CreateJob implements JobStore.
func (s *MemoryJobStore) CreateJob(ctx context.Context, j Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckNew(j); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		s.jobs, s.byRun = map[string]Job{}, map[int64]string{}
	}
	if _, ok := s.jobs[j.ID]; ok {
		return fmt.Errorf("%w: %s", ErrJobExists, j.ID)
	}
	now := time.Now()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = now
	}
	j.UpdatedAt, j.Version = j.CreatedAt, 1
	s.jobs[j.ID] = cloneJob(j)
	if j.RunID != 0 {
		s.byRun[j.RunID] = j.ID
	}
	return nil
}

// GetJob implements JobStore.
func (s *MemoryJobStore) GetJob(ctx context.Context, id string) (Job, error) {
	if err := ctx.Err(); err != nil {
		return Job{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	return cloneJob(j), nil
}

// FindJobByRunID implements JobStore.
func (s *MemoryJobStore) FindJobByRunID(ctx context.Context, runID int64) (Job, error) {
	if err := ctx.Err(); err != nil {
		return Job{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byRun[runID]
	if !ok {
		return Job{}, fmt.Errorf("%w: no job for run %d", ErrJobNotFound, runID)
	}
	return cloneJob(s.jobs[id]), nil
}

// UpdateJob implements JobStore.
func (s *MemoryJobStore) UpdateJob(ctx context.Context, id string, version int64, u Update) (Job, error) {
	if err := ctx.Err(); err != nil {
		return Job{}, err
	}
	if u.Status != "" && !u.Status.Valid() {
		return Job{}, fmt.Errorf("invalid status %q", u.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	switch {
	case !ok:
		return Job{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	case j.Version != version:
		return Job{}, fmt.Errorf("%w: %s is at version %d, not %d", ErrConflict, id, j.Version, version)
	}
	j = Apply(j, u)
	s.jobs[id] = j
	if j.RunID != 0 {
		s.byRun[j.RunID] = id
	}
	return cloneJob(j), nil
}

// ListCancelling implements CancelLister.
func (s *MemoryJobStore) ListCancelling(ctx context.Context, limit int) ([]Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	var out []Job
	for _, j := range s.jobs {
		if !j.Status.Final() && j.Control.Cancelling() {
			out = append(out, cloneJob(j))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Job) int { return a.Control.CancelRequestedAt.Compare(b.Control.CancelRequestedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
