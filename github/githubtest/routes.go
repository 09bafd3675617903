package githubtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// router is what routes are registered on: a Server's handlers, or a
// ServeMux.
type router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// handlers holds one Server's handler of each route, by pattern.
type handlers map[string]http.HandlerFunc

func (h handlers) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	h[pattern] = handler
}

// serverKey is the request context key of the Server a request reached.
type serverKey struct{}

// sharedMux matches requests to routes for every Server of the process:
// registering the patterns of a ServeMux cost more than all the rest of
// NewServer. Each pattern's handler calls the one of the Server that
// received the request (record puts it in the request's context). The
// routes are the same for every Server; options change what the
// handlers do, not which there are.
var sharedMux = sync.OnceValue(func() http.Handler {
	var patterns Server
	api, web := handlers{}, handlers{}
	patterns.routes(api)
	patterns.webRoutes(web)
	apiMux, webMux := http.NewServeMux(), http.NewServeMux()
	for p := range api {
		apiMux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			r.Context().Value(serverKey{}).(*Server).api[p](w, r)
		})
	}
	for p := range web {
		webMux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			r.Context().Value(serverKey{}).(*Server).web[p](w, r)
		})
	}
	webMux.Handle(apiPrefix+"/", http.StripPrefix(apiPrefix, apiMux))
	return webMux
})

// routes registers every route the fake serves under APIPrefix.
func (s *Server) routes(mux router) {
	s.appRoutes(mux)
	s.repoRoutes(mux)
	s.actionsRoutes(mux)
	s.dispatchRoutes(mux)
	s.deploymentRoutes(mux)
	s.checkRoutes(mux)
	s.gitRoutes(mux)
	s.pullRoutes(mux)
	s.controlRoutes(mux)
	s.hookRoutes(mux)
	s.repoHookRoutes(mux)
	s.userRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Not Found (the fake does not serve %s %s)", r.Method, r.URL.Path))
	})
}

// repoHandler serves a request on the repository rp, which the caller
// may use; s.mu is held.
type repoHandler func(w http.ResponseWriter, r *http.Request, c caller, rp *repo)

// handleRepo registers a route on a repository for installation and
// static tokens. The handler runs with s.mu held, after the repository
// was opened with requireRepo(perm, level).
func (s *Server) handleRepo(mux router, pattern, perm, level string, h repoHandler) {
	s.handle(mux, pattern, authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if rp := s.requireRepo(w, r, c, perm, level); rp != nil {
			h(w, r, c, rp)
		}
	})
}

// validator is a request body that checks its own fields. validate
// returns the detail of GitHub's "Invalid request." answer, "" when the
// body is valid.
type validator interface{ validate() string }

// handleRepoJSON is handleRepo for a route with a JSON body of type B.
// The body is read, and checked when *B is a validator, before s.mu is
// taken and the repository opened: as on GitHub, a malformed request is
// refused before anything is looked up.
func handleRepoJSON[B any](s *Server, mux router, pattern, perm, level string, h func(w http.ResponseWriter, r *http.Request, c caller, rp *repo, body *B)) {
	s.handle(mux, pattern, authToken, func(w http.ResponseWriter, r *http.Request, c caller) {
		body := new(B)
		if !readBody(w, r, body) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if rp := s.requireRepo(w, r, c, perm, level); rp != nil {
			h(w, r, c, rp, body)
		}
	})
}

// readBody reads a JSON body into v and checks it when v is a validator;
// it answers and returns false when the body is malformed or invalid.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if !readJSON(w, r, v) {
		return false
	}
	if b, ok := v.(validator); ok {
		if msg := b.validate(); msg != "" {
			invalid(w, msg)
			return false
		}
	}
	return true
}

// lockRepo takes s.mu and opens the request's repository, for handlers
// that release s.mu before they finish (to answer, deliver webhooks or
// call methods that take s.mu). When the repository cannot be used it
// answers, releases s.mu and returns nil.
func (s *Server) lockRepo(w http.ResponseWriter, r *http.Request, c caller, perm, level string) *repo {
	s.mu.Lock()
	rp := s.requireRepo(w, r, c, perm, level)
	if rp == nil {
		s.mu.Unlock()
	}
	return rp
}

// requireRepo finds the repository of the request and checks that the
// caller may use it with the permission (e.g. "actions", "write"). It
// writes GitHub's answer and returns nil when not. s.mu is held.
func (s *Server) requireRepo(w http.ResponseWriter, r *http.Request, c caller, perm, level string) *repo {
	rp := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	if rp == nil {
		notFound(w)
		return nil
	}
	if c.static {
		return rp
	}
	if c.installation == nil || !c.installation.grants(rp.Owner, rp.Name) {
		notFound(w)
		return nil
	}
	if perm != "" && !c.installation.can(perm, level) {
		writeError(w, http.StatusForbidden, "Resource not accessible by integration")
		return nil
	}
	return rp
}

// invalid answers 422 "Invalid request." with detail, as GitHub does
// when a body does not match the operation's schema.
func invalid(w http.ResponseWriter, detail string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+detail)
}
