package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/status"
)

// ListStaleJobs implements status.StaleLister. polled_at is written by
// MarkPolled only, never by UpdateJob, so that a poll neither bumps a
// job's version nor races with its updates.
func (s *Jobs) ListStaleJobs(ctx context.Context, quietSince time.Time, limit int) ([]status.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.list(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE status IN ('pending', 'in_progress', 'action_required', 'external_run_not_found') AND updated_at < $1 AND polled_at < $1
		ORDER BY polled_at, updated_at LIMIT $2`, micros(quietSince), limit)
}

// markPolledBatch bounds the ids of one UPDATE.
const markPolledBatch = 500

// MarkPolled implements status.StaleLister.
func (s *Jobs) MarkPolled(ctx context.Context, at time.Time, ids ...string) error {
	for len(ids) > 0 {
		n := min(len(ids), markPolledBatch)
		var q strings.Builder
		q.WriteString(`UPDATE jobs SET polled_at = $1 WHERE id IN (`)
		args := []any{micros(at)}
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("$" + strconv.Itoa(i+2))
			args = append(args, id)
		}
		q.WriteString(")")
		if _, err := s.db.w.ExecContext(ctx, s.db.q(q.String()), args...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
