package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Repo is a repository in the fake.
type Repo struct {
	Owner, Name string
	// DefaultBranch defaults to "main".
	DefaultBranch string
	// Branches exist besides DefaultBranch.
	Branches  []string
	Workflows []Workflow
	Private   bool
}

// Workflow is a workflow file of a repository.
type Workflow struct {
	// ID is assigned when zero.
	ID int64
	// Name is the workflow's name: key; defaults to the file name.
	Name string
	// Path defaults to ".github/workflows/<Name>.yml".
	Path string
	// NoDispatch leaves out the workflow_dispatch trigger.
	NoDispatch bool
	// Disabled marks the workflow disabled_manually.
	Disabled bool
	// Inputs declares the workflow_dispatch inputs. Nil accepts any
	// input; otherwise an undeclared input is rejected like on GitHub.
	Inputs []string
	// RequiredInputs must be supplied.
	RequiredInputs []string
	// RunName is the run-name: template. Expressions naming the event
	// are substituted: "${{ inputs.NAME }}",
	// "${{ github.event.client_payload.NAME }}",
	// "${{ github.event.deployment.payload.NAME }}". Empty means the
	// run's display title is Name.
	RunName string
	// RepositoryDispatchTypes are the repository_dispatch event types
	// that start this workflow.
	RepositoryDispatchTypes []string
	// OnDeployment starts this workflow for every deployment created.
	OnDeployment bool
}

type repo struct {
	Repo
	id        int64
	branches  map[string]string // name -> head sha
	workflows []*Workflow
	files     map[string]map[string]string // branch -> path -> content
	createdAt time.Time
}

// AddRepo adds (or replaces) a repository and returns it with defaults
// and workflow ids filled in.
func (s *Server) AddRepo(r Repo) Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	rp := &repo{Repo: r, id: s.id(), branches: map[string]string{}, files: map[string]map[string]string{}, createdAt: s.now()}
	for _, b := range append([]string{r.DefaultBranch}, r.Branches...) {
		rp.branches[b] = fakeSHA(r.Owner + "/" + r.Name + "@" + b)
		rp.files[b] = map[string]string{}
	}
	r.Workflows = slices.Clone(r.Workflows)
	for i := range r.Workflows {
		wf := &r.Workflows[i]
		if wf.ID == 0 {
			wf.ID = s.id()
		}
		if wf.Name == "" {
			wf.Name = strings.TrimSuffix(strings.TrimSuffix(path.Base(wf.Path), ".yml"), ".yaml")
		}
		if wf.Path == "" {
			wf.Path = ".github/workflows/" + wf.Name + ".yml"
		}
		c := *wf
		rp.workflows = append(rp.workflows, &c)
	}
	rp.Repo = r
	s.repos[strings.ToLower(r.Owner+"/"+r.Name)] = rp
	return r
}

// AddBranch creates a branch in a repository.
func (s *Server) AddBranch(owner, name, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp := s.repos[strings.ToLower(owner+"/"+name)]; rp != nil {
		rp.branches[branch] = fakeSHA(owner + "/" + name + "@" + branch)
		rp.files[branch] = map[string]string{}
	}
}

func fakeSHA(seed string) string {
	sum := sha1.Sum([]byte(seed))
	return hex.EncodeToString(sum[:])
}

func (rp *repo) workflow(idOrFile string) *Workflow {
	for _, wf := range rp.workflows {
		if strconv.FormatInt(wf.ID, 10) == idOrFile || path.Base(wf.Path) == idOrFile {
			return wf
		}
	}
	return nil
}

// resolveRef maps a ref as GitHub accepts it in a dispatch (branch name,
// refs/heads/NAME) to a branch and its head.
func (rp *repo) resolveRef(ref string) (branch, sha string, ok bool) {
	b := strings.TrimPrefix(ref, "refs/heads/")
	sha, ok = rp.branches[b]
	return b, sha, ok
}

func (s *Server) repoJSON(rp *repo) map[string]any {
	full := rp.Owner + "/" + rp.Name
	return s.fullRepoJSON(map[string]any{
		"id":             rp.id,
		"node_id":        nodeID("R", rp.id),
		"name":           rp.Name,
		"full_name":      full,
		"private":        rp.Private,
		"owner":          s.accountJSON(rp.Owner, ""),
		"html_url":       s.webURL(full),
		"url":            s.apiURL("/repos/%s", full),
		"default_branch": rp.DefaultBranch,
		"created_at":     rp.createdAt.UTC().Format(time.RFC3339),
	}, rp)
}

