package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/status"
)

// Jobs is a status.JobStore (and status.StaleLister) that also keeps what
// the reference server needs of a job: its tenant, agent config and
// context.
type Jobs struct{ db *DB }

// Jobs returns the job store.
func (db *DB) Jobs() *Jobs { return &Jobs{db: db} }

var (
	_ status.JobStore     = (*Jobs)(nil)
	_ status.StaleLister  = (*Jobs)(nil)
	_ status.CancelLister = (*Jobs)(nil)
)

// Record is a job with the server's own fields.
type Record struct {
	status.Job
	// Agent is the job agent config and Context the job context, as JSON.
	Agent, Context json.RawMessage
}

const jobColumns = `id, tenant, status, message, kind, owner, repo, installation_id, run_id, run_url, run_attempt, run_updated_at,
	deployment_id, pull_request_number, report_deployment, check_run_name, head_sha, check_run_id, reported,
	agent, context, history, created_at, updated_at, version, control`

func scanRecord(row rowScanner) (Record, error) {
	var r Record
	var st, reported, agent, jctx, history, control string
	var runUpdated, created, updated int64
	var reportDeployment int
	err := row.Scan(&r.ID, &r.Tenant, &st, &r.Message, &r.Kind, &r.Owner, &r.Repo, &r.InstallationID, &r.RunID, &r.RunURL,
		&r.RunAttempt, &runUpdated, &r.DeploymentID, &r.PullRequestNumber, &reportDeployment, &r.Report.CheckRunName,
		&r.Report.HeadSHA, &r.Report.CheckRunID, &reported, &agent, &jctx, &history, &created, &updated, &r.Version, &control)
	if err != nil {
		return r, err
	}
	r.Status, r.Report.Reported = status.Status(st), status.Status(reported)
	r.Report.DeploymentStatus = reportDeployment != 0
	r.RunUpdatedAt, r.CreatedAt, r.UpdatedAt = fromMicros(runUpdated), fromMicros(created), fromMicros(updated)
	if agent != "" {
		r.Agent = json.RawMessage(agent)
	}
	if jctx != "" {
		r.Context = json.RawMessage(jctx)
	}
	if r.History, err = decodeHistory(history); err != nil {
		return r, fmt.Errorf("job %s: %w", r.ID, err)
	}
	if err := decodeControl(control, &r.Job); err != nil {
		return r, fmt.Errorf("job %s: %w", r.ID, err)
	}
	return r, nil
}

// controlJSON is a job's Progress and Control as stored in jobs.control
// (times in microseconds since the epoch).
type controlJSON struct {
	Progress *progressJSON  `json:"progress,omitempty"`
	Cancel   *cancelJSON    `json:"cancel,omitempty"`
	Rerun    int            `json:"rerunAttempt,omitempty"`
	RerunBy  string         `json:"rerunBy,omitempty"`
	Approve  []approvalJSON `json:"approvals,omitempty"`
}

type progressJSON struct {
	Job    string `json:"job,omitempty"`
	Status string `json:"status,omitempty"`
	Step   string `json:"step,omitempty"`
	At     int64  `json:"at,omitempty"`
}

type cancelJSON struct {
	At    int64  `json:"at"`
	By    string `json:"by,omitempty"`
	Sent  int64  `json:"sent,omitempty"`
	Force int64  `json:"force,omitempty"`
}

type approvalJSON struct {
	Kind          string   `json:"kind"`
	Environment   string   `json:"environment"`
	EnvironmentID int64    `json:"environmentId,omitempty"`
	Reviewers     []string `json:"reviewers,omitempty"`
	At            int64    `json:"at,omitempty"`
}

