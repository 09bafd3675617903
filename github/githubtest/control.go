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
// deployments), and close a pull request with a comment.

// WithCancelDelay sets how long a cancelled run takes to complete as
// cancelled (default: at once, but after the cancel request is answered).
// A negative d makes runs ignore cancel requests, as a run stuck in a
// step does; only a force-cancel ends them.
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

// Comment is an issue or pull request comment in the fake.
type Comment struct {
	ID     int64
	Number int
	Body   string
	// By is the login that commented (the App's bot for installation
	// tokens).
	By string
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

// Comments returns the comments of an issue or pull request.
func (s *Server) Comments(owner, name string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments[fmt.Sprintf("%s#%d", strings.ToLower(owner+"/"+name), number)])
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

// runFor finds a visible run of the request's repository; s.mu held.
func (s *Server) runFor(w http.ResponseWriter, r *http.Request, c caller, level string) (*repo, *run) {
	rp := s.requireRepo(w, r, c, "actions", level)
	if rp == nil {
		return nil, nil
	}
	id, _ := strconv.ParseInt(r.PathValue("run_id"), 10, 64)
	rn := s.runs[id]
	if rn == nil || !strings.EqualFold(rn.Owner+"/"+rn.Repo, rp.Owner+"/"+rp.Name) || s.now().Before(rn.visibleAt) {
		notFound(w)
		return nil, nil
	}
	return rp, rn
}

func (s *Server) controlRoutes(mux *http.ServeMux) {
	cancel := func(force bool) handler {
		return func(w http.ResponseWriter, r *http.Request, c caller) {
			s.mu.Lock()
			_, rn := s.runFor(w, r, c, "write")
			if rn == nil {
				s.mu.Unlock()
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
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", authToken, cancel(false))
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel", authToken, cancel(true))

	rerun := func(failedOnly bool) handler {
		return func(w http.ResponseWriter, r *http.Request, c caller) {
			var body struct {
				EnableDebugLogging bool `json:"enable_debug_logging"`
			}
			if r.ContentLength != 0 && !readJSON(w, r, &body) {
				return
			}
			s.mu.Lock()
			_, rn := s.runFor(w, r, c, "write")
			if rn == nil {
				s.mu.Unlock()
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
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun", authToken, rerun(false))
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs", authToken, rerun(true))

	s.handle(mux, "GET /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp, rn := s.runFor(w, r, c, "read")
		if rn == nil {
			return
		}
		out := []any{}
		if g := s.gates[rn.ID]; g != nil {
			full := rp.Owner + "/" + rp.Name
			for _, p := range g.reviews {
				var revs []any
				for _, login := range p.reviewers {
					if org, team, ok := strings.Cut(login, "/"); ok {
						revs = append(revs, map[string]any{"type": "Team", "reviewer": s.teamJSON(org, team)})
					} else {
						revs = append(revs, map[string]any{"type": "User", "reviewer": s.userJSON(login, accountID(login), "User")})
					}
				}
				out = append(out, map[string]any{
					"environment": map[string]any{
						"id": p.id, "node_id": nodeID("EN", p.id), "name": p.environment,
						"url":      s.apiURL("/repos/%s/environments/%s", full, p.environment),
						"html_url": s.webURL(full + "/deployments/activity_log?environments_filter=" + p.environment),
					},
					"wait_timer": 0, "wait_timer_started_at": p.startedAt.UTC().Format(time.RFC3339),
					"current_user_can_approve": slices.Contains(p.reviewers, c.login),
					"reviewers":                revs,
				})
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			EnvironmentIDs []int64 `json:"environment_ids"`
			State          string  `json:"state"`
			Comment        *string `json:"comment"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		rp, rn := s.runFor(w, r, c, "write")
		if rn == nil {
			s.mu.Unlock()
			return
		}
		if (body.State != "approved" && body.State != "rejected") || len(body.EnvironmentIDs) == 0 || body.Comment == nil {
			s.mu.Unlock()
			validationFailed(w, "https://docs.github.com/rest/actions/workflow-runs#review-pending-deployments-for-a-workflow-run",
				fieldError{Resource: "PendingDeployment", Code: "invalid", Message: "environment_ids, state (approved or rejected) and comment are required"})
			return
		}
		g := s.gates[rn.ID]
		var deps []any
		for _, id := range body.EnvironmentIDs {
			i := -1
			if g != nil {
				i = slices.IndexFunc(g.reviews, func(p pendingReview) bool { return p.id == id })
			}
			if i < 0 {
				s.mu.Unlock()
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Environment %d has no deployment pending review for this run.", id))
				return
			}
			if c.login == "" || !slices.Contains(g.reviews[i].reviewers, c.login) {
				s.mu.Unlock()
				who := "An installation of a GitHub App"
				if c.login != "" {
					who = c.login
				}
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s is not a required reviewer of environment %s.", who, g.reviews[i].environment))
				return
			}
		}
		for _, id := range body.EnvironmentIDs {
			i := slices.IndexFunc(g.reviews, func(p pendingReview) bool { return p.id == id })
			p := g.reviews[i]
			g.reviews = slices.Delete(g.reviews, i, i+1)
			deps = append(deps, s.deploymentJSON(&Deployment{ID: rn.ID + id%1000, Owner: rp.Owner, Repo: rp.Name, Ref: rn.HeadBranch,
				SHA: rn.HeadSHA, Task: "deploy", Environment: p.environment, CreatedAt: p.startedAt}))
		}
		s.decide(rn.ID, body.State == "approved") // unlocks
		writeJSON(w, http.StatusOK, deps)
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			EnvironmentName string `json:"environment_name"`
			State           string `json:"state"`
			Comment         string `json:"comment"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		_, rn := s.runFor(w, r, c, "read")
		if rn == nil {
			s.mu.Unlock()
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
	})

	s.handle(mux, "PATCH /repos/{owner}/{repo}/pulls/{pull_number}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			Title *string `json:"title"`
			Body  *string `json:"body"`
			State *string `json:"state"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		rp := s.requireRepo(w, r, c, "pull_requests", "write")
		if rp == nil {
			s.mu.Unlock()
			return
		}
		n, _ := strconv.Atoi(r.PathValue("pull_number"))
		var pr *PullRequest
		for _, p := range s.git().pulls[strings.ToLower(rp.Owner+"/"+rp.Name)] {
			if p.Number == n {
				pr = p
			}
		}
		if pr == nil {
			s.mu.Unlock()
			notFound(w)
			return
		}
		if body.State != nil && *body.State != "open" && *body.State != "closed" {
			s.mu.Unlock()
			validationFailed(w, "https://docs.github.com/rest/pulls/pulls#update-a-pull-request",
				fieldError{Resource: "PullRequest", Field: "state", Code: "invalid"})
			return
		}
		if body.Title != nil {
			pr.Title = *body.Title
		}
		if body.Body != nil {
			pr.Body = *body.Body
		}
		closing := body.State != nil && *body.State == "closed" && pr.State == "open"
		if body.State != nil && !pr.Merged {
			pr.State = *body.State
		}
		out := s.pullJSON(rp, pr)
		var payload map[string]any
		if closing && s.hook.url != "" {
			payload = map[string]any{"action": "closed", "number": pr.Number, "pull_request": out, "repository": s.repoJSON(rp)}
			if in := s.installationFor(rp); in != nil {
				payload["installation"] = map[string]any{"id": in.ID}
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
		if payload != nil {
			s.bg.Add(1)
			go func() { defer s.bg.Done(); _, _ = s.Deliver("pull_request", payload) }()
		}
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			Body *string `json:"body"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		// Comments on pull requests need pull_requests (or issues) write.
		rp := s.requireRepo(w, r, c, "pull_requests", "write")
		if rp == nil {
			return
		}
		if body.Body == nil || *body.Body == "" {
			validationFailed(w, "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
				fieldError{Resource: "IssueComment", Field: "body", Code: "missing_field"})
			return
		}
		n, _ := strconv.Atoi(r.PathValue("issue_number"))
		key := strings.ToLower(rp.Owner + "/" + rp.Name)
		if !slices.ContainsFunc(s.git().pulls[key], func(p *PullRequest) bool { return p.Number == n }) {
			notFound(w)
			return
		}
		user := s.botJSON()
		by := s.AppSlug + "[bot]"
		if c.login != "" {
			user, by = s.userJSON(c.login, accountID(c.login), "User"), c.login
		}
		cm := Comment{ID: s.id(), Number: n, Body: *body.Body, By: by}
		if s.comments == nil {
			s.comments = map[string][]Comment{}
		}
		ck := fmt.Sprintf("%s#%d", key, n)
		s.comments[ck] = append(s.comments[ck], cm)
		full := rp.Owner + "/" + rp.Name
		w.Header().Set("Location", s.apiURL("/repos/%s/issues/comments/%d", full, cm.ID))
		writeJSON(w, http.StatusCreated, map[string]any{
			"id": cm.ID, "node_id": nodeID("IC", cm.ID), "body": cm.Body, "user": user,
			"url":                s.apiURL("/repos/%s/issues/comments/%d", full, cm.ID),
			"html_url":           s.webURL(fmt.Sprintf("%s/pull/%d#issuecomment-%d", full, n, cm.ID)),
			"issue_url":          s.apiURL("/repos/%s/issues/%d", full, n),
			"author_association": "NONE",
			"created_at":         s.ts(), "updated_at": s.ts(),
		})
	})
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
