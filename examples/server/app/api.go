package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ghbridge/ghbridge"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/examples/server/sqlstore"
	"github.com/ghbridge/ghbridge/internal/otelx"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/template"
)

// maxBody caps JSON request bodies of the API.
const maxBody = 1 << 20

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.metrics.handler())

	mux.HandleFunc("POST /api/jobs", s.auth(s.spanned("ghbridge.job.create", s.createJob)))
	mux.HandleFunc("GET /api/jobs", s.auth(s.listJobs))
	mux.HandleFunc("POST /api/jobs/{id}/cancel", s.auth(s.cancelJob))
	mux.HandleFunc("POST /api/jobs/{id}/rerun", s.auth(s.rerunJob))
	mux.HandleFunc("POST /api/jobs/{id}/approve", s.auth(s.decideJob(true)))
	mux.HandleFunc("POST /api/jobs/{id}/reject", s.auth(s.decideJob(false)))
	mux.HandleFunc("GET /api/jobs/{id}", s.auth(s.getJob))
	mux.HandleFunc("GET /api/jobs/{id}/inputs", s.auth(s.jobInputs))
	mux.HandleFunc("POST /api/jobs/{id}/status", s.auth(s.reportStatus))

	mux.HandleFunc("POST /api/github/webhook", s.webhook)
	mux.HandleFunc("GET /api/github/install-url", s.auth(s.needApp(s.installURL)))
	mux.HandleFunc("GET /api/github/install-callback", func(w http.ResponseWriter, r *http.Request) {
		s.needApp(func(w http.ResponseWriter, r *http.Request, _ string) { s.installCallback(w, r) })(w, r, "")
	})
	mux.HandleFunc("POST /api/github/installations/recover", s.auth(s.needApp(s.recoverInstallations)))
	mux.HandleFunc("DELETE /api/github/installations/{id}", s.auth(s.needApp(s.deleteInstallation)))
	return s.metrics.instrument(s.accessLog(jsonErrors(mux)))
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// tenantHandler is a handler that knows the caller's tenant.
type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant string)

// auth checks the bearer key, comparing it in constant time with every
// configured key (the time taken does not depend on which one matches).
func (s *Server) auth(next tenantHandler) http.HandlerFunc {
	keys := make([][32]byte, 0, len(s.cfg.APIKeys))
	tenants := make([]string, 0, len(s.cfg.APIKeys))
	for k, t := range s.cfg.APIKeys {
		keys, tenants = append(keys, sha256.Sum256([]byte(k))), append(tenants, t)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(keys) == 0 {
			writeError(w, http.StatusServiceUnavailable, "API keys not configured: set "+EnvAPIKeys)
			return
		}
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ghbridge"`)
			writeError(w, http.StatusUnauthorized, "missing bearer key: send Authorization: Bearer KEY")
			return
		}
		sum := sha256.Sum256([]byte(key))
		tenant := ""
		for i := range keys {
			if subtle.ConstantTimeCompare(sum[:], keys[i][:]) == 1 {
				tenant = tenants[i]
			}
		}
		if tenant == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ghbridge", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer key")
			return
		}
		next(w, r, tenant)
	}
}

// needApp answers 503, naming what to set, while no GitHub App is usable.
func (s *Server) needApp(next tenantHandler) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, tenant string) {
		if why := s.cfg.githubUnavailable(); why != "" {
			writeError(w, http.StatusServiceUnavailable, why)
			return
		}
		next(w, r, tenant)
	}
}

// decodeBody reads a size-capped JSON body strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(mt, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("extra data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		return false
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty body: send a JSON object")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Job ids are the tenant's own: two tenants may use the same one. The
// store and GitHub see "tenant.id" (a tenant holds no '.', an id none
// either), so the job_id a run carries names one job of one tenant.

// jobKey returns the store's and GitHub's id of a tenant's job.
func jobKey(tenant, id string) string { return tenant + "." + id }

// routeKey maps a route's {id} to a key: the caller's own id, or the
// qualified id a workflow got as its job_id input. Another tenant's
// qualified id maps to a key the caller does not own, answered 404.
func routeKey(tenant, id string) string {
	if strings.Contains(id, ".") {
		return id
	}
	return jobKey(tenant, id)
}

