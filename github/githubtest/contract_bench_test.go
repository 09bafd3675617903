package githubtest_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

// BenchmarkContract measures what checking requests and answers against
// GitHub's description costs per request: compare contract to plain.
func BenchmarkContract(b *testing.B) {
	for _, name := range []string{"plain", "contract"} {
		b.Run(name, func(b *testing.B) {
			var opts []githubtest.Option
			if name == "contract" {
				opts = append(opts, githubtest.WithContract(b))
			}
			s := githubtest.NewServer(opts...)
			defer s.Close()
			s.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy"}}})
			s.AddStaticToken("tok")
			get := func(path string) {
				req, _ := http.NewRequest("GET", s.URL+path, nil)
				req.Header.Set("Authorization", "Bearer tok")
				resp, err := s.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			post := func(path, body string) {
				req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer tok")
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			// One run; the loop's requests change nothing that grows.
			post("repos/acme/api/actions/workflows/deploy.yml/dispatches", `{"ref":"main"}`)
			run := s.Runs()[0]
			for b.Loop() {
				get("repos/acme/api")
				get("repos/acme/api/actions/runs/" + strconv.FormatInt(run.ID, 10))
				get("repos/acme/api/actions/workflows/deploy.yml")
			}
		})
	}
}
