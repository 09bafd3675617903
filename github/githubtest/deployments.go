package githubtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deployment is a GitHub deployment in the fake. Hosts that create
// deployments assert on them (Deployments).
type Deployment struct {
	ID          int64
	Owner, Repo string
	Ref, SHA    string
	Task        string
	Environment string
	Description string
	Payload     json.RawMessage
	AutoMerge   bool
	// RequiredContexts is nil when the request left it out (GitHub then
	// checks every context).
	RequiredContexts []string
	Statuses         []DeploymentStatus
	RunIDs           []int64
	CreatedAt        time.Time
}

// DeploymentStatus is one status of a deployment. Hosts assert on the
// statuses their jobs report.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	LogURL         string
	EnvironmentURL string
	Environment    string
	AutoInactive   *bool
	CreatedAt      time.Time
}

// Deployments returns every deployment with its statuses, oldest first.
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Deployment{}
	for _, id := range slices.Sorted(maps.Keys(s.deployments)) {
		d := *s.deployments[id]
		d.Statuses = slices.Clone(d.Statuses)
		out = append(out, d)
	}
	return out
}

// deploymentStates are the states a deployment status may take.
var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// deploymentRoutes serves deployments and their statuses.
func (s *Server) deploymentRoutes(mux router) {
	s.handle(mux, "POST /repos/{owner}/{repo}/deployments", authToken, s.createDeployment)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/deployments", "deployments", "read", s.listDeployments)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/deployments/{deployment_id}", "deployments", "read", s.getDeployment)
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "deployments", "write", s.createDeploymentStatus)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", "deployments", "read", s.listDeploymentStatuses)
}

type createDeploymentRequest struct {
	Ref                   string          `json:"ref"`
	Task                  string          `json:"task"`
	AutoMerge             *bool           `json:"auto_merge"`
	RequiredContexts      *[]string       `json:"required_contexts"`
	Payload               json.RawMessage `json:"payload"`
	Environment           string          `json:"environment"`
	Description           string          `json:"description"`
	TransientEnvironment  bool            `json:"transient_environment"`
	ProductionEnvironment *bool           `json:"production_environment"`
}

func (b *createDeploymentRequest) validate() string {
	if b.Ref == "" {
		return "\"ref\" wasn't supplied."
	}
	return ""
}

// createDeployment records a deployment and starts the workflows that run
// on deployments; it answers after releasing s.mu.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, c caller) {
	var body createDeploymentRequest
	if !readBody(w, r, &body) {
		return
	}
	rp := s.lockRepo(w, r, c, "deployments", "write")
	if rp == nil {
		return
	}
	branch, sha, ok := rp.resolveRef(body.Ref)
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+body.Ref)
		return
	}
	d := &Deployment{
		ID: s.id(), Owner: rp.Owner, Repo: rp.Name, Ref: body.Ref, SHA: sha,
		Task: cmp.Or(body.Task, "deploy"), Environment: cmp.Or(body.Environment, "production"),
		Description: body.Description, Payload: body.Payload, AutoMerge: body.AutoMerge == nil || *body.AutoMerge,
		CreatedAt: s.now(),
	}
	if body.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *body.RequiredContexts...)
	}
	var payload map[string]any
	_ = json.Unmarshal(body.Payload, &payload)
	vars := flatten("github.event.deployment.payload", payload)
	for _, wf := range rp.workflows {
		if wf.OnDeployment {
			d.RunIDs = append(d.RunIDs, s.newRun(rp, wf, branch, "deployment", nil, vars, "").ID)
		}
	}
	s.deployments[d.ID] = d
	out := s.deploymentJSON(d)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	q := r.URL.Query()
	list := []any{}
	for _, id := range slices.Backward(slices.Sorted(maps.Keys(s.deployments))) {
		d := s.deployments[id]
		if !sameRepo(d.Owner, d.Repo, rp) ||
			(q.Get("environment") != "" && d.Environment != q.Get("environment")) ||
			(q.Get("ref") != "" && d.Ref != q.Get("ref")) ||
			(q.Get("sha") != "" && d.SHA != q.Get("sha")) ||
			(q.Get("task") != "" && d.Task != q.Get("task")) {
			continue
		}
		list = append(list, s.deploymentJSON(d))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	if d := s.findDeployment(w, r, rp); d != nil {
		writeJSON(w, http.StatusOK, s.deploymentJSON(d))
	}
}

