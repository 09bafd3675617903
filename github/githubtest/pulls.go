package githubtest

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PullRequest is a pull request in the fake. Hosts whose jobs open pull
// requests assert on them (Pulls).
type PullRequest struct {
	Number      int
	ID          int64
	Owner, Repo string
	Head, Base  string
	HeadSHA     string
	Title, Body string
	Draft       bool
	State       string // "open" or "closed"
	Merged      bool
	CreatedAt   time.Time
}

// Pulls returns the pull requests of a repository, oldest first.
func (s *Server) Pulls(owner, name string) []PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PullRequest
	for _, p := range s.git().pulls[strings.ToLower(owner+"/"+name)] {
		out = append(out, *p)
	}
	return out
}

// MergePull merges (or, with merged false, closes) an open pull request
// and sends a pull_request "closed" delivery when a webhook is set.
func (s *Server) MergePull(owner, name string, number int, merged bool) (PullRequest, error) {
	s.mu.Lock()
	var pr *PullRequest
	for _, p := range s.git().pulls[strings.ToLower(owner+"/"+name)] {
		if p.Number == number {
			pr = p
		}
	}
	if pr == nil || pr.State != "open" {
		s.mu.Unlock()
		return PullRequest{}, fmt.Errorf("no open pull request #%d in %s/%s", number, owner, name)
	}
	pr.State, pr.Merged = "closed", merged
	rp := s.repos[strings.ToLower(owner+"/"+name)]
	payload := map[string]any{"action": "closed", "number": pr.Number, "pull_request": s.pullJSON(rp, pr), "repository": s.repoJSON(rp)}
	if in := s.installationFor(rp); in != nil {
		payload["installation"] = map[string]any{"id": in.ID}
	}
	out := *pr
	hook := s.hook.url != ""
	s.mu.Unlock()
	if !hook {
		return out, nil
	}
	_, err := s.Deliver("pull_request", payload)
	return out, err
}

// installationFor returns the first installation granting rp; s.mu held.
func (s *Server) installationFor(rp *repo) *installation {
	for _, id := range slices.Sorted(maps.Keys(s.installations)) {
		if in := s.installations[id]; in.grants(rp.Owner, rp.Name) {
			return in
		}
	}
	return nil
}

func (s *Server) pullJSON(rp *repo, pr *PullRequest) map[string]any {
	full := rp.Owner + "/" + rp.Name
	repoObj := s.repoJSON(rp)
	created := pr.CreatedAt.UTC().Format(time.RFC3339)
	var closedAt, mergedAt, mergedBy, mergeSHA any
	if pr.State == "closed" {
		closedAt = s.ts()
	}
	if pr.Merged {
		mergedAt, mergedBy, mergeSHA = s.ts(), s.botJSON(), fakeSHA(fmt.Sprintf("merge:%s#%d", full, pr.Number))
	}
	api := func(format string, args ...any) string {
		return s.apiURL("/repos/%s"+format, append([]any{full}, args...)...)
	}
	html := s.webURL(fmt.Sprintf("%s/pull/%d", full, pr.Number))
	link := func(u string) map[string]any { return map[string]any{"href": u} }
	return map[string]any{
		"id": pr.ID, "node_id": nodeID("PR", pr.ID), "number": pr.Number, "state": pr.State, "title": pr.Title, "body": pr.Body,
		"draft": pr.Draft, "merged": pr.Merged, "locked": false, "mergeable": nil, "mergeable_state": "unknown",
		"maintainer_can_modify": false, "author_association": "NONE", "auto_merge": nil,
		"user": s.botJSON(), "assignee": nil, "labels": []any{}, "milestone": nil, "merged_by": mergedBy,
		"merge_commit_sha": mergeSHA, "closed_at": closedAt, "merged_at": mergedAt,
		"additions": 0, "deletions": 0, "changed_files": 0, "comments": 0, "commits": 1, "review_comments": 0,
		"head":                map[string]any{"ref": pr.Head, "sha": pr.HeadSHA, "label": rp.Owner + ":" + pr.Head, "repo": repoObj, "user": s.accountJSON(rp.Owner, "")},
		"base":                map[string]any{"ref": pr.Base, "sha": rp.branches[pr.Base], "label": rp.Owner + ":" + pr.Base, "repo": repoObj, "user": s.accountJSON(rp.Owner, "")},
		"url":                 api("/pulls/%d", pr.Number),
		"html_url":            html,
		"diff_url":            html + ".diff",
		"patch_url":           html + ".patch",
		"issue_url":           api("/issues/%d", pr.Number),
		"comments_url":        api("/issues/%d/comments", pr.Number),
		"commits_url":         api("/pulls/%d/commits", pr.Number),
		"review_comments_url": api("/pulls/%d/comments", pr.Number),
		"review_comment_url":  api("/pulls/comments{/number}"),
		"statuses_url":        api("/statuses/%s", pr.HeadSHA),
		"created_at":          created,
		"updated_at":          s.ts(),
		"_links": map[string]any{
			"self": link(api("/pulls/%d", pr.Number)), "html": link(html),
			"issue": link(api("/issues/%d", pr.Number)), "comments": link(api("/issues/%d/comments", pr.Number)),
			"review_comments": link(api("/pulls/%d/comments", pr.Number)), "review_comment": link(api("/pulls/comments{/number}")),
			"commits": link(api("/pulls/%d/commits", pr.Number)), "statuses": link(api("/statuses/%s", pr.HeadSHA)),
		},
	}
}

