package githubtest

import "net/http"

// PullRequest is a pull request in the fake.
type PullRequest struct {
	Number int
}

func (s *Server) pullRoutes(mux *http.ServeMux) {}
