package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/webhook"
)

// Deliveries is a webhook.DeliveryStore. A claim is one conditional
// upsert, so replicas sharing the database never both process a delivery.
type Deliveries struct{ db *DB }

// Deliveries returns the delivery store.
func (db *DB) Deliveries() *Deliveries { return &Deliveries{db: db} }

var _ webhook.DeliveryStore = (*Deliveries)(nil)

// A claim takes over a row that is not done when its lease has passed or
// when an earlier incarnation of the same named holder took it.
const (
	claimDeliveryQuery = `INSERT INTO deliveries (id, state, lease_until, updated_at, holder, incarnation) VALUES ($1, 'processing', $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET state = 'processing', lease_until = excluded.lease_until, updated_at = excluded.updated_at,
			holder = excluded.holder, incarnation = excluded.incarnation
		WHERE deliveries.state <> 'done' AND (deliveries.lease_until < excluded.updated_at
			OR (excluded.holder <> '' AND deliveries.holder = excluded.holder AND deliveries.incarnation < excluded.incarnation))
		RETURNING id`
	completeDeliveryQuery = `INSERT INTO deliveries (id, state, lease_until, updated_at) VALUES ($1, 'done', 0, $2)
		ON CONFLICT (id) DO UPDATE SET state = 'done'`
)

// Claim implements webhook.DeliveryStore.
func (s *Deliveries) Claim(ctx context.Context, id string, holder webhook.Holder, lease time.Duration) (bool, error) {
	now := s.db.now()
	claimed := false
	err := s.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		st, err := s.db.stmt(ctx, tx, s.db.w, claimDeliveryQuery)
		if err != nil {
			return err
		}
		var got string
		err = st.QueryRowContext(ctx, id, micros(now.Add(lease)), micros(now), holder.Name, holder.Incarnation).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		claimed = err == nil
		return err
	})
	return claimed, err
}

// Complete implements webhook.DeliveryStore. A claimed delivery keeps its
// claim time as updated_at: Prune works in days, and leaving the indexed
// column alone spares the index a write.
func (s *Deliveries) Complete(ctx context.Context, id string) error {
	now := s.db.now()
	return s.db.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		st, err := s.db.stmt(ctx, tx, s.db.w, completeDeliveryQuery)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, id, micros(now))
		return err
	})
}

// Release implements webhook.DeliveryStore.
func (s *Deliveries) Release(ctx context.Context, id string, holder webhook.Holder) error {
	st, err := s.db.stmt(ctx, nil, s.db.w, `DELETE FROM deliveries WHERE id = $1 AND state = 'processing' AND holder = $2 AND incarnation = $3`)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, id, holder.Name, holder.Incarnation)
	return err
}

// ReleaseStale implements webhook.DeliveryStore.
func (s *Deliveries) ReleaseStale(ctx context.Context, holder webhook.Holder) (int, error) {
	if holder.Name == "" {
		return 0, nil
	}
	res, err := s.db.w.ExecContext(ctx, s.db.q(`DELETE FROM deliveries WHERE state = 'processing' AND holder = $1 AND incarnation < $2`),
		holder.Name, holder.Incarnation)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Prune forgets deliveries completed before the given time (GitHub
// redelivers for three days at most) and claims whose lease has passed
// (a claim that was neither completed nor released: its process died),
// and returns how many. It deletes in small batches, so that writes of
// deliveries never wait long behind it.
func (s *Deliveries) Prune(ctx context.Context, before time.Time) (int64, error) {
	now := micros(s.db.now())
	n, err := s.db.deleteBatches(ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state = 'done' AND updated_at < $1 LIMIT $2)`, micros(before))
	if err != nil {
		return n, err
	}
	m, err := s.db.deleteBatches(ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state = 'processing' AND lease_until < $1 LIMIT $2)`, now)
	return n + m, err
}

// Audit is a credentials.AuditSink writing to the audit_events table.
type Audit struct {
	db  *DB
	err func(error)
}

// Audit returns an audit sink; onError is told about events that could
// not be written (auditing never fails the operation).
func (db *DB) Audit(onError func(error)) *Audit { return &Audit{db: db, err: onError} }

var _ credentials.AuditSink = (*Audit)(nil)

// Audit implements credentials.AuditSink.
func (a *Audit) Audit(ctx context.Context, e credentials.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = a.db.now()
	}
	ctx = context.WithoutCancel(ctx)
	st, err := a.db.stmt(ctx, nil, a.db.w, `INSERT INTO audit_events
		(at, name, credential_type, tenant, repo, installation_id, job_id, attempt, outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`)
	if err == nil {
		_, err = st.ExecContext(ctx, micros(e.Time), e.Name, string(e.CredentialType), e.Tenant, e.Repo, e.InstallationID, e.JobID, e.Attempt, string(e.Outcome), e.Error)
	}
	if err != nil && a.err != nil {
		a.err(err)
	}
}

// Events returns the most recent audit events, newest first.
func (a *Audit) Events(ctx context.Context, limit int) ([]credentials.AuditEvent, error) {
	rows, err := a.db.r.QueryContext(ctx, a.db.q(`SELECT at, name, credential_type, tenant, repo, installation_id, job_id, attempt, outcome, error
		FROM audit_events ORDER BY at DESC LIMIT $1`), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []credentials.AuditEvent
	for rows.Next() {
		var e credentials.AuditEvent
		var at int64
		var ct, outcome string
		if err := rows.Scan(&at, &e.Name, &ct, &e.Tenant, &e.Repo, &e.InstallationID, &e.JobID, &e.Attempt, &outcome, &e.Error); err != nil {
			return nil, err
		}
		e.Time, e.CredentialType, e.Outcome = fromMicros(at), credentials.Type(ct), credentials.AuditOutcome(outcome)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountDeliveries returns how many deliveries were processed, for load
// tests and operators.
func (db *DB) CountDeliveries(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE state = 'done'`).Scan(&n)
	return n, err
}
