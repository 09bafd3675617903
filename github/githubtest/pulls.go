package githubtest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PullRequest is a pull request in the fake.
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

// gitState holds the git objects the fake knows: commits and trees, just
// enough for branches, commits of file changes and pull requests.
type gitState struct {
	commits map[string]gitCommit
	trees   map[string]map[string]string // tree sha -> path -> content
	pulls   map[string][]*PullRequest    // lower-case owner/repo -> pulls
}

type gitCommit struct {
	Tree    string
	Parents []string
	Message string
}

const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904" // git's empty tree

func (s *Server) git() *gitState {
	if s.gitObjects == nil {
		s.gitObjects = &gitState{commits: map[string]gitCommit{}, trees: map[string]map[string]string{emptyTree: {}}, pulls: map[string][]*PullRequest{}}
	}
	return s.gitObjects
}

// commit returns the commit a branch head points at, creating the
// initial (empty) commit for heads made by AddRepo or AddBranch.
func (g *gitState) commit(sha string) gitCommit {
	c, ok := g.commits[sha]
	if !ok {
		c = gitCommit{Tree: emptyTree, Message: "Initial commit"}
		g.commits[sha] = c
	}
	return c
}

// File returns the content of path on a branch, as committed through the
// git API.
func (s *Server) File(owner, name, branch, path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.repos[strings.ToLower(owner+"/"+name)]
	if rp == nil {
		return "", false
	}
	sha, ok := rp.branches[branch]
	if !ok {
		return "", false
	}
	g := s.git()
	content, ok := g.trees[g.commit(sha).Tree][path]
	return content, ok
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

func (s *Server) commitJSON(rp *repo, sha string, c gitCommit) map[string]any {
	full := rp.Owner + "/" + rp.Name
	parents := []any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"sha": p, "url": s.apiURL("/repos/%s/git/commits/%s", full, p),
			"html_url": s.webURL(full + "/commit/" + p)})
	}
	at := rp.createdAt.UTC().Format(time.RFC3339)
	return map[string]any{
		"sha": sha, "node_id": nodeID("C", int64(len(sha))) + sha[:min(8, len(sha))], "message": c.Message,
		"tree":    map[string]any{"sha": c.Tree, "url": s.apiURL("/repos/%s/git/trees/%s", full, c.Tree)},
		"parents": parents, "author": gitUserJSON(at), "committer": gitUserJSON(at), "verification": unverified,
		"url":      s.apiURL("/repos/%s/git/commits/%s", full, sha),
		"html_url": s.webURL(full + "/commit/" + sha),
	}
}

