package githubtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What operators do to runs: cancel and force-cancel (asynchronous, as on
// GitHub: the run completes as cancelled later), re-run (a new
// run_attempt), approve or reject a deployment through a custom
// deployment protection rule (the App answers the run's
// deployment_callback_url) or as a required reviewer (pending
// deployments).

// WithCancelDelay sets how long a cancelled run takes to complete as
// cancelled (default: at once, but after the cancel request is answered,
// so its delivery may reach the host before the host has answered its own
// caller). A negative d makes runs ignore cancel requests, as a run stuck
// in a step does; only a force-cancel or the test (SetRunStatus) ends
// them. Hosts test their cancellation with it, and a test that asserts
// the state between its cancel and the run's end uses -1.
func WithCancelDelay(d time.Duration) Option { return func(s *Server) { s.cancelDelay = d } }

// gates is what a waiting run waits for.
type gates struct {
	// rules are the environments whose custom protection rule (this App)
	// has not answered yet.
	rules []string
	// reviews are the environments waiting for a required reviewer.
	reviews []pendingReview
}

type pendingReview struct {
	environment string
	id          int64
	reviewers   []string
	startedAt   time.Time
}

// AddReviewerToken makes token a user's token for login, who can review
// pending deployments of environments listing login as a reviewer.
func (s *Server) AddReviewerToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userStatic == nil {
		s.userStatic = map[string]string{}
	}
	s.userStatic[token] = login
	s.staticTokens[token] = true
}

// environmentID is the id the fake gives an environment of a repository.
func environmentID(rp *repo, env string) int64 {
	return 160000000 + accountID(rp.Owner+"/"+rp.Name+"/"+env)%1000000
}

// RequestProtectionRule makes a run wait on this App as a custom
// deployment protection rule of environment: the run becomes "waiting"
// (a workflow_run delivery) and a deployment_protection_rule "requested"
// delivery carries the deployment_callback_url to answer.
func (s *Server) RequestProtectionRule(runID int64, environment string) (Delivery, error) {
	if err := s.wait(runID, func(g *gates) { g.rules = append(g.rules, environment) }); err != nil {
		return Delivery{}, err
	}
	s.mu.Lock()
	rn := s.runs[runID]
	rp := s.repos[strings.ToLower(rn.Owner+"/"+rn.Repo)]
	full := rn.Owner + "/" + rn.Repo
	dep := &Deployment{ID: runID + 7, Owner: rn.Owner, Repo: rn.Repo, Ref: rn.HeadBranch, SHA: rn.HeadSHA, Task: "deploy",
		Environment: environment, CreatedAt: s.now()}
	p := map[string]any{
		"action":                  "requested",
		"environment":             environment,
		"event":                   rn.Event,
		"sha":                     rn.HeadSHA,
		"ref":                     "refs/heads/" + rn.HeadBranch,
		"deployment_callback_url": s.apiURL("/repos/%s/actions/runs/%d/deployment_protection_rule", full, runID),
		"deployment":              s.deploymentJSON(dep),
		"pull_requests":           []any{},
		"repository":              s.repoJSON(rp),
		"sender":                  s.userJSON("octocat", 1, "User"),
	}
	if in := s.installationFor(rp); in != nil {
		p["installation"] = map[string]any{"id": in.ID, "node_id": "MDIz" + strconv.FormatInt(in.ID, 10)}
	}
	hook := s.hook.url != ""
	s.mu.Unlock()
	if !hook {
		return Delivery{}, nil
	}
	return s.Deliver("deployment_protection_rule", p)
}

// RequireReviewers makes a run wait for one of reviewers (user logins or
// "org/team" slugs) to approve its deployment to environment: the run
// becomes "waiting" (a workflow_run delivery) and GET pending_deployments
// lists it.
func (s *Server) RequireReviewers(runID int64, environment string, reviewers ...string) error {
	s.mu.Lock()
	rn := s.runs[runID]
	var id int64
	if rn != nil {
		id = environmentID(s.repos[strings.ToLower(rn.Owner+"/"+rn.Repo)], environment)
	}
	s.mu.Unlock()
	return s.wait(runID, func(g *gates) {
		g.reviews = append(g.reviews, pendingReview{environment: environment, id: id, reviewers: reviewers, startedAt: s.now()})
	})
}

