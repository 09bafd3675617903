package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/ghbridge/ghbridge/control"
	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/status"
)

// reviewerSecret is the tenant's secret holding a required reviewer's
// token, used to approve and reject pending deployments (GitHub lets only
// required reviewers do that; an App's installation token cannot).
const reviewerSecret = "GITHUB_REVIEWER_TOKEN"

// actor names an API caller in job histories.
func actor(tenant string) string { return "api:" + tenant }

// controlError answers an error of a control action: a status that does
// not allow it is 409 naming the status, a refusal by GitHub 403/502.
func (s *Server) controlError(w http.ResponseWriter, r *http.Request, key string, err error) {
	var se *status.StatusError
	switch {
	case errors.As(err, &se):
		if _, id, ok := strings.Cut(se.JobID, "."); ok {
			se.JobID = id // the tenant's own id
		}
		writeError(w, http.StatusConflict, se.Error())
	case errors.Is(err, control.ErrNotReviewer):
		tenant, _, _ := strings.Cut(key, ".")
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s: set %s%s__%s to a token of one of the reviewers",
			err.Error(), s.cfg.SecretPrefix, strings.ToUpper(strings.ReplaceAll(tenant, "-", "_")), reviewerSecret))
	case errors.Is(err, control.ErrNotSupported):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, control.ErrRefused):
		writeError(w, http.StatusBadGateway, err.Error())
	case errors.Is(err, status.ErrJobNotFound):
		writeError(w, http.StatusNotFound, "no such job")
	default:
		s.log.ErrorContext(r.Context(), "job action failed", "job_id", key, "error", err)
		writeError(w, http.StatusBadGateway, "GitHub could not be asked: "+err.Error())
	}
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, tenant string) {
	rec, ok := s.record(w, r, tenant)
	if !ok {
		return
	}
	if _, err := s.control.Cancel(r.Context(), rec.ID, actor(tenant)); err != nil {
		s.controlError(w, r, rec.ID, err)
		return
	}
	s.getJob(w, r, tenant)
}

// rerunRequest is the body of POST /api/jobs/{id}/rerun.
type rerunRequest struct {
	FailedOnly bool `json:"failedOnly"`
}

func (s *Server) rerunJob(w http.ResponseWriter, r *http.Request, tenant string) {
	rec, ok := s.record(w, r, tenant)
	if !ok {
		return
	}
	var req rerunRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	if _, err := s.control.Rerun(r.Context(), rec.ID, req.FailedOnly, actor(tenant)); err != nil {
		s.controlError(w, r, rec.ID, err)
		return
	}
	s.getJob(w, r, tenant)
}

// decisionRequest is the body of POST /api/jobs/{id}/approve and /reject.
type decisionRequest struct {
	Comment string `json:"comment"`
}

func (s *Server) decideJob(approve bool) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, tenant string) {
		rec, ok := s.record(w, r, tenant)
		if !ok {
			return
		}
		var req decisionRequest
		if r.ContentLength != 0 && !decodeBody(w, r, &req) {
			return
		}
		if len(req.Comment) > 4096 {
			writeError(w, http.StatusBadRequest, "comment: at most 4096 bytes")
			return
		}
		var err error
		if approve {
			_, err = s.control.Approve(r.Context(), rec.ID, req.Comment, actor(tenant))
		} else {
			_, err = s.control.Reject(r.Context(), rec.ID, req.Comment, actor(tenant))
		}
		if err != nil {
			s.controlError(w, r, rec.ID, err)
			return
		}
		s.getJob(w, r, tenant)
	}
}

// listJSON is the answer of GET /api/jobs.
type listJSON struct {
	Jobs []jobJSON `json:"jobs"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	lq := sqlstore.ListQuery{Tenant: tenant, Status: status.Status(q.Get("status")), Repo: q.Get("repo"), Limit: 50}
	if lq.Status != "" && !lq.Status.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not one of %v", lq.Status, status.Statuses()))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "limit: a number from 1 to 500")
			return
		}
		lq.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		at, id, ok := decodeCursor(c)
		// A cursor names a job of the caller's: another tenant's key
		// would only select nothing, but refuse it plainly.
		if !ok || !strings.HasPrefix(id, tenant+".") {
			writeError(w, http.StatusBadRequest, "cursor: not one this server gave; start again without it")
			return
		}
		lq.AfterCreated, lq.AfterID = at, id
	}
	recs, err := s.db.Jobs().ListRecords(r.Context(), sqlstore.ListQuery{Tenant: lq.Tenant, Status: lq.Status, Repo: lq.Repo,
		Limit: lq.Limit + 1, AfterCreated: lq.AfterCreated, AfterID: lq.AfterID})
	if err != nil {
		s.log.ErrorContext(r.Context(), "listing jobs failed", "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	out := listJSON{Jobs: []jobJSON{}}
	if len(recs) > lq.Limit {
		recs = recs[:lq.Limit]
		last := recs[len(recs)-1]
		out.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	for _, rec := range recs {
		out.Jobs = append(out.Jobs, jobView(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

func decodeCursor(c string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", false
	}
	n, id, ok := strings.Cut(string(raw), ":")
	us, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", false
	}
	return time.UnixMicro(us).UTC(), id, true
}

// redispatch queues the dispatch of a job put back to pending by a
// re-run: its retry schedule starts again, and what says whether an
// earlier request may have reached GitHub is kept, so the job still runs
// once.
func (s *Server) redispatch(ctx context.Context, j status.Job) error {
	d, err := s.db.Jobs().DispatchOf(ctx, j.ID)
	if err != nil {
		return err
	}
	d.Tries, d.Next, d.Since = 0, time.Time{}, s.now()
	if err := s.db.Jobs().SaveDispatch(ctx, j.ID, &d); err != nil {
		return err
	}
	return s.queue.Enqueue(context.WithoutCancel(ctx), j.ID)
}

// reviewerClient is a client with the tenant's reviewer token, if it has
// one.
func (s *Server) reviewerClient(ctx context.Context, j status.Job) (*gh.Client, bool, error) {
	store := credentials.EnvSecretStore{Prefix: s.cfg.SecretPrefix, Lookup: s.cfg.SecretLookup, SharedWith: s.sharesSecrets}
	tok, err := store.Secret(ctx, j.Tenant, reviewerSecret)
	if errors.Is(err, credentials.ErrSecretNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	client, err := s.clients.Client(credentials.StaticToken(tok, "secret "+reviewerSecret))
	return client, err == nil, err
}

// sweepLoop moves cancels along (see control.Controller.Sweep): every
// tenth of the force-cancel grace period, at most every 30 s.
func (s *Server) sweepLoop(ctx context.Context) {
	every := min(max(s.cfg.ForceCancelAfter/10, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if rep, err := s.control.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "sweeping cancels failed", "error", err)
			} else if rep.Sent+rep.Forced > 0 {
				s.log.InfoContext(ctx, "cancels swept", "sent", rep.Sent, "forced", rep.Forced, "failed", rep.Failed)
			}
		}
	}
}
