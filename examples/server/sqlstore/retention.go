package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ghbridge/ghbridge/status"
)

// Retention says how long records are kept; zero keeps them forever.
type Retention struct {
	// Deliveries is how long a completed delivery id is remembered.
	// GitHub redelivers for three days; a delivery forgotten sooner is
	// processed again when redelivered.
	Deliveries time.Duration
	// AuditEvents is how long audit events are kept.
	AuditEvents time.Duration
	// Jobs is how long a finished job (with its status history) is kept
	// after its last update. Unfinished jobs are never pruned.
	Jobs time.Duration
}

// DefaultRetention is the reference server's default.
var DefaultRetention = Retention{Deliveries: 7 * 24 * time.Hour, AuditEvents: 90 * 24 * time.Hour, Jobs: 90 * 24 * time.Hour}

// PruneReport counts the records one Prune deleted.
type PruneReport struct {
	Deliveries, AuditEvents, Jobs int64
}

// Prune deletes what r no longer keeps, as of the database clock, and the
// delivery claims whose lease has passed. It deletes in small batches, so
// that other writes never wait long behind it; a failure stops it, and the
// next call goes on.
func (db *DB) Prune(ctx context.Context, r Retention) (PruneReport, error) {
	var rep PruneReport
	now := db.now()
	var errs []error
	if r.Deliveries > 0 {
		n, err := db.Deliveries().Prune(ctx, now.Add(-r.Deliveries))
		rep.Deliveries, errs = n, append(errs, err)
	} else {
		n, err := db.deleteBatches(ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state = 'processing' AND lease_until < $1 LIMIT $2)`, micros(now))
		rep.Deliveries, errs = n, append(errs, err)
	}
	if r.AuditEvents > 0 {
		q := `DELETE FROM audit_events WHERE rowid IN (SELECT rowid FROM audit_events WHERE at < $1 LIMIT $2)`
		if db.dialect == Postgres {
			q = `DELETE FROM audit_events WHERE ctid = ANY(ARRAY(SELECT ctid FROM audit_events WHERE at < $1 LIMIT $2))`
		}
		n, err := db.deleteBatches(ctx, q, micros(now.Add(-r.AuditEvents)))
		rep.AuditEvents, errs = n, append(errs, err)
	}
	if r.Jobs > 0 {
		n, err := db.deleteBatches(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE status IN (`+finalStatuses()+`) AND updated_at < $1 LIMIT $2)`,
			micros(now.Add(-r.Jobs)))
		rep.Jobs, errs = n, append(errs, err)
		if n > 0 {
			db.jobs.Purge() // no update may start from a deleted job
		}
	}
	return rep, errors.Join(errs...)
}

// pruneBatch bounds the rows one DELETE removes (DB.pruneBatch, which
// tests set smaller).
const pruneBatch = 1000

// deleteBatches runs query, a DELETE of at most $2 rows matching $1,
// until it deletes fewer than a batch, and returns the rows deleted.
func (db *DB) deleteBatches(ctx context.Context, query string, arg any) (int64, error) {
	var total int64
	for {
		res, err := db.w.ExecContext(ctx, db.q(query), arg, db.pruneBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(db.pruneBatch) {
			return total, nil
		}
	}
}

// finalStatuses lists the statuses of finished jobs as SQL literals.
func finalStatuses() string {
	var out []string
	for _, s := range status.Statuses() {
		if s.Final() {
			out = append(out, "'"+string(s)+"'")
		}
	}
	return strings.Join(out, ", ")
}