func encodeControl(j status.Job) (string, error) {
	var c controlJSON
	if p := j.Progress; p != (status.Progress{}) {
		c.Progress = &progressJSON{Job: p.WorkflowJob, Status: p.Status, Step: p.Step, At: micros(p.At)}
	}
	k := j.Control
	if k.Cancelling() {
		c.Cancel = &cancelJSON{At: micros(k.CancelRequestedAt), By: k.CancelRequestedBy, Sent: micros(k.CancelSentAt), Force: micros(k.ForceCancelSentAt)}
	}
	c.Rerun, c.RerunBy = k.RerunAttempt, k.RerunBy
	for _, a := range k.Approvals {
		c.Approve = append(c.Approve, approvalJSON{Kind: a.Kind, Environment: a.Environment, EnvironmentID: a.EnvironmentID, Reviewers: a.Reviewers, At: micros(a.RequestedAt)})
	}
	if c.Progress == nil && c.Cancel == nil && c.Rerun == 0 && c.RerunBy == "" && len(c.Approve) == 0 {
		return "", nil
	}
	b, err := json.Marshal(c)
	return string(b), err
}

func decodeControl(s string, j *status.Job) error {
	if s == "" {
		return nil
	}
	var c controlJSON
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return fmt.Errorf("reading control state: %w", err)
	}
	if p := c.Progress; p != nil {
		j.Progress = status.Progress{WorkflowJob: p.Job, Status: p.Status, Step: p.Step, At: fromMicros(p.At)}
	}
	if k := c.Cancel; k != nil {
		j.Control.CancelRequestedAt, j.Control.CancelRequestedBy = fromMicros(k.At), k.By
		j.Control.CancelSentAt, j.Control.ForceCancelSentAt = fromMicros(k.Sent), fromMicros(k.Force)
	}
	j.Control.RerunAttempt, j.Control.RerunBy = c.Rerun, c.RerunBy
	for _, a := range c.Approve {
		j.Control.Approvals = append(j.Control.Approvals, status.Approval{Kind: a.Kind, Environment: a.Environment,
			EnvironmentID: a.EnvironmentID, Reviewers: a.Reviewers, RequestedAt: fromMicros(a.At)})
	}
	return nil
}

// transitionJSON is a Transition as stored in jobs.history.
type transitionJSON struct {
	From    status.Status `json:"from"`
	To      status.Status `json:"to"`
	Message string        `json:"message,omitempty"`
	At      int64         `json:"at"` // microseconds since the epoch
	Source  string        `json:"source,omitempty"`
	Actor   string        `json:"actor,omitempty"`
	Attempt int           `json:"attempt,omitempty"`
}