func (s *Server) pullRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /repos/{owner}/{repo}/git/commits/{sha}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "read")
		if rp == nil {
			return
		}
		sha := r.PathValue("sha")
		g := s.git()
		if _, ok := g.commits[sha]; !ok && !slices.Contains(slices.Collect(maps.Values(rp.branches)), sha) {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, s.commitJSON(rp, sha, g.commit(sha)))
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/contents/{path...}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "read")
		if rp == nil {
			return
		}
		ref := cmp.Or(r.URL.Query().Get("ref"), rp.DefaultBranch)
		sha, ok := rp.branches[strings.TrimPrefix(ref, "refs/heads/")]
		if !ok {
			writeError(w, http.StatusNotFound, "No commit found for the ref "+ref)
			return
		}
		path := r.PathValue("path")
		content, found := s.git().trees[s.git().commit(sha).Tree][path]
		if !found {
			for _, wf := range rp.workflows {
				if wf.Path == path {
					content, found = WorkflowYAML(*wf), true
				}
			}
		}
		if !found {
			notFound(w)
			return
		}
		blob := fakeSHA("blob:" + content)
		self := s.apiURL("/repos/%s/%s/contents/%s?ref=%s", rp.Owner, rp.Name, path, ref)
		git := s.apiURL("/repos/%s/%s/git/blobs/%s", rp.Owner, rp.Name, blob)
		html := s.webURL(fmt.Sprintf("%s/%s/blob/%s/%s", rp.Owner, rp.Name, ref, path))
		writeJSON(w, http.StatusOK, map[string]any{
			"type": "file", "encoding": "base64", "name": pathBase(path), "path": path, "size": len(content),
			"sha": blob, "content": base64.StdEncoding.EncodeToString([]byte(content)),
			"url": self, "git_url": git, "html_url": html, "download_url": nil,
			"_links": map[string]any{"self": self, "git": git, "html": html},
		})
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/git/trees", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			BaseTree string `json:"base_tree"`
			Tree     []struct {
				Path    string  `json:"path"`
				Mode    string  `json:"mode"`
				Type    string  `json:"type"`
				Content *string `json:"content"`
			} `json:"tree"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "write")
		if rp == nil {
			return
		}
		g := s.git()
		files := map[string]string{}
		if body.BaseTree != "" {
			base, ok := g.trees[body.BaseTree]
			if !ok {
				invalid(w, "base_tree is not a valid tree")
				return
			}
			maps.Copy(files, base)
		}
		for _, e := range body.Tree {
			switch {
			case e.Path == "" || strings.HasPrefix(e.Path, "/"):
				invalid(w, fmt.Sprintf("tree.path %q is invalid", e.Path))
				return
			case e.Content == nil:
				invalid(w, "the fake supports tree entries with content only")
				return
			default:
				files[e.Path] = *e.Content
			}
		}
		b, _ := json.Marshal(files)
		sha := fakeSHA("tree:" + string(b))
		g.trees[sha] = files
		full := rp.Owner + "/" + rp.Name
		entries := []any{}
		for _, p := range slices.Sorted(maps.Keys(files)) {
			blob := fakeSHA("blob:" + files[p])
			entries = append(entries, map[string]any{"path": p, "mode": "100644", "type": "blob", "sha": blob,
				"size": len(files[p]), "url": s.apiURL("/repos/%s/git/blobs/%s", full, blob)})
		}
		writeJSON(w, http.StatusCreated, map[string]any{"sha": sha, "truncated": false, "tree": entries,
			"url": s.apiURL("/repos/%s/git/trees/%s", full, sha)})
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/git/commits", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			Message string   `json:"message"`
			Tree    string   `json:"tree"`
			Parents []string `json:"parents"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "write")
		if rp == nil {
			return
		}
		g := s.git()
		if _, ok := g.trees[body.Tree]; !ok || body.Message == "" {
			invalid(w, "tree must be an existing tree and message is required")
			return
		}
		cm := gitCommit{Tree: body.Tree, Parents: body.Parents, Message: body.Message}
		sha := fakeSHA(fmt.Sprintf("commit:%s:%v:%s:%d", body.Tree, body.Parents, body.Message, s.id()))
		g.commits[sha] = cm
		writeJSON(w, http.StatusCreated, s.commitJSON(rp, sha, cm))
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/git/refs", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "write")
		if rp == nil {
			return
		}
		branch, ok := strings.CutPrefix(body.Ref, "refs/heads/")
		if !ok || branch == "" {
			invalid(w, "ref must start with refs/heads/")
			return
		}
		if _, exists := rp.branches[branch]; exists {
			writeError(w, http.StatusUnprocessableEntity, "Reference already exists")
			return
		}
		if _, ok := s.git().commits[body.SHA]; !ok && !slices.Contains(slices.Collect(maps.Values(rp.branches)), body.SHA) {
			writeError(w, http.StatusUnprocessableEntity, "Object does not exist")
			return
		}
		rp.branches[branch] = body.SHA
		writeJSON(w, http.StatusCreated, s.refJSON(rp, body.Ref, body.SHA))
	})
	s.handle(mux, "PATCH /repos/{owner}/{repo}/git/refs/{ref...}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			SHA   string `json:"sha"`
			Force bool   `json:"force"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "contents", "write")
		if rp == nil {
			return
		}
		branch, ok := strings.CutPrefix(r.PathValue("ref"), "heads/")
		if _, exists := rp.branches[branch]; !ok || !exists {
			writeError(w, http.StatusUnprocessableEntity, "Reference does not exist")
			return
		}
		rp.branches[branch] = body.SHA
		writeJSON(w, http.StatusOK, s.refJSON(rp, "refs/heads/"+branch, body.SHA))
	})
	s.handle(mux, "POST /repos/{owner}/{repo}/pulls", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		var body struct {
			Title string `json:"title"`
			Head  string `json:"head"`
			Base  string `json:"base"`
			Body  string `json:"body"`
			Draft bool   `json:"draft"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "pull_requests", "write")
		if rp == nil {
			return
		}
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
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/pulls", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "pull_requests", "read")
		if rp == nil {
			return
		}
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
	})
	s.handle(mux, "GET /repos/{owner}/{repo}/pulls/{number}", authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp := s.requireRepo(w, r, c, "pull_requests", "read")
		if rp == nil {
			return
		}
		n, _ := strconv.Atoi(r.PathValue("number"))
		for _, p := range s.git().pulls[strings.ToLower(rp.Owner+"/"+rp.Name)] {
			if p.Number == n {
				writeJSON(w, http.StatusOK, s.pullJSON(rp, p))
				return
			}
		}
		notFound(w)
	})
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
