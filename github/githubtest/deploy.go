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

// RepositoryDispatch records an accepted repository_dispatch.
type RepositoryDispatch struct {
	Owner, Repo   string
	EventType     string
	ClientPayload map[string]any
	// RunIDs are the runs it started (workflows listing the event type).
	RunIDs []int64
	At     time.Time
}

// RepositoryDispatches returns the accepted repository dispatches.
func (s *Server) RepositoryDispatches() []RepositoryDispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repoEvents)
}

// Deployment is a GitHub deployment in the fake.
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

// DeploymentStatus is one status of a deployment.
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

// CheckRun is a check run in the fake.
type CheckRun struct {
	ID          int64
	Owner, Repo string
	Name        string
	HeadSHA     string
	Status      string
	Conclusion  string
	ExternalID  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	StartedAt   time.Time
	CompletedAt time.Time
	// Updates counts PATCH requests applied.
	Updates int
}

// CheckRuns returns every check run, oldest first.
func (s *Server) CheckRuns() []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []CheckRun{}
	for _, id := range slices.Sorted(maps.Keys(s.checkRuns)) {
		out = append(out, *s.checkRuns[id])
	}
	return out
}

var (
	deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
	checkStatuses    = []string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)

// Limits GitHub puts on repository_dispatch.
const (
	maxEventTypeLen      = 100
	maxClientPayloadKeys = 10
)

