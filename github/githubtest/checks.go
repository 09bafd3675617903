package githubtest

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CheckRun is a check run in the fake. Hosts that mirror job status as check
// runs assert on them (CheckRuns).
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
	checkStatuses    = []string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)

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

// checkRoutes serves check runs.
func (s *Server) checkRoutes(mux router) {
	s.handle(mux, "POST /repos/{owner}/{repo}/check-runs", authToken, s.createCheckRun)
	handleRepoJSON(s, mux, "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", "checks", "write", s.updateCheckRun)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/check-runs/{check_run_id}", "checks", "read", s.getCheckRun)
}

// createCheckRun refuses static tokens before it looks the repository
// up: only Apps create check runs.
func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request, c caller) {
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
	rp := s.lockRepo(w, r, c, "checks", "write")
	if rp == nil {
		return
	}
	defer s.mu.Unlock()
	cr := &CheckRun{ID: s.id(), Owner: rp.Owner, Repo: rp.Name, Name: *body.Name, HeadSHA: *body.HeadSHA, Status: "queued"}
	if msg := body.apply(cr, s.now()); msg != "" {
		invalid(w, msg)
		return
	}
	s.checkRuns[cr.ID] = cr
	writeJSON(w, http.StatusCreated, s.checkRunJSON(cr))
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request, _ caller, rp *repo, body *checkRunBody) {
	cr := s.findCheckRun(w, r, rp)
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
}

func (s *Server) getCheckRun(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	if cr := s.findCheckRun(w, r, rp); cr != nil {
		writeJSON(w, http.StatusOK, s.checkRunJSON(cr))
	}
}

// findCheckRun finds the request's check run in rp; it answers 404 and
// returns nil when there is none. s.mu is held.
func (s *Server) findCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) *CheckRun {
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