// createJobRequest is the body of POST /api/jobs.
type createJobRequest struct {
	ID      string          `json:"id"`
	Agent   json.RawMessage `json:"agent"`
	Context json.RawMessage `json:"context"`
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request, tenant string) {
	var req createJobRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ID == "" {
		req.ID = "job-" + strings.ToLower(rand.Text())[:16]
	}
	if !jobIDPattern.MatchString(req.ID) {
		writeError(w, http.StatusBadRequest, "id: use 1 to 64 letters, digits, '-' and '_', starting with a letter or digit")
		return
	}
	if len(req.Agent) == 0 || !isJSONObject(req.Agent) {
		writeError(w, http.StatusBadRequest, "agent: required, a JSON object (the job agent config)")
		return
	}
	jc := template.Context{}
	if len(req.Context) > 0 {
		if !isJSONObject(req.Context) {
			writeError(w, http.StatusBadRequest, "context: a JSON object (the job context)")
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(req.Context)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jc); err != nil {
			writeError(w, http.StatusBadRequest, "context: "+err.Error())
			return
		}
	}
	key := jobKey(tenant, req.ID)
	if jc.JobID != "" && jc.JobID != req.ID && jc.JobID != key {
		writeError(w, http.StatusBadRequest, "context.jobId differs from id; leave it out")
		return
	}
	jc.JobID = key
	trace.SpanFromContext(r.Context()).SetAttributes(otelx.JobID.String(key))
	jcJSON, _ := json.Marshal(jc)
	log := s.log.With("job_id", key, "tenant", tenant)

	// Ask the renderer first: the job's repository and reporting come
	// from the rendered config, and a config that does not render makes
	// an invalid_job_agent job rather than a 400.
	ctx := r.Context()
	job, rerr := ghbridge.JobRecord(ctx, s.renderer, dispatch.Request{ID: key, Tenant: tenant, Agent: req.Agent, Context: jc})
	job.CreatedAt = s.now()
	rec := sqlstore.Record{Job: job, Agent: req.Agent, Context: jcJSON}
	if err := s.db.Jobs().CreateRecord(ctx, rec); err != nil {
		if errors.Is(err, status.ErrJobExists) {
			writeError(w, http.StatusConflict, "a job with this id exists")
			return
		}
		log.ErrorContext(ctx, "storing a job failed", "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}

	s.rememberSpan(ctx, key)
	// Accepted: a worker dispatches it. The job is committed, so a caller
	// that hangs up now still gets it dispatched.
	if rerr != nil {
		if _, err := s.tracker.Dispatched(ctx, key, status.Receipt{}, rerr); err != nil {
			log.ErrorContext(ctx, "recording the config error failed", "error", err)
		}
		s.metrics.dispatches.WithLabelValues("", string(status.InvalidJobAgent)).Inc()
		got, err := s.db.Jobs().GetRecord(context.WithoutCancel(ctx), key)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		}
		writeJSON(w, http.StatusCreated, jobView(got))
		return
	}
	if err := s.queue.Enqueue(context.WithoutCancel(ctx), key); err != nil {
		log.WarnContext(ctx, "enqueuing the job failed; the queue's sweep will find it", "error", err)
	}
	// The job as accepted: a worker (of any replica) may have moved it on
	// already; GET follows it.
	rec.Version, rec.UpdatedAt = 1, rec.CreatedAt
	writeJSON(w, http.StatusCreated, jobView(rec))
}

func isJSONObject(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "{") && json.Valid(b)
}

// record returns the caller's job, or answers 404 (for other tenants'
// jobs too: their existence is not revealed).
func (s *Server) record(w http.ResponseWriter, r *http.Request, tenant string) (sqlstore.Record, bool) {
	rec, err := s.db.Jobs().GetRecord(r.Context(), routeKey(tenant, r.PathValue("id")))
	switch {
	case errors.Is(err, status.ErrJobNotFound) || (err == nil && rec.Tenant != tenant):
		writeError(w, http.StatusNotFound, "no such job")
		return rec, false
	case err != nil:
		s.log.ErrorContext(r.Context(), "reading a job failed", "job_id", r.PathValue("id"), "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return rec, false
	}
	return rec, true
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, tenant string) {
	if rec, ok := s.record(w, r, tenant); ok {
		writeJSON(w, http.StatusOK, jobView(rec))
	}
}

func decodeContext(raw json.RawMessage) (template.Context, error) {
	var jc template.Context
	if len(raw) == 0 {
		return jc, nil
	}
	err := json.Unmarshal(raw, &jc)
	return jc, err
}

func (s *Server) jobInputs(w http.ResponseWriter, r *http.Request, tenant string) {
	rec, ok := s.record(w, r, tenant)
	if !ok {
		return
	}
	jc, err := decodeContext(rec.Context)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	jc.JobID = rec.ID // the job_id the workflow got
	writeJSON(w, http.StatusOK, jc.Inputs())
}

// statusRequest is the body of POST /api/jobs/{id}/status.
type statusRequest struct {
	Status  status.Status `json:"status"`
	Message string        `json:"message"`
}

func (s *Server) reportStatus(w http.ResponseWriter, r *http.Request, tenant string) {
	rec, ok := s.record(w, r, tenant)
	if !ok {
		return
	}
	var req statusRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if !req.Status.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not one of %v", req.Status, status.Statuses()))
		return
	}
	if len(req.Message) > 4096 {
		writeError(w, http.StatusBadRequest, "message: at most 4096 bytes")
		return
	}
	_, err := s.tracker.Set(r.Context(), rec.ID, req.Status, req.Message, "manual")
	switch {
	case errors.Is(err, status.ErrTransition):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "manual status report failed", "job_id", rec.ID, "error", err)
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.getJob(w, r, tenant)
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		writeError(w, http.StatusServiceUnavailable, "webhooks not configured: set "+EnvWebhookSecret+" to the App's webhook secret")
		return
	}
	s.hooks.ServeHTTP(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := map[string]any{"status": "ok", "database": string(s.db.Dialect())}
	code := http.StatusOK
	if err := s.db.Ping(ctx); err != nil {
		body["status"], code = "database unavailable", http.StatusServiceUnavailable
		s.log.ErrorContext(ctx, "health check: database unavailable", "error", err)
	}
	body["github_app"] = "configured"
	if why := s.cfg.githubUnavailable(); why != "" {
		body["github_app"] = why
	}
	body["webhooks"] = s.hooks != nil
	writeJSON(w, code, body)
}

