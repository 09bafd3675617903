package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	_ status.JobStore    = (*Jobs)(nil)
	_ status.StaleLister = (*Jobs)(nil)
)

// Record is a job with the server's own fields.
type Record struct {
	status.Job
	Tenant string
	// Agent is the job agent config and Context the job context, as JSON.
	Agent, Context json.RawMessage
}

const jobColumns = `id, tenant, status, message, kind, owner, repo, installation_id, run_id, run_url, run_attempt, run_updated_at,
	deployment_id, pull_request_number, report_deployment, check_run_name, head_sha, check_run_id, reported,
	agent, context, transitions, created_at, updated_at, version`

func scanRecord(row rowScanner) (Record, int, error) {
	var r Record
	var st, reported, agent, jctx string
	var runUpdated, created, updated int64
	var reportDeployment, transitions int
	err := row.Scan(&r.ID, &r.Tenant, &st, &r.Message, &r.Kind, &r.Owner, &r.Repo, &r.InstallationID, &r.RunID, &r.RunURL,
		&r.RunAttempt, &runUpdated, &r.DeploymentID, &r.PullRequestNumber, &reportDeployment, &r.Report.CheckRunName,
		&r.Report.HeadSHA, &r.Report.CheckRunID, &reported, &agent, &jctx, &transitions, &created, &updated, &r.Version)
	r.Status, r.Report.Reported = status.Status(st), status.Status(reported)
	r.Report.DeploymentStatus = reportDeployment != 0
	r.RunUpdatedAt, r.CreatedAt, r.UpdatedAt = fromMicros(runUpdated), fromMicros(created), fromMicros(updated)
	if agent != "" {
		r.Agent = json.RawMessage(agent)
	}
	if jctx != "" {
		r.Context = json.RawMessage(jctx)
	}
	return r, transitions, err
}

// Hot queries, prepared at Open (see DB.prepare).
const (
	byID    = "id = $1"
	byRunID = "run_id = $1 AND run_id <> 0" // matches the partial index

	historyQuery   = `SELECT from_status, to_status, message, at, source FROM job_transitions WHERE job_id = $1 ORDER BY seq`
	updateJobQuery = `UPDATE jobs SET status = $3, message = $4, installation_id = $5, run_id = $6, run_url = $7,
		run_attempt = $8, run_updated_at = $9, deployment_id = $10, pull_request_number = $11, check_run_id = $12, reported = $13,
		transitions = $14, updated_at = $15, version = $16
		WHERE id = $1 AND version = $2`
	insertTransitionQuery = `INSERT INTO job_transitions (job_id, seq, from_status, to_status, message, at, source)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
)

func loadQuery(where string) string {
	return `SELECT ` + jobColumns + ` FROM jobs WHERE ` + where + ` LIMIT 1`
}

// load reads a job and its history, from the reader pool or in tx.
func (s *Jobs) load(ctx context.Context, tx *sql.Tx, where string, arg any) (Record, int, error) {
	pool := s.db.r
	if tx != nil {
		pool = s.db.w
	}
	st, err := s.db.stmt(ctx, tx, pool, loadQuery(where))
	if err != nil {
		return Record{}, 0, err
	}
	r, n, err := scanRecord(st.QueryRowContext(ctx, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return r, 0, fmt.Errorf("%w: %v", status.ErrJobNotFound, arg)
	}
	if err != nil {
		return r, 0, err
	}
	r.History, err = s.history(ctx, pool, tx, r.ID)
	return r, n, err
}

func (s *Jobs) history(ctx context.Context, pool *sql.DB, tx *sql.Tx, id string) ([]status.Transition, error) {
	st, err := s.db.stmt(ctx, tx, pool, historyQuery)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []status.Transition
	for rows.Next() {
		var t status.Transition
		var from, to string
		var at int64
		if err := rows.Scan(&from, &to, &t.Message, &at, &t.Source); err != nil {
			return nil, err
		}
		t.From, t.To, t.At = status.Status(from), status.Status(to), fromMicros(at)
		out = append(out, t)
	}
	return out, rows.Err()
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
	_, err := s.db.w.ExecContext(ctx, s.db.q(`INSERT INTO jobs (`+jobColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 0, $22, $22, 1)`),
		r.ID, r.Tenant, string(r.Status), r.Message, r.Kind, r.Owner, r.Repo, r.InstallationID, r.RunID, r.RunURL, r.RunAttempt,
		micros(r.RunUpdatedAt), r.DeploymentID, r.PullRequestNumber, boolInt(r.Report.DeploymentStatus), r.Report.CheckRunName,
		r.Report.HeadSHA, r.Report.CheckRunID, string(r.Report.Reported), string(r.Agent), string(r.Context), micros(r.CreatedAt))
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
	r, _, err := s.load(ctx, nil, byID, id)
	return r.Job, err
}