func (s *Server) deploymentRoutes(mux *http.ServeMux) {
	s.handle(mux, "POST /repos/{owner}/{repo}/dispatches", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			EventType     string         `json:"event_type"`
			ClientPayload map[string]any `json:"client_payload"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		switch {
		case body.EventType == "":
			invalid(w, "\"event_type\" wasn't supplied.")
			return
		case utf8.RuneCountInString(body.EventType) > maxEventTypeLen:
			invalid(w, fmt.Sprintf("For 'properties/event_type', %q is too long (maximum is %d characters).", body.EventType, maxEventTypeLen))
			return
		case len(body.ClientPayload) > maxClientPayloadKeys:
			invalid(w, fmt.Sprintf("For 'properties/client_payload', the object has more than %d properties.", maxClientPayloadKeys))
			return
		case clientPayloadSize(body.ClientPayload) >= 64<<10:
			invalid(w, "client_payload is too large; it must be less than 64KB.")
			return
		}
		s.mu.Lock()
		rp := s.requireRepo(w, r, c, "contents", "write")
		if rp == nil {
			s.mu.Unlock()
			return
		}
		rec := RepositoryDispatch{Owner: rp.Owner, Repo: rp.Name, EventType: body.EventType, ClientPayload: body.ClientPayload, At: s.now()}
		vars := flatten("github.event.client_payload", body.ClientPayload)
		for _, wf := range rp.workflows {
			if slices.Contains(wf.RepositoryDispatchTypes, body.EventType) {
				rn := s.newRun(rp, wf, rp.DefaultBranch, "repository_dispatch", nil, vars, "")
				rec.RunIDs = append(rec.RunIDs, rn.ID)
			}
		}
		s.repoEvents = append(s.repoEvents, rec)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})

	s.handle(mux, "POST /repos/{owner}/{repo}/deployments", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
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
		if !readJSON(w, r, &body) {
			return
		}
		if body.Ref == "" {
			invalid(w, "\"ref\" wasn't supplied.")
			return
		}
		s.mu.Lock()
		rp := s.requireRepo(w, r, c, "deployments", "write")
		if rp == nil {
			s.mu.Unlock()
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
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/deployments", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "deployments", "read")
		if rp == nil {
			return
		}
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
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/deployments/{deployment_id}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if d := s.requireDeployment(w, r, c, "read"); d != nil {
			writeJSON(w, http.StatusOK, s.deploymentJSON(d))
		}
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			State          string `json:"state"`
			Description    string `json:"description"`
			LogURL         string `json:"log_url"`
			TargetURL      string `json:"target_url"`
			EnvironmentURL string `json:"environment_url"`
			Environment    string `json:"environment"`
			AutoInactive   *bool  `json:"auto_inactive"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if !slices.Contains(deploymentStates, body.State) {
			invalid(w, fmt.Sprintf("For 'properties/state', %q is not one of %s.", body.State, strings.Join(deploymentStates, ", ")))
			return
		}
		if utf8.RuneCountInString(body.Description) > 140 {
			invalid(w, "For 'properties/description', the description is longer than 140 characters.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.requireDeployment(w, r, c, "write")
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
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.requireDeployment(w, r, c, "read")
		if d == nil {
			return
		}
		list := []any{}
		for _, st := range slices.Backward(d.Statuses) {
			list = append(list, s.deploymentStatusJSON(d, st))
		}
		writeJSON(w, http.StatusOK, list)
	})
}

func sameRepo(owner, name string, rp *repo) bool {
	return strings.EqualFold(owner+"/"+name, rp.Owner+"/"+rp.Name)
}

func (s *Server) requireDeployment(w http.ResponseWriter, r *http.Request, c caller, level string) *Deployment {
	rp := s.requireRepo(w, r, c, "deployments", level)
	if rp == nil {
		return nil
	}
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

type checkRunBody struct {
	Name        *string `json:"name"`
	HeadSHA     *string `json:"head_sha"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	ExternalID  *string `json:"external_id"`
	DetailsURL  *string `json:"details_url"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title   string `json:"title"`
		Summary string `json:"summary"`
		Text    string `json:"text"`
	} `json:"output"`
}

// apply validates body and applies it to cr; it returns GitHub's message
// for an invalid body.
func (b checkRunBody) apply(cr *CheckRun, now time.Time) string {
	if b.Status != nil {
		if !slices.Contains(checkStatuses, *b.Status) {
			return fmt.Sprintf("For 'properties/status', %q is not one of %s.", *b.Status, strings.Join(checkStatuses, ", "))
		}
		cr.Status = *b.Status
	}
	if b.Conclusion != nil {
		if !slices.Contains(checkConclusions, *b.Conclusion) {
			return fmt.Sprintf("For 'properties/conclusion', %q is not one of %s.", *b.Conclusion, strings.Join(checkConclusions, ", "))
		}
		// GitHub: providing a conclusion sets the status to completed.
		cr.Conclusion, cr.Status = *b.Conclusion, "completed"
	}
	if cr.Status == "completed" && cr.Conclusion == "" {
		return "Conclusion is required when status is completed."
	}
	if b.Output != nil {
		if b.Output.Summary == "" || b.Output.Title == "" {
			return "For 'properties/output', title and summary are required."
		}
		if len(b.Output.Title) > 65535 || len(b.Output.Summary) > 65535 || len(b.Output.Text) > 65535 || !utf8.ValidString(b.Output.Summary+b.Output.Title+b.Output.Text) {
			return "For 'properties/output', title, summary and text are limited to 65535 bytes of UTF-8."
		}
		cr.Title, cr.Summary, cr.Text = b.Output.Title, b.Output.Summary, b.Output.Text
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&cr.ExternalID, b.ExternalID)
	set(&cr.DetailsURL, b.DetailsURL)
	if cr.Status == "in_progress" && cr.StartedAt.IsZero() {
		cr.StartedAt = now
	}
	if cr.Status == "completed" && cr.CompletedAt.IsZero() {
		cr.CompletedAt = now
	}
	return ""
}

func (s *Server) checkRoutes(mux *http.ServeMux) {
	s.handle(mux, "POST /repos/{owner}/{repo}/check-runs", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body checkRunBody
		if !readJSON(w, r, &body) {
			return
		}
		if body.Name == nil || *body.Name == "" || body.HeadSHA == nil || *body.HeadSHA == "" {
			invalid(w, "\"name\" and \"head_sha\" are required.")
			return
		}
		if c.static {
			writeError(w, http.StatusForbidden, "You must authenticate via a GitHub App.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "checks", "write")
		if rp == nil {
			return
		}
		cr := &CheckRun{ID: s.id(), Owner: rp.Owner, Repo: rp.Name, Name: *body.Name, HeadSHA: *body.HeadSHA, Status: "queued"}
		if msg := body.apply(cr, s.now()); msg != "" {
			invalid(w, msg)
			return
		}
		s.checkRuns[cr.ID] = cr
		writeJSON(w, http.StatusCreated, s.checkRunJSON(cr))
	})
	s.handle(mux, "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body checkRunBody
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		cr := s.requireCheckRun(w, r, c, "write")
		if cr == nil {
			return
		}
		next := *cr
		if body.Name != nil {
			next.Name = *body.Name
		}
		if msg := body.apply(&next, s.now()); msg != "" {
			invalid(w, msg)
			return
		}
		next.Updates++
		*cr = next
		writeJSON(w, http.StatusOK, s.checkRunJSON(cr))
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/check-runs/{check_run_id}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cr := s.requireCheckRun(w, r, c, "read"); cr != nil {
			writeJSON(w, http.StatusOK, s.checkRunJSON(cr))
		}
	})
}

func (s *Server) requireCheckRun(w http.ResponseWriter, r *http.Request, c caller, level string) *CheckRun {
	rp := s.requireRepo(w, r, c, "checks", level)
	if rp == nil {
		return nil
	}
	id, _ := strconv.ParseInt(r.PathValue("check_run_id"), 10, 64)
	cr := s.checkRuns[id]
	if cr == nil || !sameRepo(cr.Owner, cr.Repo, rp) {
		notFound(w)
		return nil
	}
	return cr
}

func (s *Server) checkRunJSON(cr *CheckRun) map[string]any {
	full := cr.Owner + "/" + cr.Repo
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	var conclusion any
	if cr.Conclusion != "" {
		conclusion = cr.Conclusion
	}
	return map[string]any{
		"id":           cr.ID,
		"name":         cr.Name,
		"head_sha":     cr.HeadSHA,
		"status":       cr.Status,
		"conclusion":   conclusion,
		"external_id":  cr.ExternalID,
		"details_url":  cr.DetailsURL,
		"started_at":   ts(cr.StartedAt),
		"completed_at": ts(cr.CompletedAt),
		"node_id":      nodeID("CR", cr.ID),
		"output": map[string]any{"title": cr.Title, "summary": cr.Summary, "text": cr.Text, "annotations_count": 0,
			"annotations_url": s.apiURL("/repos/%s/check-runs/%d/annotations", full, cr.ID)},
		"url":           s.apiURL("/repos/%s/check-runs/%d", full, cr.ID),
		"html_url":      s.webURL(fmt.Sprintf("%s/runs/%d", full, cr.ID)),
		"app":           s.appJSON(),
		"check_suite":   map[string]any{"id": cr.ID + 1},
		"pull_requests": []any{},
	}
}

// flatten turns a JSON object into "prefix.key" -> text entries for
// run-name substitution; nested objects use dotted paths.
func flatten(prefix string, m map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				walk(p+"."+k, vv)
			}
		case string:
			out[p] = x
		case nil:
			out[p] = ""
		default:
			b, _ := json.Marshal(x)
			out[p] = string(b)
		}
	}
	for k, v := range m {
		walk(prefix+"."+k, v)
	}
	return out
}

func clientPayloadSize(p map[string]any) int {
	b, _ := json.Marshal(p)
	return len(b)
}