func (s *Server) workflowJSON(rp *repo, wf *Workflow) map[string]any {
	state := "active"
	if wf.Disabled {
		state = "disabled_manually"
	}
	full := rp.Owner + "/" + rp.Name
	return map[string]any{
		"id":         wf.ID,
		"node_id":    "W_" + strconv.FormatInt(wf.ID, 10),
		"name":       wf.Name,
		"path":       wf.Path,
		"state":      state,
		"url":        s.apiURL("/repos/%s/actions/workflows/%d", full, wf.ID),
		"html_url":   s.webURL(full + "/blob/" + rp.DefaultBranch + "/" + wf.Path),
		"badge_url":  s.webURL(full + "/workflows/" + pathBase(wf.Path) + "/badge.svg"),
		"created_at": rp.createdAt.UTC().Format(time.RFC3339),
		"updated_at": rp.createdAt.UTC().Format(time.RFC3339),
	}
}

func (s *Server) repoRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /repos/{owner}/{repo}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if rp := s.requireRepo(w, r, c, "metadata", "read"); rp != nil {
			writeJSON(w, http.StatusOK, s.repoJSON(rp))
		}
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/branches/{branch}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "read")
		if rp == nil {
			return
		}
		sha, ok := rp.branches[r.PathValue("branch")]
		if !ok {
			writeError(w, http.StatusNotFound, "Branch not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("branch"), "commit": map[string]any{"sha": sha}})
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/git/ref/{ref...}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "read")
		if rp == nil {
			return
		}
		ref := r.PathValue("ref")
		b, ok := strings.CutPrefix(ref, "heads/")
		sha, exists := rp.branches[b]
		if !ok || !exists {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, s.refJSON(rp, "refs/"+ref, sha))
	})
}

// ---- Actions ----

// Run is a workflow run in the fake.
type Run struct {
	ID           int64
	WorkflowID   int64
	Owner, Repo  string
	WorkflowName string
	WorkflowPath string
	DisplayTitle string
	HeadBranch   string
	HeadSHA      string
	Event        string
	Status       string
	Conclusion   string
	RunNumber    int
	RunAttempt   int
	// RerunFailedOnly reports that the last re-run asked for the failed
	// jobs only.
	RerunFailedOnly bool
	Inputs          map[string]string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	RunStartedAt    time.Time
}

type run struct {
	Run
	visibleAt time.Time
}

// WorkflowDispatch records a workflow_dispatch the fake accepted.
type WorkflowDispatch struct {
	Owner, Repo      string
	WorkflowID       int64
	Ref              string
	Inputs           map[string]string
	ReturnRunDetails bool
	RunID            int64
	At               time.Time
}

// Dispatches returns the accepted workflow dispatches, oldest first.
func (s *Server) Dispatches() []WorkflowDispatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.dispatches)
	for i := range out {
		out[i].Inputs = maps.Clone(out[i].Inputs)
	}
	return out
}

// Runs returns every run, oldest first, visible or not.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.runs))
	for _, id := range slices.Sorted(maps.Keys(s.runs)) {
		out = append(out, s.runs[id].Run)
	}
	return out
}

// GetRun returns a run by id.
func (s *Server) GetRun(id int64) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.runs[id]
	if rn == nil {
		return Run{}, false
	}
	return rn.Run, true
}

// CreateRun adds a run that was not created by a dispatch (a push, a
// schedule), with status "queued". Owner, Repo and WorkflowID must name a
// known workflow; Event defaults to "push".
func (s *Server) CreateRun(rn Run) (Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[strings.ToLower(rn.Owner+"/"+rn.Repo)]
	if rp == nil {
		return Run{}, fmt.Errorf("no repository %s/%s", rn.Owner, rn.Repo)
	}
	wf := rp.workflow(strconv.FormatInt(rn.WorkflowID, 10))
	if wf == nil {
		return Run{}, fmt.Errorf("no workflow %d in %s/%s", rn.WorkflowID, rn.Owner, rn.Repo)
	}
	if rn.Event == "" {
		rn.Event = "push"
	}
	if rn.HeadBranch == "" {
		rn.HeadBranch = rp.DefaultBranch
	}
	return s.newRun(rp, wf, rn.HeadBranch, rn.Event, rn.Inputs, nil, rn.DisplayTitle).Run, nil
}

var runNameExpr = regexp.MustCompile(`\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}`)