type createDeploymentStatusRequest struct {
	State          string `json:"state"`
	Description    string `json:"description"`
	LogURL         string `json:"log_url"`
	TargetURL      string `json:"target_url"`
	EnvironmentURL string `json:"environment_url"`
	Environment    string `json:"environment"`
	AutoInactive   *bool  `json:"auto_inactive"`
}

func (b *createDeploymentStatusRequest) validate() string {
	if !slices.Contains(deploymentStates, b.State) {
		return fmt.Sprintf("For 'properties/state', %q is not one of %s.", b.State, strings.Join(deploymentStates, ", "))
	}
	if utf8.RuneCountInString(b.Description) > 140 {
		return "For 'properties/description', the description is longer than 140 characters."
	}
	return ""
}

func (s *Server) createDeploymentStatus(w http.ResponseWriter, r *http.Request, _ caller, rp *repo, body *createDeploymentStatusRequest) {
	d := s.findDeployment(w, r, rp)
	if d == nil {
		return
	}
	st := DeploymentStatus{
		ID: s.id(), State: body.State, Description: body.Description, LogURL: cmp.Or(body.LogURL, body.TargetURL),
		EnvironmentURL: body.EnvironmentURL, Environment: cmp.Or(body.Environment, d.Environment),
		AutoInactive: body.AutoInactive, CreatedAt: s.now(),
	}
	d.Statuses = append(d.Statuses, st)
	writeJSON(w, http.StatusCreated, s.deploymentStatusJSON(d, st))
}

func (s *Server) listDeploymentStatuses(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	d := s.findDeployment(w, r, rp)
	if d == nil {
		return
	}
	list := []any{}
	for _, st := range slices.Backward(d.Statuses) {
		list = append(list, s.deploymentStatusJSON(d, st))
	}
	writeJSON(w, http.StatusOK, list)
}

func sameRepo(owner, name string, rp *repo) bool {
	return strings.EqualFold(owner+"/"+name, rp.Owner+"/"+rp.Name)
}

// findDeployment finds the request's deployment in rp; it answers 404 and
// returns nil when there is none. s.mu is held.
func (s *Server) findDeployment(w http.ResponseWriter, r *http.Request, rp *repo) *Deployment {
	id, _ := strconv.ParseInt(r.PathValue("deployment_id"), 10, 64)
	d := s.deployments[id]
	if d == nil || !sameRepo(d.Owner, d.Repo, rp) {
		notFound(w)
		return nil
	}
	return d
}

func (s *Server) deploymentJSON(d *Deployment) map[string]any {
	full := d.Owner + "/" + d.Repo
	var payload any = map[string]any{}
	if len(d.Payload) > 0 {
		payload = d.Payload
	}
	return map[string]any{
		"id":                       d.ID,
		"node_id":                  nodeID("DE", d.ID),
		"url":                      s.apiURL("/repos/%s/deployments/%d", full, d.ID),
		"sha":                      d.SHA,
		"ref":                      d.Ref,
		"task":                     d.Task,
		"payload":                  payload,
		"environment":              d.Environment,
		"description":              d.Description,
		"creator":                  s.botJSON(),
		"performed_via_github_app": s.appJSON(),
		"transient_environment":    false,
		"production_environment":   false,
		"created_at":               d.CreatedAt.UTC().Format(time.RFC3339),
		"updated_at":               s.ts(),
		"statuses_url":             s.apiURL("/repos/%s/deployments/%d/statuses", full, d.ID),
		"repository_url":           s.apiURL("/repos/%s", full),
		"original_environment":     d.Environment,
	}
}

func (s *Server) deploymentStatusJSON(d *Deployment, st DeploymentStatus) map[string]any {
	full := d.Owner + "/" + d.Repo
	return map[string]any{
		"id":                       st.ID,
		"node_id":                  nodeID("DES", st.ID),
		"creator":                  s.botJSON(),
		"performed_via_github_app": s.appJSON(),
		"state":                    st.State,
		"description":              st.Description,
		"environment":              st.Environment,
		"log_url":                  st.LogURL,
		"target_url":               st.LogURL,
		"environment_url":          st.EnvironmentURL,
		"created_at":               st.CreatedAt.UTC().Format(time.RFC3339),
		"updated_at":               st.CreatedAt.UTC().Format(time.RFC3339),
		"deployment_url":           s.apiURL("/repos/%s/deployments/%d", full, d.ID),
		"repository_url":           s.apiURL("/repos/%s", full),
		"url":                      s.apiURL("/repos/%s/deployments/%d/statuses/%d", full, d.ID, st.ID),
	}
}