// TimeoutProtectionRule ends a protection rule's wait as GitHub does when
// nobody answers in time: the run fails, and the callback is refused.
func (s *Server) TimeoutProtectionRule(runID int64, environment string) error {
	s.mu.Lock()
	g := s.gates[runID]
	if g == nil || !slices.Contains(g.rules, environment) {
		s.mu.Unlock()
		return fmt.Errorf("run %d waits on no protection rule of %s", runID, environment)
	}
	delete(s.gates, runID)
	s.mu.Unlock()
	_, err := s.SetRunStatus(runID, "completed", "failure")
	return err
}

// wait adds a gate to a run that has not completed and makes it waiting.
func (s *Server) wait(runID int64, add func(g *gates)) error {
	s.mu.Lock()
	rn := s.runs[runID]
	if rn == nil || rn.Status == "completed" {
		s.mu.Unlock()
		return fmt.Errorf("no unfinished run %d", runID)
	}
	if s.gates == nil {
		s.gates = map[int64]*gates{}
	}
	g := s.gates[runID]
	if g == nil {
		g = &gates{}
		s.gates[runID] = g
	}
	add(g)
	s.mu.Unlock()
	_, err := s.SetRunStatus(runID, "waiting", "")
	return err
}

// decide settles one gate of a run. When the last gate is approved the
// run goes on (in_progress); a rejection fails it. s.mu is released.
func (s *Server) decide(runID int64, approved bool) {
	g := s.gates[runID]
	done := !approved || g == nil || (len(g.rules) == 0 && len(g.reviews) == 0)
	if done {
		delete(s.gates, runID)
	}
	s.mu.Unlock()
	switch {
	case !approved:
		_, _ = s.SetRunStatus(runID, "completed", "failure")
	case done:
		_, _ = s.SetRunStatus(runID, "in_progress", "")
	}
}

// completeCancelled completes a run as cancelled unless it completed
// meanwhile, and delivers the workflow_run.
func (s *Server) completeCancelled(id int64) {
	s.mu.Lock()
	rn := s.runs[id]
	if rn == nil || rn.Status == "completed" {
		s.mu.Unlock()
		return
	}
	delete(s.gates, id)
	s.mu.Unlock()
	_, _ = s.SetRunStatus(id, "completed", "cancelled")
}

// findRun finds the request's run in rp, once it is visible; it answers
// 404 and returns nil when there is none. s.mu is held.
func (s *Server) findRun(w http.ResponseWriter, r *http.Request, rp *repo) *run {
	id, _ := strconv.ParseInt(r.PathValue("run_id"), 10, 64)
	rn := s.runs[id]
	if rn == nil || !strings.EqualFold(rn.Owner+"/"+rn.Repo, rp.Owner+"/"+rp.Name) || s.now().Before(rn.visibleAt) {
		notFound(w)
		return nil
	}
	return rn
}

// lockRun is lockRepo (with the actions permission) and findRun: on
// success s.mu is held, otherwise it was released after answering.
func (s *Server) lockRun(w http.ResponseWriter, r *http.Request, c caller, level string) (*repo, *run) {
	rp := s.lockRepo(w, r, c, "actions", level)
	if rp == nil {
		return nil, nil
	}
	rn := s.findRun(w, r, rp)
	if rn == nil {
		s.mu.Unlock()
		return nil, nil
	}
	return rp, rn
}

// controlRoutes serves what operators do to runs. These handlers release
// s.mu before they finish: settling a run delivers webhooks and takes
// s.mu itself.
func (s *Server) controlRoutes(mux router) {
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", authToken, s.cancelRun(false))
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel", authToken, s.cancelRun(true))
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun", authToken, s.rerun(false))
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs", authToken, s.rerun(true))
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments", "actions", "read", s.listPendingDeployments)
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments", authToken, s.reviewPendingDeployments)
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule", authToken, s.reviewProtectionRule)
}