// newRun creates a queued run; s.mu must be held. vars holds the values
// of run-name expressions besides the inputs.
func (s *Server) newRun(rp *repo, wf *Workflow, branch, event string, inputs, vars map[string]string, title string) *run {
	now := s.now()
	if title == "" {
		title = wf.Name
		if wf.RunName != "" {
			title = runNameExpr.ReplaceAllStringFunc(wf.RunName, func(m string) string {
				expr := runNameExpr.FindStringSubmatch(m)[1]
				if name, ok := strings.CutPrefix(expr, "inputs."); ok {
					return inputs[name]
				}
				if name, ok := strings.CutPrefix(expr, "github.event.inputs."); ok {
					return inputs[name]
				}
				return vars[expr]
			})
		}
	}
	number := 1
	for _, other := range s.runs {
		if other.WorkflowID == wf.ID {
			number++
		}
	}
	rn := &run{Run: Run{
		ID: s.id() * 1000, WorkflowID: wf.ID, Owner: rp.Owner, Repo: rp.Name,
		WorkflowName: wf.Name, WorkflowPath: wf.Path, DisplayTitle: title,
		HeadBranch: branch, HeadSHA: rp.branches[branch], Event: event,
		Status: "queued", RunNumber: number, RunAttempt: 1, Inputs: maps.Clone(inputs),
		CreatedAt: now, UpdatedAt: now, RunStartedAt: now,
	}, visibleAt: now.Add(s.runDelay)}
	s.runs[rn.ID] = rn
	return rn
}

// Statuses and conclusions a run may take.
var (
	runStatuses    = []string{"requested", "queued", "pending", "waiting", "in_progress", "completed"}
	runConclusions = []string{"success", "failure", "neutral", "cancelled", "timed_out", "action_required", "stale", "skipped", "startup_failure"}
)

// SetRunStatus moves a run to status (and conclusion, for "completed"),
// bumps its updated_at, and sends a workflow_run delivery (action
// "requested", "in_progress" or "completed") when a webhook is set. It
// returns the run and the delivery's outcome.
func (s *Server) SetRunStatus(id int64, status, conclusion string) (Run, error) {
	if !slices.Contains(runStatuses, status) {
		return Run{}, fmt.Errorf("unknown run status %q", status)
	}
	if (status == "completed") != (conclusion != "") {
		return Run{}, fmt.Errorf("a conclusion goes with status completed, and only with it (got %q/%q)", status, conclusion)
	}
	if conclusion != "" && !slices.Contains(runConclusions, conclusion) {
		return Run{}, fmt.Errorf("unknown run conclusion %q", conclusion)
	}
	s.mu.Lock()
	rn := s.runs[id]
	if rn == nil {
		s.mu.Unlock()
		return Run{}, fmt.Errorf("no run %d", id)
	}
	rn.Status, rn.Conclusion = status, conclusion
	rn.UpdatedAt = laterThan(s.now(), rn.UpdatedAt)
	out := rn.Run
	s.mu.Unlock()
	action := status
	switch status {
	case "requested", "queued", "pending", "waiting":
		action = "requested"
	}
	_, err := s.deliverRunEvent(out, action)
	return out, err
}

// laterThan returns now, or just after prev when the clock has not moved,
// so that successive updates have increasing updated_at.
func laterThan(now, prev time.Time) time.Time {
	if !now.After(prev) {
		return prev.Add(time.Second)
	}
	return now
}

// RerunRun starts a new attempt of a finished run: run_attempt grows by
// one and the run is queued again, as when "Re-run jobs" is clicked.
func (s *Server) RerunRun(id int64) (Run, error) {
	s.mu.Lock()
	rn := s.runs[id]
	if rn == nil {
		s.mu.Unlock()
		return Run{}, fmt.Errorf("no run %d", id)
	}
	rn.RunAttempt++
	rn.Status, rn.Conclusion = "queued", ""
	rn.UpdatedAt = laterThan(s.now(), rn.UpdatedAt)
	rn.RunStartedAt = rn.UpdatedAt
	out := rn.Run
	s.mu.Unlock()
	_, err := s.deliverRunEvent(out, "requested")
	return out, err
}

