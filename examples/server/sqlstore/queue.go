package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ghbridge/ghbridge/dispatch"
)

// ErrNotPending is returned by SaveDispatch for a job that is no longer
// pending (dispatched, cancelled), or whose dispatch another worker moved
// on since it was read: nothing is to be sent by this worker.
var ErrNotPending = errors.New("job is no longer pending, or another worker has its dispatch")

// Dispatch is what the server keeps of a pending job's dispatch.
type Dispatch struct {
	// State is the dispatcher's (see dispatch.Step).
	State dispatch.State `json:"state"`
	// Tries counts the steps taken, for the backoff.
	Tries int `json:"tries,omitempty"`
	// Since is when this dispatch began, for its deadline: a re-run of a
	// job whose dispatch failed begins again. Zero means the job's
	// creation.
	Since time.Time `json:"since,omitzero"`
	// Next is when the next step is due.
	Next time.Time `json:"-"`

	stored string // as read, for the compare-and-set of SaveDispatch
}

// DispatchOf returns a job's dispatch record.
func (s *Jobs) DispatchOf(ctx context.Context, id string) (Dispatch, error) {
	var raw string
	var next int64
	st, err := s.db.stmt(ctx, nil, s.db.r, `SELECT dispatch_state, next_attempt_at FROM jobs WHERE id = $1`)
	if err != nil {
		return Dispatch{}, err
	}
	if err := st.QueryRowContext(ctx, id).Scan(&raw, &next); err != nil {
		return Dispatch{}, err
	}
	var d Dispatch
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return d, fmt.Errorf("job %s: dispatch state: %w", id, err)
		}
	}
	d.Next, d.stored = fromMicros(next), raw
	return d, nil
}

// SaveDispatch records a pending job's dispatch, if the job is still
// pending and its dispatch is still as d was read (a compare-and-set: of
// two workers that read the same state, one saves, the other gets
// ErrNotPending and sends nothing).
func (s *Jobs) SaveDispatch(ctx context.Context, id string, d *Dispatch) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// Through the writer's group commit: on SQLite a dispatch's saves
	// share fsyncs with the job and delivery writes around them.
	err = s.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		st, err := s.db.stmt(ctx, tx, s.db.w, saveDispatchQuery)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, id, string(raw), micros(d.Next), d.stored)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrNotPending, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.stored = string(raw)
	return nil
}

const saveDispatchQuery = `UPDATE jobs SET dispatch_state = $2, next_attempt_at = $3
	WHERE id = $1 AND status = 'pending' AND dispatch_state = $4`

// DueJobs returns the ids of pending jobs whose next attempt is due at
// now, the longest due first.
func (s *Jobs) DueJobs(ctx context.Context, now time.Time, limit int) ([]string, error) {
	st, err := s.db.stmt(ctx, nil, s.db.r, `SELECT id FROM jobs WHERE status = 'pending' AND next_attempt_at <= $1
		ORDER BY next_attempt_at LIMIT $2`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, micros(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// QueueStats describes the pending jobs: how many, and the creation time
// of the oldest (zero when none).
type QueueStats struct {
	Depth  int
	Oldest time.Time
}

// PendingStats returns the queue's depth and age.
func (s *Jobs) PendingStats(ctx context.Context) (QueueStats, error) {
	var st QueueStats
	var oldest int64
	q, err := s.db.stmt(ctx, nil, s.db.r, `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM jobs WHERE status = 'pending'`)
	if err == nil {
		err = q.QueryRowContext(ctx).Scan(&st.Depth, &oldest)
	}
	if oldest != 0 {
		st.Oldest = fromMicros(oldest)
	}
	return st, err
}
