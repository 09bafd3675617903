package githubtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// reporter collects contract mismatches instead of failing the test.
type reporter struct {
	mu   sync.Mutex
	msgs []string
}

func (r *reporter) Helper() {}
func (r *reporter) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func TestContractViolationsAreReported(t *testing.T) {
	t.Parallel()
	rep := &reporter{}
	srv := githubtest.NewServer(githubtest.WithContract(rep))
	t.Cleanup(srv.Close)
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	srv.AddStaticToken("ghp_x")
	// inputs must be an object: GitHub's description refuses a string.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"repos/acme/deployer/actions/workflows/deploy.yml/dispatches",
		strings.NewReader(`{"ref": "main", "inputs": "not an object"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "token ghp_x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	require.NotEmpty(t, rep.msgs, "the request breaks the contract")
	assert.Contains(t, rep.msgs[0], "githubtest contract")
}

func TestWithAppID(t *testing.T) {
	t.Parallel()
	srv := githubtest.New(t, githubtest.WithAppID(777))
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api"})
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	app := srv.AppConfig()
	require.Equal(t, int64(777), app.AppID)
	app.ClientID = "" // the App id is the JWT issuer then
	clients, err := github.NewClientFactory(github.WithBaseURL(srv.URL))
	require.NoError(t, err)
	tokens, err := clients.TokenCache(app)
	require.NoError(t, err)
	_, err = tokens.Token(context.Background(), inst.ID)
	require.NoError(t, err, "GitHub knows the App by the id it was given")
	app.AppID = 4242
	other, err := clients.TokenCache(app)
	require.NoError(t, err)
	_, err = other.Token(context.Background(), inst.ID)
	require.Error(t, err, "and no longer by the default id")
}

// A zero or nil option argument means the option's default.
func TestZeroOptionsMeanDefaults(t *testing.T) {
	t.Parallel()
	srv := githubtest.New(t, githubtest.WithClock(nil), githubtest.WithTokenLifetime(0), githubtest.WithoutRunDetails(0))
	srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	clients, err := github.NewClientFactory(github.WithBaseURL(srv.URL))
	require.NoError(t, err)
	tokens, err := clients.TokenCache(srv.AppConfig())
	require.NoError(t, err)
	tok, err := tokens.Token(context.Background(), inst.ID)
	require.NoError(t, err, "the default clock")
	assert.WithinDuration(t, srv.Now().Add(time.Hour), tok.ExpiresAt, time.Minute, "the default token lifetime")

	req, err := http.NewRequest(http.MethodPost, srv.URL+"repos/acme/api/actions/workflows/deploy.yml/dispatches",
		strings.NewReader(`{"ref": "main", "return_run_details": true}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "token "+tok.Value.Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "return_run_details refused with GitHub's 422")
}

// WithLeanRuns lists runs with the identity of their repository only;
// without it a run's repository is a whole minimal-repository.
func TestWithLeanRuns(t *testing.T) {
	t.Parallel()
	for _, lean := range []bool{false, true} {
		var srv *githubtest.Server
		if lean {
			// Not GitHub's shape: without the contract.
			srv = githubtest.NewServer(githubtest.WithLeanRuns())
			t.Cleanup(srv.Close)
		} else {
			srv = githubtest.New(t)
		}
		srv.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
		srv.AddStaticToken("ghp_x")
		run, err := srv.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: srv.Workflows("acme", "api")[0].ID})
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodGet, srv.URL+"repos/acme/api/actions/runs", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "token ghp_x")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		var page struct {
			Runs []struct {
				ID         int64
				Repository map[string]any
				HeadRepo   map[string]any `json:"head_repository"`
			} `json:"workflow_runs"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
		require.Len(t, page.Runs, 1)
		assert.Equal(t, run.ID, page.Runs[0].ID)
		for _, repo := range []map[string]any{page.Runs[0].Repository, page.Runs[0].HeadRepo} {
			assert.Equal(t, "acme/api", repo["full_name"], "lean: %v", lean)
			assert.Equal(t, "acme", repo["owner"].(map[string]any)["login"], "lean: %v", lean)
			_, templates := repo["archive_url"]
			assert.Equal(t, !lean, templates, "lean: %v", lean)
		}
	}
}