func encodeHistory(h []status.Transition) (string, error) {
	if len(h) == 0 {
		return "", nil
	}
	out := make([]transitionJSON, len(h))
	for i, t := range h {
		out[i] = transitionJSON{From: t.From, To: t.To, Message: t.Message, At: micros(t.At), Source: t.Source, Actor: t.Actor, Attempt: t.Attempt}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeHistory(s string) ([]status.Transition, error) {
	if s == "" {
		return nil, nil
	}
	var in []transitionJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("reading status history: %w", err)
	}
	h := make([]status.Transition, len(in))
	for i, t := range in {
		h[i] = status.Transition{From: t.From, To: t.To, Message: t.Message, At: fromMicros(t.At), Source: t.Source, Actor: t.Actor, Attempt: t.Attempt}
	}
	return h, nil
}

// Hot queries, prepared at Open (see DB.prepare).
const (
	byID    = "id = $1"
	byRunID = "run_id = $1 AND run_id <> 0" // matches the partial index

	updateJobQuery = `UPDATE jobs SET status = $3, message = $4, installation_id = $5, run_id = $6, run_url = $7,
		run_attempt = $8, run_updated_at = $9, deployment_id = $10, pull_request_number = $11, check_run_id = $12, reported = $13,
		history = $14, transitions = $15, updated_at = $16, version = $17, control = $18, cancel_requested_at = $19
		WHERE id = $1 AND version = $2`
)

const insertJobQuery = `INSERT INTO jobs (` + jobColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, '', $22, $22, 1, '')`

func loadQuery(where string) string {
	return `SELECT ` + jobColumns + ` FROM jobs WHERE ` + where + ` LIMIT 1`
}

// jobCacheSize bounds the jobs remembered between a read and the update
// that usually follows it.
const jobCacheSize = 4096

// load reads a job from the reader pool and remembers it.
func (s *Jobs) load(ctx context.Context, where string, arg any) (Record, error) {
	st, err := s.db.stmt(ctx, nil, s.db.r, loadQuery(where))
	if err != nil {
		return Record{}, err
	}
	r, err := scanRecord(st.QueryRowContext(ctx, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: %v", status.ErrJobNotFound, arg)
	}
	if err != nil {
		return r, err
	}
	s.remember(r.Job)
	return r, nil
}

// remember caches a copy of j: its history must not share an array with
// what callers hold.
func (s *Jobs) remember(j status.Job) {
	j.History = slices.Clone(j.History)
	s.db.jobs.Add(j.ID, j)
}

// CreateJob implements status.JobStore.
func (s *Jobs) CreateJob(ctx context.Context, j status.Job) error {
	return s.CreateRecord(ctx, Record{Job: j})
}

// CreateRecord stores a new job with the server's fields.
func (s *Jobs) CreateRecord(ctx context.Context, r Record) error {
	if err := status.CheckNew(r.Job); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.db.now()
	}
	err := s.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ins, err := s.db.stmt(ctx, tx, s.db.w, insertJobQuery)
		if err != nil {
			return err
		}
		_, err = ins.ExecContext(ctx,
			r.ID, r.Tenant, string(r.Status), r.Message, r.Kind, r.Owner, r.Repo, r.InstallationID, r.RunID, r.RunURL, r.RunAttempt,
			micros(r.RunUpdatedAt), r.DeploymentID, r.PullRequestNumber, boolInt(r.Report.DeploymentStatus), r.Report.CheckRunName,
			r.Report.HeadSHA, r.Report.CheckRunID, string(r.Report.Reported), string(r.Agent), string(r.Context), micros(r.CreatedAt))
		return err
	})
	if err != nil && isUniqueViolation(err) {
		return fmt.Errorf("%w: %s", status.ErrJobExists, r.ID)
	}
	return err
}

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key")
}

// GetJob implements status.JobStore.
func (s *Jobs) GetJob(ctx context.Context, id string) (status.Job, error) {
	r, err := s.load(ctx, byID, id)
	return r.Job, err
}

// GetRecord returns a job with the server's fields.
func (s *Jobs) GetRecord(ctx context.Context, id string) (Record, error) {
	r, err := s.load(ctx, byID, id)
	return r, err
}

// FindJobByRunID implements status.JobStore.
func (s *Jobs) FindJobByRunID(ctx context.Context, runID int64) (status.Job, error) {
	if runID == 0 {
		return status.Job{}, fmt.Errorf("%w: run 0", status.ErrJobNotFound)
	}
	r, err := s.load(ctx, byRunID, runID)
	if err != nil && errors.Is(err, status.ErrJobNotFound) {
		err = fmt.Errorf("%w: no job for run %d", status.ErrJobNotFound, runID)
	}
	return r.Job, err
}

// UpdateJob implements status.JobStore as one conditional UPDATE: the
// row changes only if its version is still the one the caller read, so a
// concurrent update (another goroutine or replica) makes this one fail
// with ErrConflict. The job to apply the update to comes from the cache
// when it holds that very version (a version names one content: every
// write bumps it), else from the database.
func (s *Jobs) UpdateJob(ctx context.Context, id string, version int64, u status.Update) (status.Job, error) {
	if u.Status != "" && !u.Status.Valid() {
		return status.Job{}, fmt.Errorf("invalid status %q", u.Status)
	}
	if u.At.IsZero() {
		u.At = s.db.now()
	}
	// As stored, so that the job returned (and remembered) equals the
	// job read back.
	u.At, u.RunUpdatedAt = fromMicros(micros(u.At)), fromMicros(micros(u.RunUpdatedAt))
	cur, ok := s.db.jobs.Get(id)
	if !ok || cur.Version != version {
		r, err := s.load(ctx, byID, id)
		if err != nil {
			return status.Job{}, err
		}
		cur = r.Job
	}
	if cur.Version != version {
		return status.Job{}, fmt.Errorf("%w: %s is at version %d, not %d", status.ErrConflict, id, cur.Version, version)
	}
	j := status.Apply(cur, u)
	history, err := encodeHistory(j.History)
	if err != nil {
		return status.Job{}, err
	}
	control, err := encodeControl(j)
	if err != nil {
		return status.Job{}, err
	}
	var cancelAt int64
	if !j.Status.Final() {
		cancelAt = micros(j.Control.CancelRequestedAt)
	}
	err = s.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		upd, err := s.db.stmt(ctx, tx, s.db.w, updateJobQuery)
		if err != nil {
			return err
		}
		res, err := upd.ExecContext(ctx,
			id, version, string(j.Status), j.Message, j.InstallationID, j.RunID, j.RunURL, j.RunAttempt, micros(j.RunUpdatedAt),
			j.DeploymentID, j.PullRequestNumber, j.Report.CheckRunID, string(j.Report.Reported),
			history, len(j.History), micros(j.UpdatedAt), j.Version, control, cancelAt)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s changed concurrently", status.ErrConflict, id)
		}
		return nil
	})
	if err != nil {
		s.db.jobs.Remove(id)
		if isSerializationFailure(err) {
			err = fmt.Errorf("%w: %s: %v", status.ErrConflict, id, err)
		}
		return status.Job{}, err
	}
	s.remember(j) // only once committed
	return j, nil
}

// isSerializationFailure reports PostgreSQL's answers to concurrent
// writers that lost, which mean the same as a version conflict.
func isSerializationFailure(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE 40001") || strings.Contains(msg, "SQLSTATE 40P01") || isUniqueViolation(err)
}

// ListCancelling implements status.CancelLister.
func (s *Jobs) ListCancelling(ctx context.Context, limit int) ([]status.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.list(ctx, `SELECT `+jobColumns+` FROM jobs WHERE cancel_requested_at <> 0 ORDER BY cancel_requested_at LIMIT $1`, limit)
}

// list runs a query of the periodic sweeps, prepared once (see stmt).
func (s *Jobs) list(ctx context.Context, query string, args ...any) ([]status.Job, error) {
	st, err := s.db.stmt(ctx, nil, s.db.r, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []status.Job
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Job)
	}
	return out, rows.Err()
}

// ListQuery selects a tenant's jobs for ListRecords.
type ListQuery struct {
	Tenant string
	// Status and Repo ("owner/name", any case) filter when set.
	Status status.Status
	Repo   string
	// Limit bounds the records returned (default 50, at most 500).
	Limit int
	// After continues a listing after the last record of the previous
	// page: its creation time and id.
	AfterCreated time.Time
	AfterID      string
}

// ListRecords returns a tenant's jobs, newest first (ties by id,
// descending), continuing after q.AfterCreated and q.AfterID when set.
func (s *Jobs) ListRecords(ctx context.Context, q ListQuery) ([]Record, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	where := []string{"tenant = $1"}
	args := []any{q.Tenant}
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	if q.Repo != "" {
		args = append(args, strings.ToLower(q.Repo))
		where = append(where, fmt.Sprintf("LOWER(owner || '/' || repo) = $%d", len(args)))
	}
	if q.AfterID != "" {
		args = append(args, micros(q.AfterCreated), q.AfterID)
		n := len(args)
		where = append(where, fmt.Sprintf("(created_at < $%d OR (created_at = $%d AND id < $%d))", n-1, n-1, n))
	}
	args = append(args, q.Limit)
	query := `SELECT ` + jobColumns + ` FROM jobs WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.db.r.QueryContext(ctx, s.db.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