// jobJSON is a job as the API shows it.
type jobJSON struct {
	// ID is the tenant's id; GitHubJobID the job_id sent to GitHub.
	ID                string        `json:"id"`
	GitHubJobID       string        `json:"githubJobId"`
	Status            status.Status `json:"status"`
	Message           string        `json:"message"`
	Kind              string        `json:"kind,omitempty"`
	Owner             string        `json:"owner,omitempty"`
	Repo              string        `json:"repo,omitempty"`
	InstallationID    int64         `json:"installationId,omitempty"`
	RunID             int64         `json:"runId,omitempty"`
	RunURL            string        `json:"runUrl,omitempty"`
	RunAttempt        int           `json:"runAttempt,omitempty"`
	DeploymentID      int64         `json:"deploymentId,omitempty"`
	PullRequestNumber int           `json:"pullRequestNumber,omitempty"`
	// WorkflowJob and Step are what the run is doing now.
	WorkflowJob string `json:"workflowJob,omitempty"`
	Step        string `json:"step,omitempty"`
	// Cancel is a cancel under way; Approvals what the run waits for.
	Cancel    *cancelJSON      `json:"cancel,omitempty"`
	Approvals []approvalJSON   `json:"approvals,omitempty"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
	History   []transitionJSON `json:"history"`
}

type cancelJSON struct {
	RequestedAt time.Time  `json:"requestedAt"`
	RequestedBy string     `json:"requestedBy"`
	SentAt      *time.Time `json:"sentAt,omitempty"`
	ForcedAt    *time.Time `json:"forcedAt,omitempty"`
}

type approvalJSON struct {
	Kind        string    `json:"kind"`
	Environment string    `json:"environment"`
	Reviewers   []string  `json:"reviewers,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
}

type transitionJSON struct {
	From    status.Status `json:"from"`
	To      status.Status `json:"to"`
	Message string        `json:"message"`
	At      time.Time     `json:"at"`
	Source  string        `json:"source"`
	Actor   string        `json:"actor,omitempty"`
	Attempt int           `json:"attempt,omitempty"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func jobView(r sqlstore.Record) jobJSON {
	v := jobJSON{
		ID: strings.TrimPrefix(r.ID, r.Tenant+"."), GitHubJobID: r.ID, Status: r.Status, Message: r.Message, Kind: r.Kind, Owner: r.Owner, Repo: r.Repo,
		InstallationID: r.InstallationID, RunID: r.RunID, RunURL: r.RunURL, RunAttempt: r.RunAttempt,
		DeploymentID: r.DeploymentID, PullRequestNumber: r.PullRequestNumber, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		History: []transitionJSON{}, WorkflowJob: r.Progress.WorkflowJob, Step: r.Progress.Step,
	}
	if c := r.Control; c.Cancelling() {
		v.Cancel = &cancelJSON{RequestedAt: c.CancelRequestedAt, RequestedBy: c.CancelRequestedBy,
			SentAt: optionalTime(c.CancelSentAt), ForcedAt: optionalTime(c.ForceCancelSentAt)}
	}
	for _, a := range r.Control.Approvals {
		v.Approvals = append(v.Approvals, approvalJSON{Kind: a.Kind, Environment: a.Environment, Reviewers: a.Reviewers, RequestedAt: a.RequestedAt})
	}
	for _, t := range r.History {
		v.History = append(v.History, transitionJSON{From: t.From, To: t.To, Message: t.Message, At: t.At, Source: t.Source, Actor: t.Actor, Attempt: t.Attempt})
	}
	return v
}
