package githubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Repo is a repository in the fake. Hosts add the repositories their tests
// dispatch to (AddRepo).
type Repo struct {
	Owner, Name string
	// DefaultBranch defaults to "main".
	DefaultBranch string
	// Branches exist besides DefaultBranch.
	Branches  []string
	Workflows []Workflow
	Private   bool
}

// Workflow is a workflow file of a repository. Hosts declare the workflows
// of a Repo with it: its triggers, inputs and run-name decide how the fake
// answers a dispatch.
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

	minimalOnce sync.Once
	minimal     json.RawMessage // see minimalRepoJSON
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

// AddBranch creates a branch in a repository. Hosts add the refs their jobs
// run on besides the default branch.
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

// repoRoutes serves repositories and their branches.
func (s *Server) repoRoutes(mux router) {
	s.handleRepo(mux, "GET /repos/{owner}/{repo}", "metadata", "read", s.getRepo)
	s.handleRepo(mux, "GET /repos/{owner}/{repo}/branches/{branch}", "contents", "read", s.getBranch)
}

func (s *Server) getRepo(w http.ResponseWriter, _ *http.Request, _ caller, rp *repo) {
	writeJSON(w, http.StatusOK, s.repoJSON(rp))
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request, _ caller, rp *repo) {
	sha, ok := rp.branches[r.PathValue("branch")]
	if !ok {
		writeError(w, http.StatusNotFound, "Branch not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("branch"), "commit": map[string]any{"sha": sha}})
}

// Workflows returns the workflows of a repository, with their ids. Hosts
// read the ids for job configs that name a workflow by id.
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

// workflowYAML renders the workflow file the fake serves for wf: its
// name, run-name and triggers, as a user would write them.
func workflowYAML(wf Workflow) string {
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