// cancelRun answers a cancel (or, with force, a force-cancel) and
// completes the run as cancelled in the background after the answer.
func (s *Server) cancelRun(force bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		_, rn := s.lockRun(w, r, c, "write")
		if rn == nil {
			return
		}
		if rn.Status == "completed" {
			s.mu.Unlock()
			writeError(w, http.StatusConflict, "Cannot cancel a workflow run that is completed.")
			return
		}
		delay := s.cancelDelay
		if force {
			delay = 0
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]any{})
		if delay < 0 {
			return // the run ignores it
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			// After the answer: GitHub cancels asynchronously.
			time.Sleep(max(delay, time.Millisecond))
			s.completeCancelled(rn.ID)
		}()
	}
}

// rerun re-runs a completed run (with failedOnly, its failed jobs).
func (s *Server) rerun(failedOnly bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			EnableDebugLogging bool `json:"enable_debug_logging"`
		}
		if r.ContentLength != 0 && !readJSON(w, r, &body) {
			return
		}
		_, rn := s.lockRun(w, r, c, "write")
		if rn == nil {
			return
		}
		msg := ""
		switch {
		case rn.Status != "completed":
			msg = "This workflow run is not completed and cannot be re-run."
		case failedOnly && !slices.Contains([]string{"failure", "cancelled", "timed_out", "startup_failure"}, rn.Conclusion):
			msg = "This workflow run has no failed jobs to re-run."
		}
		id := rn.ID
		if msg == "" {
			rn.RerunFailedOnly = failedOnly
		}
		s.mu.Unlock()
		if msg != "" {
			writeError(w, http.StatusForbidden, msg)
			return
		}
		// GitHub queues the new attempt, and its delivery may reach the
		// receiver before this answer does.
		_, _ = s.RerunRun(id)
		writeJSON(w, http.StatusCreated, map[string]any{})
	}
}