func (s *Server) runJSON(rn *run) map[string]any {
	full := rn.Owner + "/" + rn.Repo
	var conclusion any
	if rn.Conclusion != "" {
		conclusion = rn.Conclusion
	}
	m := map[string]any{
		"id":              rn.ID,
		"name":            rn.WorkflowName,
		"node_id":         nodeID("WFR", rn.ID),
		"head_branch":     rn.HeadBranch,
		"head_sha":        rn.HeadSHA,
		"path":            rn.WorkflowPath,
		"display_title":   rn.DisplayTitle,
		"run_number":      rn.RunNumber,
		"run_attempt":     rn.RunAttempt,
		"event":           rn.Event,
		"status":          rn.Status,
		"conclusion":      conclusion,
		"workflow_id":     rn.WorkflowID,
		"url":             s.apiURL("/repos/%s/actions/runs/%d", full, rn.ID),
		"html_url":        s.webURL(fmt.Sprintf("%s/actions/runs/%d", full, rn.ID)),
		"workflow_url":    s.apiURL("/repos/%s/actions/workflows/%d", full, rn.WorkflowID),
		"created_at":      rn.CreatedAt.UTC().Format(time.RFC3339),
		"updated_at":      rn.UpdatedAt.UTC().Format(time.RFC3339),
		"run_started_at":  rn.RunStartedAt.UTC().Format(time.RFC3339),
		"pull_requests":   []any{},
		"head_commit":     nil,
		"run_attempt_url": s.apiURL("/repos/%s/actions/runs/%d/attempts/%d", full, rn.ID, rn.RunAttempt),
		"jobs_url":        s.apiURL("/repos/%s/actions/runs/%d/jobs", full, rn.ID),
		"logs_url":        s.apiURL("/repos/%s/actions/runs/%d/logs", full, rn.ID),
		"check_suite_url": s.apiURL("/repos/%s/check-suites/%d", full, rn.ID+1),
		"artifacts_url":   s.apiURL("/repos/%s/actions/runs/%d/artifacts", full, rn.ID),
		"cancel_url":      s.apiURL("/repos/%s/actions/runs/%d/cancel", full, rn.ID),
		"rerun_url":       s.apiURL("/repos/%s/actions/runs/%d/rerun", full, rn.ID),
	}
	if rp := s.repos[strings.ToLower(full)]; rp != nil {
		m["repository"] = s.repoJSON(rp)
		m["head_repository"] = s.repoJSON(rp)
	}
	return m
}

type dispatchBody struct {
	Ref              string                     `json:"ref"`
	Inputs           map[string]json.RawMessage `json:"inputs"`
	ReturnRunDetails bool                       `json:"return_run_details"`
}

// maxDispatchInputs is GitHub's limit on workflow_dispatch inputs.
const maxDispatchInputs = 25

func invalid(w http.ResponseWriter, detail string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+detail)
}

func (s *Server) actionsRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /repos/{owner}/{repo}/actions/workflows", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "actions", "read")
		if rp == nil {
			return
		}
		list := []any{}
		for _, wf := range rp.workflows {
			list = append(list, s.workflowJSON(rp, wf))
		}
		writeJSON(w, http.StatusOK, map[string]any{"total_count": len(list), "workflows": list})
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "actions", "read")
		if rp == nil {
			return
		}
		wf := rp.workflow(r.PathValue("workflow_id"))
		if wf == nil {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, s.workflowJSON(rp, wf))
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", authToken, s.dispatchWorkflow)
	s.handle(mux, "GET /repos/{owner}/{repo}/actions/runs", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.listRuns(w, r, c, 0)
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		rp := s.requireRepo(w, r, c, "actions", "read")
		var wf *Workflow
		if rp != nil {
			if wf = rp.workflow(r.PathValue("workflow_id")); wf == nil {
				notFound(w)
			}
		}
		s.mu.Unlock()
		if wf != nil {
			s.listRuns(w, r, c, wf.ID)
		}
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/actions/runs/{run_id}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "actions", "read")
		if rp == nil {
			return
		}
		id, _ := strconv.ParseInt(r.PathValue("run_id"), 10, 64)
		rn := s.runs[id]
		if rn == nil || !strings.EqualFold(rn.Owner+"/"+rn.Repo, rp.Owner+"/"+rp.Name) || s.now().Before(rn.visibleAt) {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, s.runJSON(rn))
	})
}

