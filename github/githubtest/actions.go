package githubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GitHub Actions: workflow runs, their states and the workflow and run
// routes.

// Run is a workflow run in the fake. Hosts get it from Runs or GetRun to
// find the run a job started, and move it with SetRunStatus.
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

// runJSON is a workflow run as GitHub sends it; repoJSON is its
// repository's minimalRepoJSON, or nil to encode it here. A struct, not a
// map: pages of runs encode several times faster.
func (s *Server) runJSON(rn *run, repoJSON json.RawMessage) *runObject {
	full := rn.Owner + "/" + rn.Repo
	runURL := s.apiURL("/repos/%s/actions/runs/%d", full, rn.ID)
	o := &runObject{
		ID: rn.ID, Name: rn.WorkflowName, NodeID: nodeID("WFR", rn.ID),
		HeadBranch: rn.HeadBranch, HeadSHA: rn.HeadSHA, Path: rn.WorkflowPath, DisplayTitle: rn.DisplayTitle,
		RunNumber: rn.RunNumber, RunAttempt: rn.RunAttempt, Event: rn.Event, Status: rn.Status,
		WorkflowID:    rn.WorkflowID,
		URL:           runURL,
		HTMLURL:       s.webURL(fmt.Sprintf("%s/actions/runs/%d", full, rn.ID)),
		WorkflowURL:   s.apiURL("/repos/%s/actions/workflows/%d", full, rn.WorkflowID),
		CreatedAt:     rn.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:     rn.UpdatedAt.UTC().Format(time.RFC3339),
		RunStartedAt:  rn.RunStartedAt.UTC().Format(time.RFC3339),
		PullRequests:  []any{},
		RunAttemptURL: fmt.Sprintf("%s/attempts/%d", runURL, rn.RunAttempt),
		JobsURL:       runURL + "/jobs",
		LogsURL:       runURL + "/logs",
		CheckSuiteURL: s.apiURL("/repos/%s/check-suites/%d", full, rn.ID+1),
		ArtifactsURL:  runURL + "/artifacts",
		CancelURL:     runURL + "/cancel",
		RerunURL:      runURL + "/rerun",
	}
	if c := rn.Conclusion; c != "" {
		o.Conclusion = &c
	}
	if rp := s.repos[strings.ToLower(full)]; rp != nil {
		if repoJSON == nil {
			repoJSON = s.minimalRepoJSON(rp)
		}
		o.Repository, o.HeadRepository = repoJSON, repoJSON
	}
	return o
}

// runObject is a workflow-run of GitHub's description: every field it
// requires, null where GitHub sends null.
type runObject struct {
	ID             int64           `json:"id"`
	Name           string          `json:"name"`
	NodeID         string          `json:"node_id"`
	HeadBranch     string          `json:"head_branch"`
	HeadSHA        string          `json:"head_sha"`
	Path           string          `json:"path"`
	DisplayTitle   string          `json:"display_title"`
	RunNumber      int             `json:"run_number"`
	RunAttempt     int             `json:"run_attempt"`
	Event          string          `json:"event"`
	Status         string          `json:"status"`
	Conclusion     *string         `json:"conclusion"`
	WorkflowID     int64           `json:"workflow_id"`
	URL            string          `json:"url"`
	HTMLURL        string          `json:"html_url"`
	WorkflowURL    string          `json:"workflow_url"`
	CreatedAt      string          `json:"created_at"`
	UpdatedAt      string          `json:"updated_at"`
	RunStartedAt   string          `json:"run_started_at"`
	PullRequests   []any           `json:"pull_requests"`
	HeadCommit     *struct{}       `json:"head_commit"`
	RunAttemptURL  string          `json:"run_attempt_url"`
	JobsURL        string          `json:"jobs_url"`
	LogsURL        string          `json:"logs_url"`
	CheckSuiteURL  string          `json:"check_suite_url"`
	ArtifactsURL   string          `json:"artifacts_url"`
	CancelURL      string          `json:"cancel_url"`
	RerunURL       string          `json:"rerun_url"`
	Repository     json.RawMessage `json:"repository,omitempty"`
	HeadRepository json.RawMessage `json:"head_repository,omitempty"`
}

// minimalRepoJSON is a run's repository and head_repository: GitHub sends
// a minimal-repository there (the identity and URLs, no counters or
// dates). It is encoded once per repository, which does not change (a
// repository added again is a new one), and shared by every run of it.
func (s *Server) minimalRepoJSON(rp *repo) json.RawMessage {
	rp.minimalOnce.Do(func() { rp.minimal = s.encodeMinimalRepo(rp) })
	return rp.minimal
}

func (s *Server) encodeMinimalRepo(rp *repo) json.RawMessage {
	full := s.repoJSON(rp)
	m := make(map[string]any, len(minimalRepoFields))
	for _, k := range minimalRepoFields {
		m[k] = full[k]
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic("githubtest: encoding a repository: " + err.Error())
	}
	return b
}

