package githubtest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

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

// File returns the content of path on a branch, as committed through the git
// API. Hosts whose jobs open pull requests check the committed files with
// it.
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

// gitRoutes serves file contents and the git database: commits, trees
// and branch refs.
func (s *Server) gitRoutes(mux router) {
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/git/commits/{sha}", "contents", "read", s.getCommit)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/contents/{path...}", "contents", "read", s.getContents)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/git/ref/{ref...}", "contents", "read", s.getRef)
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/git/trees", "contents", "write", s.createTree)
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/git/commits", "contents", "write", s.createCommit)
	handleRepoJSON(s, mux, "POST /repos/{owner}/{repo}/git/refs", "contents", "write", s.createRef)
	handleRepoJSON(s, mux, "PATCH /repos/{owner}/{repo}/git/refs/{ref...}", "contents", "write", s.updateRef)
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	sha := r.PathValue("sha")
	g := s.git()
	if _, ok := g.commits[sha]; !ok && !slices.Contains(slices.Collect(maps.Values(rp.branches)), sha) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.commitJSON(rp, sha, g.commit(sha)))
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
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
				content, found = workflowYAML(*wf), true
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
}

func (s *Server) getRef(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	ref := r.PathValue("ref")
	b, ok := strings.CutPrefix(ref, "heads/")
	sha, exists := rp.branches[b]
	if !ok || !exists {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.refJSON(rp, "refs/"+ref, sha))
}

type createTreeRequest struct {
	BaseTree string `json:"base_tree"`
	Tree     []struct {
		Path    string  `json:"path"`
		Mode    string  `json:"mode"`
		Type    string  `json:"type"`
		Content *string `json:"content"`
	} `json:"tree"`
}

func (s *Server) createTree(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo, body *createTreeRequest) {
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
}

type createCommitRequest struct {
	Message string   `json:"message"`
	Tree    string   `json:"tree"`
	Parents []string `json:"parents"`
}

func (s *Server) createCommit(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo, body *createCommitRequest) {
	g := s.git()
	if _, ok := g.trees[body.Tree]; !ok || body.Message == "" {
		invalid(w, "tree must be an existing tree and message is required")
		return
	}
	cm := gitCommit{Tree: body.Tree, Parents: body.Parents, Message: body.Message}
	sha := fakeSHA(fmt.Sprintf("commit:%s:%v:%s:%d", body.Tree, body.Parents, body.Message, s.id()))
	g.commits[sha] = cm
	writeJSON(w, http.StatusCreated, s.commitJSON(rp, sha, cm))
}

type createRefRequest struct {
	Ref string `json:"ref"`
	SHA string `json:"sha"`
}

func (s *Server) createRef(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo, body *createRefRequest) {
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
}

type updateRefRequest struct {
	SHA   string `json:"sha"`
	Force bool   `json:"force"`
}

func (s *Server) updateRef(w http.ResponseWriter, r *http.Request, _ caller, rp *repo, body *updateRefRequest) {
	branch, ok := strings.CutPrefix(r.PathValue("ref"), "heads/")
	if _, exists := rp.branches[branch]; !ok || !exists {
		writeError(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	rp.branches[branch] = body.SHA
	writeJSON(w, http.StatusOK, s.refJSON(rp, "refs/heads/"+branch, body.SHA))
}

func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