func (s *Server) dispatchWorkflow(w http.ResponseWriter, r *http.Request, c caller) {
	var raw map[string]json.RawMessage
	if !readJSON(w, r, &raw) {
		return
	}
	// API version 2026-03-10 always answers the run and knows no
	// return_run_details.
	alwaysDetails := r.Header.Get("X-GitHub-Api-Version") >= APIVersion20260310
	for k := range raw {
		switch {
		case k == "return_run_details" && alwaysDetails:
			invalid(w, "\"return_run_details\" is not a permitted key.")
			return
		case k == "return_run_details" && !s.runDetails:
			writeError(w, s.runDetailsErr, "Invalid request.\n\n\"return_run_details\" is not a permitted key.")
			return
		case k != "ref" && k != "inputs" && k != "return_run_details":
			invalid(w, fmt.Sprintf("%q is not a permitted key.", k))
			return
		}
	}
	var body dispatchBody
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &body); err != nil {
		invalid(w, "For 'properties', the request body does not match the schema: "+err.Error())
		return
	}
	if body.Ref == "" {
		invalid(w, "\"ref\" wasn't supplied.")
		return
	}
	if len(body.Inputs) > maxDispatchInputs {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("you may only define up to %d `inputs` for a `workflow_dispatch` event", maxDispatchInputs))
		return
	}
	inputs := make(map[string]string, len(body.Inputs))
	for k, v := range body.Inputs {
		// Inputs of type boolean and number may be sent as JSON
		// booleans and numbers; workflows see them as text.
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			invalid(w, fmt.Sprintf("For 'properties/%s', %s is not valid JSON.", k, v))
			return
		}
		switch val := val.(type) {
		case string:
			inputs[k] = val
		case bool, float64:
			inputs[k] = string(v)
		case nil:
			inputs[k] = ""
		default:
			invalid(w, fmt.Sprintf("For 'properties/%s', %s is not a string, number or boolean.", k, v))
			return
		}
	}

	s.mu.Lock()
	rp := s.requireRepo(w, r, c, "actions", "write")
	if rp == nil {
		s.mu.Unlock()
		return
	}
	wf := rp.workflow(r.PathValue("workflow_id"))
	if wf == nil {
		s.mu.Unlock()
		notFound(w)
		return
	}
	fail := func(msg string) {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, msg)
	}
	switch {
	case wf.NoDispatch:
		fail("Workflow does not have 'workflow_dispatch' trigger")
		return
	case wf.Disabled:
		fail("Cannot trigger a 'workflow_dispatch' on a disabled workflow")
		return
	}
	branch, _, ok := rp.resolveRef(body.Ref)
	if !ok {
		fail("No ref found for: " + body.Ref)
		return
	}
	if wf.Inputs != nil {
		var unexpected []string
		for k := range inputs {
			if !slices.Contains(wf.Inputs, k) {
				unexpected = append(unexpected, k)
			}
		}
		if len(unexpected) > 0 {
			slices.Sort(unexpected)
			list, _ := json.Marshal(unexpected)
			fail("Unexpected inputs provided: " + string(list))
			return
		}
	}
	for _, req := range wf.RequiredInputs {
		if inputs[req] == "" {
			fail(fmt.Sprintf("Required input '%s' not provided", req))
			return
		}
	}
	rn := s.newRun(rp, wf, branch, "workflow_dispatch", inputs, nil, "")
	s.dispatches = append(s.dispatches, WorkflowDispatch{
		Owner: rp.Owner, Repo: rp.Name, WorkflowID: wf.ID, Ref: body.Ref, Inputs: inputs,
		ReturnRunDetails: body.ReturnRunDetails, RunID: rn.ID, At: s.now(),
	})
	full := rp.Owner + "/" + rp.Name
	details := map[string]any{
		"workflow_run_id": rn.ID,
		"run_url":         s.apiURL("/repos/%s/actions/runs/%d", full, rn.ID),
		"html_url":        s.webURL(fmt.Sprintf("%s/actions/runs/%d", full, rn.ID)),
	}
	s.mu.Unlock()
	if body.ReturnRunDetails || alwaysDetails {
		writeJSON(w, http.StatusOK, details)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, c caller, workflowID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.requireRepo(w, r, c, "actions", "read")
	if rp == nil {
		return
	}
	q := r.URL.Query()
	from, to, err := parseCreated(q.Get("created"))
	if err != nil {
		invalid(w, "created: "+err.Error())
		return
	}
	now := s.now()
	var match []*run
	for _, rn := range s.runs {
		switch {
		case !strings.EqualFold(rn.Owner+"/"+rn.Repo, rp.Owner+"/"+rp.Name), now.Before(rn.visibleAt),
			workflowID != 0 && rn.WorkflowID != workflowID,
			q.Get("event") != "" && rn.Event != q.Get("event"),
			q.Get("branch") != "" && rn.HeadBranch != q.Get("branch"),
			q.Get("head_sha") != "" && rn.HeadSHA != q.Get("head_sha"),
			q.Get("status") != "" && rn.Status != q.Get("status") && rn.Conclusion != q.Get("status"),
			!from.IsZero() && rn.CreatedAt.Before(from),
			!to.IsZero() && rn.CreatedAt.After(to):
			continue
		}
		match = append(match, rn)
	}
	// Newest first, as on GitHub.
	slices.SortFunc(match, func(a, b *run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	})
	page, perPage := paging(q)
	listed := match
	if q.Get("created") != "" || q.Get("event") != "" || q.Get("branch") != "" || q.Get("status") != "" || q.Get("head_sha") != "" {
		listed = match[:min(len(match), maxFilteredRuns)] // as GitHub does
	}
	start := min((page-1)*perPage, len(listed))
	end := min(start+perPage, len(listed))
	list := []any{}
	for _, rn := range listed[start:end] {
		list = append(list, s.runJSON(rn))
	}
	if end < len(listed) {
		next := *r.URL
		qq := next.Query()
		qq.Set("page", strconv.Itoa(page+1))
		qq.Set("per_page", strconv.Itoa(perPage))
		next.RawQuery = qq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, strings.TrimSuffix(s.srv.URL, "/")+APIPrefix+next.Path+"?"+next.RawQuery))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(match), "workflow_runs": list})
}