// leanRepoJSON is a run's repository under WithLeanRuns: the identity of
// a minimal-repository, without its URL templates.
func (s *Server) leanRepoJSON(rp *repo) json.RawMessage {
	full := rp.Owner + "/" + rp.Name
	b, err := json.Marshal(map[string]any{
		"id": rp.id, "node_id": nodeID("R", rp.id), "name": rp.Name, "full_name": full, "private": rp.Private,
		"owner":    map[string]any{"login": rp.Owner, "id": accountID(rp.Owner), "type": "Organization"},
		"html_url": s.webURL(full), "url": s.apiURL("/repos/%s", full),
	})
	if err != nil {
		panic("githubtest: encoding a repository: " + err.Error())
	}
	return b
}

// minimalRepoFields are the fields GitHub sends in a run's repository:
// those GitHub's description requires of a minimal-repository.
var minimalRepoFields = []string{
	"id", "node_id", "name", "full_name", "private", "owner", "html_url", "description", "fork", "url",
	"archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url", "comments_url",
	"commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url", "downloads_url",
	"events_url", "forks_url", "git_commits_url", "git_refs_url", "git_tags_url", "hooks_url",
	"issue_comment_url", "issue_events_url", "issues_url", "keys_url", "labels_url", "languages_url",
	"merges_url", "milestones_url", "notifications_url", "pulls_url", "releases_url", "stargazers_url",
	"statuses_url", "subscribers_url", "subscription_url", "tags_url", "teams_url", "trees_url",
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

// actionsRoutes serves workflows and their runs; dispatchRoutes starts
// them and controlRoutes acts on them.
func (s *Server) actionsRoutes(mux router) {
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/workflows", "actions", "read", s.listWorkflows)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}", "actions", "read", s.getWorkflow)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/runs", "actions", "read", s.listRepoRuns)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "actions", "read", s.listWorkflowRuns)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/runs/{run_id}", "actions", "read", s.getRun)
}

func (s *Server) listWorkflows(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo) {
	list := []any{}
	for _, wf := range rp.workflows {
		list = append(list, s.workflowJSON(rp, wf))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(list), "workflows": list})
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	wf := rp.workflow(r.PathValue("workflow_id"))
	if wf == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.workflowJSON(rp, wf))
}

func (s *Server) listRepoRuns(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	s.listRuns(w, r, rp, 0)
}

func (s *Server) listWorkflowRuns(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	wf := rp.workflow(r.PathValue("workflow_id"))
	if wf == nil {
		notFound(w)
		return
	}
	s.listRuns(w, r, rp, wf.ID)
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	if rn := s.findRun(w, r, rp); rn != nil {
		writeJSON(w, http.StatusOK, s.runJSON(rn, nil))
	}
}

// listRuns lists the visible runs of rp (of one workflow unless
// workflowID is 0), filtered and paged as GitHub does. s.mu is held.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, rp *repo, workflowID int64) {
	q := r.URL.Query()
	from, to, err := parseCreated(q.Get("created"))
	if err != nil {
		invalid(w, "created: "+err.Error())
		return
	}
	now := s.now()
	event, branch, sha, status := q.Get("event"), q.Get("branch"), q.Get("head_sha"), q.Get("status")
	var match []*run
	for _, rn := range s.runs {
		switch {
		case !strings.EqualFold(rn.Owner, rp.Owner), !strings.EqualFold(rn.Repo, rp.Name), now.Before(rn.visibleAt),
			workflowID != 0 && rn.WorkflowID != workflowID,
			event != "" && rn.Event != event,
			branch != "" && rn.HeadBranch != branch,
			sha != "" && rn.HeadSHA != sha,
			status != "" && rn.Status != status && rn.Conclusion != status,
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
	if end < len(listed) {
		s.linkNext(w, r, "page", strconv.Itoa(page+1), "per_page", strconv.Itoa(perPage))
	}
	repoJSON := s.minimalRepoJSON
	if s.leanRuns {
		repoJSON = s.leanRepoJSON
	}
	s.writeRuns(w, len(match), listed[start:end], repoJSON(rp))
}

// writeRuns answers a page of runs of one repository, as writeJSON would
// encode {"total_count": total, "workflow_runs": [...]}, with the
// repository's encoding (repoJSON) written into each run as it is:
// encoding/json would check its bytes twice for every run of the page.
func (s *Server) writeRuns(w http.ResponseWriter, total int, runs []*run, repoJSON json.RawMessage) {
	var body bytes.Buffer
	// Room for the runs without growing: a page weighs up to a MB.
	body.Grow(len(runs) * (2*len(repoJSON) + 2048))
	fmt.Fprintf(&body, `{"total_count":%d,"workflow_runs":[`, total)
	for i, rn := range runs {
		o := s.runJSON(rn, repoJSON)
		o.Repository, o.HeadRepository = nil, nil
		b, err := json.Marshal(o)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "githubtest: encoding a run: "+err.Error())
			return
		}
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(b[:len(b)-1]) // without the closing brace
		body.WriteString(`,"repository":`)
		body.Write(repoJSON)
		body.WriteString(`,"head_repository":`)
		body.Write(repoJSON)
		body.WriteByte('}')
	}
	body.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body.Bytes())
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

// linkNext points GitHub's Link header at the next page: the request's
// URL with the query keys and values given (key, value, key, value...).
func (s *Server) linkNext(w http.ResponseWriter, r *http.Request, kv ...string) {
	u := *r.URL
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, strings.TrimSuffix(s.srv.URL, "/")+apiPrefix+u.Path+"?"+u.RawQuery))
}