// GetRecord returns a job with the server's fields.
func (s *Jobs) GetRecord(ctx context.Context, id string) (Record, error) {
	r, _, err := s.load(ctx, nil, byID, id)
	return r, err
}

// FindJobByRunID implements status.JobStore.
func (s *Jobs) FindJobByRunID(ctx context.Context, runID int64) (status.Job, error) {
	if runID == 0 {
		return status.Job{}, fmt.Errorf("%w: run 0", status.ErrJobNotFound)
	}
	r, _, err := s.load(ctx, nil, byRunID, runID)
	if err != nil && errors.Is(err, status.ErrJobNotFound) {
		err = fmt.Errorf("%w: no job for run %d", status.ErrJobNotFound, runID)
	}
	return r.Job, err
}

// UpdateJob implements status.JobStore: in one transaction it reads the
// job, checks the version, applies the update with status.Apply, writes it
// back on the condition that the version did not move (another replica's
// concurrent update makes this one fail with ErrConflict), and records the
// transition.
func (s *Jobs) UpdateJob(ctx context.Context, id string, version int64, u status.Update) (status.Job, error) {
	if u.Status != "" && !u.Status.Valid() {
		return status.Job{}, fmt.Errorf("invalid status %q", u.Status)
	}
	if u.At.IsZero() {
		u.At = s.db.now()
	}
	var out status.Job
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		r, _, err := s.load(ctx, tx, byID, id)
		if err != nil {
			return err
		}
		if r.Version != version {
			return fmt.Errorf("%w: %s is at version %d, not %d", status.ErrConflict, id, r.Version, version)
		}
		j := status.Apply(r.Job, u)
		upd, err := s.db.stmt(ctx, tx, s.db.w, updateJobQuery)
		if err != nil {
			return err
		}
		res, err := upd.ExecContext(ctx,
			id, version, string(j.Status), j.Message, j.InstallationID, j.RunID, j.RunURL, j.RunAttempt, micros(j.RunUpdatedAt),
			j.DeploymentID, j.PullRequestNumber, j.Report.CheckRunID, string(j.Report.Reported),
			len(j.History), micros(j.UpdatedAt), j.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s changed concurrently", status.ErrConflict, id)
		}
		ins, err := s.db.stmt(ctx, tx, s.db.w, insertTransitionQuery)
		if err != nil {
			return err
		}
		for i := len(r.History); i < len(j.History); i++ {
			t := j.History[i]
			if _, err := ins.ExecContext(ctx, id, i+1, string(t.From), string(t.To), t.Message, micros(t.At), t.Source); err != nil {
				return err
			}
		}
		out = j
		return nil
	})
	if err != nil && isSerializationFailure(err) {
		err = fmt.Errorf("%w: %s: %v", status.ErrConflict, id, err)
	}
	return out, err
}

// isSerializationFailure reports PostgreSQL's answers to concurrent
// writers that lost, which mean the same as a version conflict.
func isSerializationFailure(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE 40001") || strings.Contains(msg, "SQLSTATE 40P01") || isUniqueViolation(err)
}

// ListStaleJobs implements status.StaleLister.
func (s *Jobs) ListStaleJobs(ctx context.Context, updatedBefore time.Time, limit int) ([]status.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.r.QueryContext(ctx, s.db.q(`SELECT `+jobColumns+` FROM jobs
		WHERE status IN ('pending', 'in_progress', 'action_required', 'external_run_not_found') AND updated_at < $1
		ORDER BY updated_at LIMIT $2`), micros(updatedBefore), limit)
	if err != nil {
		return nil, err
	}
	var out []status.Job
	for rows.Next() {
		r, _, err := scanRecord(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r.Job)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].History, err = s.history(ctx, s.db.r, nil, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