func (s *Server) listPendingDeployments(w http.ResponseWriter, r *http.Request, c caller, rp *repo) {
	rn := s.findRun(w, r, rp)
	if rn == nil {
		return
	}
	out := []any{}
	if g := s.gates[rn.ID]; g != nil {
		for _, p := range g.reviews {
			out = append(out, s.pendingDeploymentJSON(rp, p, c))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// pendingDeploymentJSON is a deployment waiting for a required reviewer,
// as the caller c sees it.
func (s *Server) pendingDeploymentJSON(rp *repo, p pendingReview, c caller) map[string]any {
	full := rp.Owner + "/" + rp.Name
	var revs []any
	for _, login := range p.reviewers {
		if org, team, ok := strings.Cut(login, "/"); ok {
			revs = append(revs, map[string]any{"type": "Team", "reviewer": s.teamJSON(org, team)})
		} else {
			revs = append(revs, map[string]any{"type": "User", "reviewer": s.userJSON(login, accountID(login), "User")})
		}
	}
	return map[string]any{
		"environment": map[string]any{
			"id": p.id, "node_id": nodeID("EN", p.id), "name": p.environment,
			"url":      s.apiURL("/repos/%s/environments/%s", full, p.environment),
			"html_url": s.webURL(full + "/deployments/activity_log?environments_filter=" + p.environment),
		},
		"wait_timer": 0, "wait_timer_started_at": p.startedAt.UTC().Format(time.RFC3339),
		"current_user_can_approve": slices.Contains(p.reviewers, c.login),
		"reviewers":                revs,
	}
}

type reviewPendingRequest struct {
	EnvironmentIDs []int64 `json:"environment_ids"`
	State          string  `json:"state"`
	Comment        *string `json:"comment"`
}

// reviewPendingDeployments approves or rejects the run's deployments to
// environments waiting for the caller as a required reviewer.
func (s *Server) reviewPendingDeployments(w http.ResponseWriter, r *http.Request, c caller) {
	var body reviewPendingRequest
	if !readJSON(w, r, &body) {
		return
	}
	rp, rn := s.lockRun(w, r, c, "write")
	if rn == nil {
		return
	}
	if (body.State != "approved" && body.State != "rejected") || len(body.EnvironmentIDs) == 0 || body.Comment == nil {
		s.mu.Unlock()
		validationFailed(w, "https://docs.github.com/rest/actions/workflow-runs#review-pending-deployments-for-a-workflow-run",
			fieldError{Resource: "PendingDeployment", Code: "invalid", Message: "environment_ids, state (approved or rejected) and comment are required"})
		return
	}
	g := s.gates[rn.ID]
	if msg := reviewRefusal(g, body.EnvironmentIDs, c); msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	var deps []any
	for _, id := range body.EnvironmentIDs {
		i := slices.IndexFunc(g.reviews, func(p pendingReview) bool { return p.id == id })
		p := g.reviews[i]
		g.reviews = slices.Delete(g.reviews, i, i+1)
		deps = append(deps, s.deploymentJSON(&Deployment{ID: rn.ID + id%1000, Owner: rp.Owner, Repo: rp.Name, Ref: rn.HeadBranch,
			SHA: rn.HeadSHA, Task: "deploy", Environment: p.environment, CreatedAt: p.startedAt}))
	}
	s.decide(rn.ID, body.State == "approved") // unlocks
	writeJSON(w, http.StatusOK, deps)
}

// reviewRefusal returns why c may not review the deployments to the
// environments ids that the run's gates g wait for, "" when it may.
func reviewRefusal(g *gates, ids []int64, c caller) string {
	for _, id := range ids {
		i := -1
		if g != nil {
			i = slices.IndexFunc(g.reviews, func(p pendingReview) bool { return p.id == id })
		}
		if i < 0 {
			return fmt.Sprintf("Environment %d has no deployment pending review for this run.", id)
		}
		if c.login == "" || !slices.Contains(g.reviews[i].reviewers, c.login) {
			who := "An installation of a GitHub App"
			if c.login != "" {
				who = c.login
			}
			return fmt.Sprintf("%s is not a required reviewer of environment %s.", who, g.reviews[i].environment)
		}
	}
	return ""
}

type reviewProtectionRuleRequest struct {
	EnvironmentName string `json:"environment_name"`
	State           string `json:"state"`
	Comment         string `json:"comment"`
}

// reviewProtectionRule is the App answering a run's
// deployment_callback_url as a custom deployment protection rule.
func (s *Server) reviewProtectionRule(w http.ResponseWriter, r *http.Request, c caller) {
	var body reviewProtectionRuleRequest
	if !readJSON(w, r, &body) {
		return
	}
	_, rn := s.lockRun(w, r, c, "read")
	if rn == nil {
		return
	}
	if c.installation == nil {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Only a GitHub App that is a deployment protection rule of the environment can review it.")
		return
	}
	g := s.gates[rn.ID]
	i := -1
	if g != nil {
		i = slices.Index(g.rules, body.EnvironmentName)
	}
	if i < 0 || (body.State != "" && body.State != "approved" && body.State != "rejected") {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("No pending deployment protection rule of environment %q for this run.", body.EnvironmentName))
		return
	}
	if body.State == "" {
		// A comment alone: the rule is still pending.
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	g.rules = slices.Delete(g.rules, i, i+1)
	s.decide(rn.ID, body.State == "approved") // unlocks
	w.WriteHeader(http.StatusNoContent)
}

// teamJSON is a team of an organization.
func (s *Server) teamJSON(org, slug string) map[string]any {
	id := accountID(org + "/" + slug)
	return map[string]any{
		"id": id, "node_id": nodeID("T", id), "name": slug, "slug": slug, "description": nil,
		"privacy": "closed", "notification_setting": "notifications_enabled", "permission": "pull",
		"url":              s.apiURL("/orgs/%s/teams/%s", org, slug),
		"html_url":         s.webURL("orgs/" + org + "/teams/" + slug),
		"members_url":      s.apiURL("/orgs/%s/teams/%s/members{/member}", org, slug),
		"repositories_url": s.apiURL("/orgs/%s/teams/%s/repos", org, slug),
		"parent":           nil,
		"type":             "organization",
		"organization_id":  accountID(org),
	}
}
