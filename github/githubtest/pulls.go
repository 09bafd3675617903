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
	return map[string]any{
		"id": pr.ID, "number": pr.Number, "state": pr.State, "title": pr.Title, "body": pr.Body,
		"draft": pr.Draft, "merged": pr.Merged,
		"head":       map[string]any{"ref": pr.Head, "sha": pr.HeadSHA, "label": rp.Owner + ":" + pr.Head},
		"base":       map[string]any{"ref": pr.Base, "label": rp.Owner + ":" + pr.Base},
		"url":        s.apiURL("/repos/%s/pulls/%d", full, pr.Number),
		"html_url":   s.webURL(fmt.Sprintf("%s/pull/%d", full, pr.Number)),
		"created_at": pr.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func (s *Server) commitJSON(rp *repo, sha string, c gitCommit) map[string]any {
	parents := []any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"sha": p})
	}
	return map[string]any{
		"sha": sha, "message": c.Message, "tree": map[string]any{"sha": c.Tree}, "parents": parents,
		"url": s.apiURL("/repos/%s/%s/git/commits/%s", rp.Owner, rp.Name, sha),
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
		writeJSON(w, http.StatusOK, map[string]any{
			"type": "file", "encoding": "base64", "name": pathBase(path), "path": path, "size": len(content),
			"sha": fakeSHA("blob:" + content), "content": base64.StdEncoding.EncodeToString([]byte(content)),
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
		if s.requireRepo(w, r, c, "contents", "write") == nil {
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
		writeJSON(w, http.StatusCreated, map[string]any{"sha": sha, "truncated": false})
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
		writeJSON(w, http.StatusCreated, map[string]any{"ref": body.Ref, "object": map[string]any{"sha": body.SHA, "type": "commit"}})
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
		writeJSON(w, http.StatusOK, map[string]any{"ref": "refs/heads/" + branch, "object": map[string]any{"sha": body.SHA, "type": "commit"}})
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
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("A pull request already exists for %s:%s.", rp.Owner, head))
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