// Comment is an issue or pull request comment in the fake. Hosts that
// comment on pull requests assert on them (Comments).
type Comment struct {
	ID     int64
	Number int
	Body   string
	// By is the login that commented (the App's bot for installation
	// tokens).
	By string
}

// Comments returns the comments of an issue or pull request.
func (s *Server) Comments(owner, name string, number int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments[fmt.Sprintf("%s#%d", strings.ToLower(owner+"/"+name), number)])
}

// pullRoutes serves pull requests and their comments.
func (s *Server) pullRoutes(mux router) {
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/pulls", "pull_requests", "write", s.createPull)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/pulls", "pull_requests", "read", s.listPulls)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/pulls/{number}", "pull_requests", "read", s.getPull)
	s.handle(mux, "PATCH /repos/{owner}/{repo}/pulls/{pull_number}", authToken, s.updatePull)
	// Comments on pull requests need pull_requests (or issues) write.
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", "pull_requests", "write", s.createComment)
}

type createPullRequest struct {
	Title string `json:"title"`
	Head  string `json:"head"`
	Base  string `json:"base"`
	Body  string `json:"body"`
	Draft bool   `json:"draft"`
}

func (s *Server) createPull(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo, body *createPullRequest) {
	head := body.Head
	if o, b, ok := strings.Cut(head, ":"); ok && strings.EqualFold(o, rp.Owner) {
		head = b
	}
	sha, okHead := rp.branches[head]
	_, okBase := rp.branches[body.Base]
	switch {
	case body.Title == "":
		invalid(w, "\"title\" wasn't supplied.")
		return
	case !okHead || !okBase:
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed")
		return
	}
	key := strings.ToLower(rp.Owner + "/" + rp.Name)
	g := s.git()
	for _, p := range g.pulls[key] {
		if p.Head == head && p.State == "open" {
			validationFailed(w, "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
				fieldError{Resource: "PullRequest", Code: "custom", Message: fmt.Sprintf("A pull request already exists for %s:%s.", rp.Owner, head)})
			return
		}
	}
	pr := &PullRequest{
		Number: len(g.pulls[key]) + 1, ID: s.id(), Owner: rp.Owner, Repo: rp.Name, Head: head, Base: body.Base, HeadSHA: sha,
		Title: body.Title, Body: body.Body, Draft: body.Draft, State: "open", CreatedAt: s.now(),
	}
	g.pulls[key] = append(g.pulls[key], pr)
	writeJSON(w, http.StatusCreated, s.pullJSON(rp, pr))
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	q := r.URL.Query()
	state := cmp.Or(q.Get("state"), "open")
	list := []any{}
	for _, p := range slices.Backward(s.git().pulls[strings.ToLower(rp.Owner+"/"+rp.Name)]) {
		if (state != "all" && p.State != state) || (q.Get("head") != "" && !strings.EqualFold(q.Get("head"), rp.Owner+":"+p.Head)) {
			continue
		}
		list = append(list, s.pullJSON(rp, p))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	for _, p := range s.git().pulls[strings.ToLower(rp.Owner+"/"+rp.Name)] {
		if p.Number == n {
			writeJSON(w, http.StatusOK, s.pullJSON(rp, p))
			return
		}
	}
	notFound(w)
}

type updatePullRequest struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
	State *string `json:"state"`
}

// updatePull edits a pull request; closing one sends a pull_request
// "closed" delivery after the answer, outside s.mu.
func (s *Server) updatePull(w http.ResponseWriter, r *http.Request, c caller) {
	var body updatePullRequest
	if !readJSON(w, r, &body) {
		return
	}
	rp := s.lockRepo(w, r, c, "pull_requests", "write")
	if rp == nil {
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
	out, payload := s.applyPullUpdate(rp, pr, body)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
	if payload != nil {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); _, _ = s.Deliver("pull_request", payload) }()
	}
}

// applyPullUpdate edits pr and returns its JSON and, when the edit closed
// it and a webhook is set, the pull_request delivery's payload. s.mu is
// held.
func (s *Server) applyPullUpdate(rp *repo, pr *PullRequest, body updatePullRequest) (out, payload map[string]any) {
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
	out = s.pullJSON(rp, pr)
	if closing && s.hook.url != "" {
		payload = map[string]any{"action": "closed", "number": pr.Number, "pull_request": out, "repository": s.repoJSON(rp)}
		if in := s.installationFor(rp); in != nil {
			payload["installation"] = map[string]any{"id": in.ID}
		}
	}
	return out, payload
}

type createCommentRequest struct {
	Body *string `json:"body"`
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, c caller, rp *repo, body *createCommentRequest) {
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
}