// maxFilteredRuns is how many runs GitHub lists for a query filtered by
// created, event, branch, status or head_sha; total_count still counts
// them all.
const maxFilteredRuns = 1000

func paging(q map[string][]string) (page, perPage int) {
	get := func(k string, def int) int {
		if v, ok := q[k]; ok && len(v) > 0 {
			if n, err := strconv.Atoi(v[0]); err == nil && n > 0 {
				return n
			}
		}
		return def
	}
	return get("page", 1), min(get("per_page", 30), 100)
}

// parseCreated understands the created filter forms ghbridge uses:
// ">=T", ">T", "<=T", "<T", "T1..T2" and "T", with RFC 3339 times or dates.
func parseCreated(v string) (from, to time.Time, err error) {
	if v == "" {
		return
	}
	parse := func(s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		return time.Parse("2006-01-02", s)
	}
	switch {
	case strings.Contains(v, ".."):
		a, b, _ := strings.Cut(v, "..")
		if from, err = parse(a); err == nil {
			to, err = parse(b)
		}
	case strings.HasPrefix(v, ">="):
		from, err = parse(v[2:])
	case strings.HasPrefix(v, ">"):
		from, err = parse(v[1:])
		from = from.Add(time.Nanosecond)
	case strings.HasPrefix(v, "<="):
		to, err = parse(v[2:])
	case strings.HasPrefix(v, "<"):
		to, err = parse(v[1:])
		to = to.Add(-time.Nanosecond)
	default:
		from, err = parse(v)
		to = from.Add(24*time.Hour - time.Nanosecond)
	}
	return
}

// Workflows returns the workflows of a repository, with their ids.
func (s *Server) Workflows(owner, name string) []Workflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[strings.ToLower(owner+"/"+name)]
	if rp == nil {
		return nil
	}
	out := make([]Workflow, len(rp.workflows))
	for i, wf := range rp.workflows {
		out[i] = *wf
	}
	return out
}

// WorkflowYAML renders the workflow file the fake serves for wf: its
// name, run-name and triggers, as a user would write them.
func WorkflowYAML(wf Workflow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", wf.Name)
	if wf.RunName != "" {
		fmt.Fprintf(&b, "run-name: %s\n", wf.RunName)
	}
	b.WriteString("on:\n")
	if wf.NoDispatch {
		b.WriteString("  push:\n    branches: [main]\n")
	} else {
		b.WriteString("  workflow_dispatch:\n")
		inputs := wf.Inputs
		if inputs == nil {
			inputs = []string{"job_id"}
		}
		if len(inputs) > 0 {
			b.WriteString("    inputs:\n")
			for _, in := range inputs {
				fmt.Fprintf(&b, "      %s:\n        required: %v\n        type: string\n", in, slices.Contains(wf.RequiredInputs, in))
			}
		}
	}
	if len(wf.RepositoryDispatchTypes) > 0 {
		fmt.Fprintf(&b, "  repository_dispatch:\n    types: [%s]\n", strings.Join(wf.RepositoryDispatchTypes, ", "))
	}
	if wf.OnDeployment {
		b.WriteString("  deployment:\n")
	}
	b.WriteString("jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo deploying\n")
	return b.String()
}
