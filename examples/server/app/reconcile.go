package app

import (
	"context"
	"strconv"
	"time"

	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/webhook"
)

const (
	leaseName          = "reconcile"
	deliveriesCheckKey = "deliveries_checked_at"
)

// reconcileLoop recovers what webhooks missed, every ReconcileInterval,
// on one replica at a time (whichever holds the database lease).
func (s *Server) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reconcile(ctx)
		}
	}
}

// Reconcile runs one reconciliation pass if this replica holds the lease:
// failed deliveries are redelivered, quiet jobs polled, and what the
// retention settings no longer keep is deleted.
func (s *Server) Reconcile(ctx context.Context) {
	ok, err := s.db.TryLease(ctx, leaseName, s.holder, s.cfg.ReconcileInterval)
	if err != nil {
		s.log.WarnContext(ctx, "reconcile: taking the lease failed", "error", err)
		return
	}
	if !ok {
		return // another replica reconciles
	}
	start := s.now()
	if app, err := s.appClient(); err == nil {
		since := start.Add(-24 * time.Hour)
		if v, _ := s.db.Get(ctx, deliveriesCheckKey); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				// Overlap the previous pass: a delivery failing just then
				// is caught now.
				since = time.Unix(n, 0).Add(-s.cfg.ReconcileInterval)
			}
		}
		rep, err := webhook.RecoverDeliveries(ctx, app, webhook.RecoverOptions{Since: since})
		if err != nil {
			s.log.WarnContext(ctx, "reconcile: recovering deliveries failed", "error", err)
		} else {
			s.metrics.reconciles.WithLabelValues("redelivered").Add(float64(rep.Redelivered))
			_ = s.db.Set(ctx, deliveriesCheckKey, strconv.FormatInt(start.Unix(), 10))
			if rep.Redelivered > 0 {
				s.log.InfoContext(ctx, "reconcile: failed deliveries redelivered", "count", rep.Redelivered, "failed", rep.Failed)
			}
		}
	}
	s.reconcileRepoHooks(ctx)
	rep, err := s.poller.Poll(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "reconcile: polling quiet jobs failed", "error", err)
	}
	s.metrics.reconciles.WithLabelValues("polled").Add(float64(rep.Checked))
	s.metrics.reconciles.WithLabelValues("updated").Add(float64(rep.Updated))
	pruned, err := s.db.Prune(ctx, s.cfg.Retention)
	if err != nil {
		s.log.WarnContext(ctx, "reconcile: pruning old records failed", "error", err)
	}
	if pruned != (sqlstore.PruneReport{}) {
		s.log.DebugContext(ctx, "reconcile: pruned old records", "deliveries", pruned.Deliveries, "audit_events", pruned.AuditEvents, "jobs", pruned.Jobs)
	}
}
