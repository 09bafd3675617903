package githubtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/github/githubtest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fake struct {
	*githubtest.Server
	clock *clock
	inst  githubtest.AppInstallation
	token string
}

func newFake(t *testing.T, opts ...githubtest.Option) *fake {
	t.Helper()
	c := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := githubtest.New(t, append([]githubtest.Option{githubtest.WithClock(c.Now)}, opts...)...)
	s.AddRepo(githubtest.Repo{Owner: "acme", Name: "api", Branches: []string{"release"}, Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id", "version"}, RequiredInputs: []string{"job_id"}},
		{Name: "any", Path: ".github/workflows/any.yml"},
		{Name: "push", NoDispatch: true},
		{Name: "off", Disabled: true},
		{Name: "event", RepositoryDispatchTypes: []string{"ship"}, RunName: "Ship ${{ github.event.client_payload.job_id }}"},
	}})
	s.AddRepo(githubtest.Repo{Owner: "acme", Name: "private"})
	f := &fake{Server: s, clock: c}
	f.inst = s.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/api"}})
	f.token = f.exchange(t, f.inst.ID)
	return f
}

// refusals collects contract violations of a test that sends requests
// GitHub refuses on purpose: each must be a request mismatch (the
// contract caught the bad request), and there must be some.
type refusals struct {
	mu   sync.Mutex
	msgs []string
}

func (r *refusals) Helper() {}

func (r *refusals) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func refusedByContract(t *testing.T) githubtest.Option {
	t.Helper()
	r := &refusals{}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		assert.NotEmpty(t, r.msgs, "the contract saw none of the requests GitHub refuses")
		for _, m := range r.msgs {
			assert.Contains(t, m, "request does not match GitHub's description")
		}
	})
	return githubtest.WithContract(r)
}

func (f *fake) jwt(t *testing.T, mutate func(*jwt.RegisteredClaims), key *rsa.PrivateKey) string {
	t.Helper()
	now := f.clock.Now()
	c := jwt.RegisteredClaims{Issuer: strconv.FormatInt(f.AppID, 10), IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))}
	if mutate != nil {
		mutate(&c)
	}
	if key == nil {
		key = f.PrivateKey()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
	require.NoError(t, err)
	return s
}

func (f *fake) call(t *testing.T, method, path, auth string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(f.URL, "/")+path, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, resp.Header
}

func (f *fake) exchange(t *testing.T, id int64) string {
	t.Helper()
	code, body, _ := f.call(t, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", id), f.jwt(t, nil, nil), nil)
	require.Equal(t, 201, code, body)
	return body["token"].(string)
}

// TestAppKey: the App key is the fixed test key, of the size GitHub issues,
// and what PrivateKeyPEM hands out is the key the fake verifies with.
func TestAppKey(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	key := f.PrivateKey()
	require.Equal(t, 2048, key.N.BitLen())
	block, _ := pem.Decode([]byte(f.PrivateKeyPEM()))
	require.NotNil(t, block)
	parsed, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.True(t, parsed.Equal(key))
	require.True(t, githubtest.New(t).PrivateKey().Equal(key), "every fake has the same key")
}

func TestJWTChecks(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	// Any key but the App's; 1024 bits, the smallest Go generates, takes
	// a fifth of the time of 2048 under the race detector.
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	now := f.clock.Now()
	for _, tc := range []struct {
		name   string
		token  string
		code   int
		reason string
	}{
		{"valid app id issuer", f.jwt(t, nil, nil), 200, ""},
		{"valid client id issuer", f.jwt(t, func(c *jwt.RegisteredClaims) { c.Issuer = f.ClientID }, nil), 200, ""},
		{"other key", f.jwt(t, nil, other), 401, "could not be decoded"},
		{"wrong issuer", f.jwt(t, func(c *jwt.RegisteredClaims) { c.Issuer = "999" }, nil), 401, "Integration not found"},
		{"no iat", f.jwt(t, func(c *jwt.RegisteredClaims) { c.IssuedAt = nil }, nil), 401, "'Issued at'"},
		{"no exp", f.jwt(t, func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }, nil), 401, "'Expiration time'"},
		{"expired", f.jwt(t, func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }, nil), 401, "'Expiration time'"},
		{"exp too far", f.jwt(t, func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(11 * time.Minute)) }, nil), 401, "too far in the future"},
		{"iat in the future", f.jwt(t, func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) }, nil), 401, "'Issued at'"},
		{"garbage", "not.a.jwt", 401, "could not be decoded"},
		{"none", "", 401, "Requires authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := f.call(t, "GET", "/app", tc.token, nil)
			assert.Equal(t, tc.code, code)
			if tc.reason != "" {
				assert.Contains(t, body["message"], tc.reason)
				assert.NotEmpty(t, body["documentation_url"])
			}
		})
	}
	code, _, _ := f.call(t, "GET", "/app", f.token, nil)
	assert.Equal(t, 401, code, "an installation token is not an App JWT")
}

func TestInstallationTokens(t *testing.T) {
	t.Parallel()
	f := newFake(t, githubtest.WithTokenLifetime(10*time.Minute))
	assert.Equal(t, 1, f.TokenExchanges(f.inst.ID))
	code, body, _ := f.call(t, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", f.inst.ID), f.jwt(t, nil, nil), nil)
	require.Equal(t, 201, code)
	exp, err := time.Parse(time.RFC3339, body["expires_at"].(string))
	require.NoError(t, err)
	assert.Equal(t, f.clock.Now().Add(10*time.Minute), exp)
	assert.Equal(t, "write", body["permissions"].(map[string]any)["actions"])
	assert.Equal(t, 2, f.TokenExchanges(f.inst.ID))
	assert.Equal(t, 2, f.TotalTokenExchanges())
	assert.Len(t, f.IssuedTokens(), 2)

	code, _, _ = f.call(t, "GET", "/repos/acme/api", f.token, nil)
	assert.Equal(t, 200, code)
	f.clock.Add(11 * time.Minute)
	code, body, _ = f.call(t, "GET", "/repos/acme/api", f.token, nil)
	assert.Equal(t, 401, code, "expired")
	assert.Equal(t, "Bad credentials", body["message"])

	code, _, _ = f.call(t, "POST", "/app/installations/424242/access_tokens", f.jwt(t, nil, nil), nil)
	assert.Equal(t, 404, code)
	tok := f.exchange(t, f.inst.ID)
	f.SetSuspended(f.inst.ID, true)
	code, body, _ = f.call(t, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", f.inst.ID), f.jwt(t, nil, nil), nil)
	assert.Equal(t, 403, code)
	assert.Equal(t, "This installation has been suspended", body["message"])
	code, _, _ = f.call(t, "GET", "/repos/acme/api", tok, nil)
	assert.Equal(t, 403, code, "a suspended installation's token is refused")
	f.SetSuspended(f.inst.ID, false)
	f.DeleteInstallation(f.inst.ID)
	code, _, _ = f.call(t, "GET", "/repos/acme/api", tok, nil)
	assert.Equal(t, 401, code, "tokens die with their installation")
	code, _, _ = f.call(t, "POST", fmt.Sprintf("/app/installations/%d/access_tokens", f.inst.ID), f.jwt(t, nil, nil), nil)
	assert.Equal(t, 404, code)
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	code, _, _ := f.call(t, "GET", "/repos/acme/private", f.token, nil)
	assert.Equal(t, 404, code, "a repository the installation does not grant is hidden")
	code, _, _ = f.call(t, "GET", "/repos/acme/nope", f.token, nil)
	assert.Equal(t, 404, code)
	code, _, _ = f.call(t, "GET", "/repos/acme/api", "", nil)
	assert.Equal(t, 401, code)
	f.AddStaticToken("ghp_all")
	code, _, _ = f.call(t, "GET", "/repos/acme/private", "ghp_all", nil)
	assert.Equal(t, 200, code, "static tokens see everything")
	code, body, _ := f.call(t, "GET", "/installation/repositories", f.token, nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 1, body["total_count"])

	f.SetPermissions(f.inst.ID, map[string]string{"metadata": "read", "actions": "read"})
	code, body, _ = f.call(t, "POST", "/repos/acme/api/actions/workflows/deploy.yml/dispatches", f.token, map[string]any{"ref": "main", "inputs": map[string]string{"job_id": "1"}})
	assert.Equal(t, 403, code)
	assert.Equal(t, "Resource not accessible by integration", body["message"])
	code, _, _ = f.call(t, "GET", "/repos/acme/api/actions/workflows", f.token, nil)
	assert.Equal(t, 200, code, "read still works")

	code, body, _ = f.call(t, "GET", "/not/a/route", f.token, nil)
	assert.Equal(t, 404, code)
	assert.Contains(t, body["message"], "does not serve")
	resp, err := f.Client().Get(strings.TrimSuffix(f.URL, "/api/v3/") + "/repos/acme/api")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "the API lives under /api/v3/")
	assert.True(t, strings.HasSuffix(f.URL, "/api/v3/"))
}

func TestWorkflowDispatch(t *testing.T) {
	t.Parallel()
	f := newFake(t, refusedByContract(t))
	dispatch := func(workflow string, body map[string]any) (int, map[string]any) {
		code, b, _ := f.call(t, "POST", "/repos/acme/api/actions/workflows/"+workflow+"/dispatches", f.token, body)
		return code, b
	}
	code, body := dispatch("deploy.yml", map[string]any{"ref": "main", "inputs": map[string]string{"job_id": "j-1", "version": "v2"}, "return_run_details": true})
	require.Equal(t, 200, code, body)
	id := int64(body["workflow_run_id"].(float64))
	assert.Contains(t, body["run_url"], fmt.Sprintf("/repos/acme/api/actions/runs/%d", id))
	assert.Contains(t, body["html_url"], fmt.Sprintf("/acme/api/actions/runs/%d", id))
	run, ok := f.GetRun(id)
	require.True(t, ok)
	assert.Equal(t, "Deploy j-1", run.DisplayTitle)
	assert.Equal(t, "workflow_dispatch", run.Event)
	assert.Equal(t, "queued", run.Status)
	assert.Equal(t, "main", run.HeadBranch)
	assert.Equal(t, map[string]string{"job_id": "j-1", "version": "v2"}, run.Inputs)

	var wfID int64
	for _, wf := range f.Workflows("acme", "api") {
		if wf.Name == "any" {
			wfID = wf.ID
		}
	}
	code, _ = dispatch(strconv.FormatInt(wfID, 10), map[string]any{"ref": "refs/heads/release", "inputs": map[string]string{"anything": "goes"}})
	assert.Equal(t, 204, code, "by numeric id, without run details")
	ds := f.Dispatches()
	require.Len(t, ds, 2)
	assert.True(t, ds[0].ReturnRunDetails)
	assert.False(t, ds[1].ReturnRunDetails)
	assert.Equal(t, wfID, ds[1].WorkflowID)
	assert.Equal(t, "release", f.Runs()[1].HeadBranch)
	assert.Equal(t, "any", f.Runs()[1].DisplayTitle, "no run-name: the workflow name")

	many := map[string]string{}
	for i := range 26 {
		many[fmt.Sprint("i", i)] = "v"
	}
	for _, tc := range []struct {
		name, workflow string
		body           map[string]any
		code           int
		msg            string
	}{
		{"no dispatch trigger", "push.yml", map[string]any{"ref": "main"}, 422, "Workflow does not have 'workflow_dispatch' trigger"},
		{"disabled", "off.yml", map[string]any{"ref": "main"}, 422, "disabled workflow"},
		{"ref missing", "any.yml", map[string]any{"ref": "nope"}, 422, "No ref found for: nope"},
		{"no ref", "any.yml", map[string]any{}, 422, `"ref" wasn't supplied`},
		{"unexpected input", "deploy.yml", map[string]any{"ref": "main", "inputs": map[string]string{"job_id": "1", "x": "y"}}, 422, `Unexpected inputs provided: ["x"]`},
		{"required input", "deploy.yml", map[string]any{"ref": "main", "inputs": map[string]string{"version": "1"}}, 422, "Required input 'job_id' not provided"},
		{"too many inputs", "any.yml", map[string]any{"ref": "main", "inputs": many}, 422, "up to 25"},
		{"object input", "any.yml", map[string]any{"ref": "main", "inputs": map[string]any{"n": map[string]any{"a": 1}}}, 422, "is not a string, number or boolean"},
		{"unknown key", "any.yml", map[string]any{"ref": "main", "extra": 1}, 422, `"extra" is not a permitted key`},
		{"unknown workflow", "nope.yml", map[string]any{"ref": "main"}, 404, "Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := dispatch(tc.workflow, tc.body)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, body["message"], tc.msg)
		})
	}
	assert.Len(t, f.Runs(), 2, "rejected dispatches start nothing")
}

func TestWithoutRunDetails(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 422} {
		f := newFake(t, githubtest.WithoutRunDetails(status))
		code, body, _ := f.call(t, "POST", "/repos/acme/api/actions/workflows/any.yml/dispatches", f.token, map[string]any{"ref": "main", "return_run_details": true})
		assert.Equal(t, status, code)
		assert.Contains(t, body["message"], "return_run_details")
		assert.Empty(t, f.Runs())
		code, _, _ = f.call(t, "POST", "/repos/acme/api/actions/workflows/any.yml/dispatches", f.token, map[string]any{"ref": "main"})
		assert.Equal(t, 204, code)
	}
}

func ghClient(t *testing.T, f *fake) *gh.Client {
	t.Helper()
	c := gh.NewClient(f.Client()).WithAuthToken(f.token)
	u, err := c.BaseURL.Parse(f.URL)
	require.NoError(t, err)
	c.BaseURL = u
	return c
}

func TestRunsListing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	c := ghClient(t, f)
	wfs := f.Workflows("acme", "api")
	var runs []githubtest.Run
	for i := range 7 {
		branch := "main"
		if i%2 == 1 {
			branch = "release"
		}
		r, err := f.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: wfs[1].ID, Event: "workflow_dispatch", HeadBranch: branch, DisplayTitle: fmt.Sprint("run ", i)})
		require.NoError(t, err)
		runs = append(runs, r)
		f.clock.Add(time.Minute)
	}
	_, err := f.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: wfs[0].ID})
	require.NoError(t, err)

	list, _, err := c.Actions.ListRepositoryWorkflowRuns(ctx, "acme", "api", &gh.ListWorkflowRunsOptions{Event: "workflow_dispatch"})
	require.NoError(t, err)
	assert.Equal(t, 7, list.GetTotalCount())
	assert.Equal(t, runs[6].ID, list.WorkflowRuns[0].GetID(), "newest first")

	list, _, err = c.Actions.ListWorkflowRunsByFileName(ctx, "acme", "api", "any.yml", &gh.ListWorkflowRunsOptions{Branch: "release"})
	require.NoError(t, err)
	assert.Equal(t, 3, list.GetTotalCount())

	since := runs[4].CreatedAt.Format(time.RFC3339)
	list, _, err = c.Actions.ListWorkflowRunsByID(ctx, "acme", "api", wfs[1].ID, &gh.ListWorkflowRunsOptions{Created: ">=" + since})
	require.NoError(t, err)
	assert.Equal(t, 3, list.GetTotalCount())

	_, err = f.SetRunStatus(runs[0].ID, "completed", "success")
	require.NoError(t, err)
	list, _, err = c.Actions.ListRepositoryWorkflowRuns(ctx, "acme", "api", &gh.ListWorkflowRunsOptions{Status: "success"})
	require.NoError(t, err)
	assert.Equal(t, 1, list.GetTotalCount(), "status filters by conclusion too")

	// Pagination through go-github.
	opts := &gh.ListWorkflowRunsOptions{ListOptions: gh.ListOptions{PerPage: 3}}
	var seen []int64
	for {
		page, resp, err := c.Actions.ListRepositoryWorkflowRuns(ctx, "acme", "api", opts)
		require.NoError(t, err)
		for _, r := range page.WorkflowRuns {
			seen = append(seen, r.GetID())
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	assert.Len(t, seen, 8)

	got, _, err := c.Actions.GetWorkflowRunByID(ctx, "acme", "api", runs[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "success", got.GetConclusion())
	_, resp, err := c.Actions.GetWorkflowRunByID(ctx, "acme", "api", 1)
	require.Error(t, err)
	assert.Equal(t, 404, resp.StatusCode)
}

func TestRunDelay(t *testing.T) {
	t.Parallel()
	f := newFake(t, githubtest.WithRunDelay(5*time.Second))
	code, body, _ := f.call(t, "POST", "/repos/acme/api/actions/workflows/any.yml/dispatches", f.token, map[string]any{"ref": "main", "return_run_details": true})
	require.Equal(t, 200, code)
	path := fmt.Sprintf("/repos/acme/api/actions/runs/%d", int64(body["workflow_run_id"].(float64)))
	code, _, _ = f.call(t, "GET", path, f.token, nil)
	assert.Equal(t, 404, code, "not listed yet")
	f.clock.Add(6 * time.Second)
	code, _, _ = f.call(t, "GET", path, f.token, nil)
	assert.Equal(t, 200, code)
}

func TestRunStates(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	r, err := f.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: f.Workflows("acme", "api")[1].ID})
	require.NoError(t, err)
	for _, bad := range [][2]string{{"flying", ""}, {"completed", ""}, {"in_progress", "success"}, {"completed", "great"}} {
		_, err := f.SetRunStatus(r.ID, bad[0], bad[1])
		assert.Error(t, err, bad)
	}
	_, err = f.SetRunStatus(999, "queued", "")
	assert.Error(t, err)
	a, err := f.SetRunStatus(r.ID, "in_progress", "")
	require.NoError(t, err)
	b, err := f.SetRunStatus(r.ID, "completed", "failure")
	require.NoError(t, err)
	assert.True(t, b.UpdatedAt.After(a.UpdatedAt), "updated_at grows even when the clock stands still")
	re, err := f.RerunRun(r.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, re.RunAttempt)
	assert.Equal(t, "queued", re.Status)
	assert.Empty(t, re.Conclusion)
	_, err = f.CreateRun(githubtest.Run{Owner: "acme", Repo: "nope"})
	assert.Error(t, err)
}

func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	fail := true
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, b)
		if fail && len(got) == 3 {
			w.WriteHeader(500)
		}
	}))
	defer recv.Close()
	f.SetWebhook(recv.URL, "sekret")
	r, err := f.CreateRun(githubtest.Run{Owner: "acme", Repo: "api", WorkflowID: f.Workflows("acme", "api")[1].ID, DisplayTitle: "Deploy j-9"})
	require.NoError(t, err)
	_, err = f.SetRunStatus(r.ID, "queued", "")
	require.NoError(t, err)
	_, err = f.SetRunStatus(r.ID, "in_progress", "")
	require.NoError(t, err)
	_, err = f.SetRunStatus(r.ID, "completed", "success")
	require.Error(t, err, "the receiver answered 500")

	mu.Lock()
	require.Len(t, got, 3)
	for i, action := range []string{"requested", "in_progress", "completed"} {
		req, body := got[i], bodies[i]
		assert.Equal(t, "workflow_run", req.Header.Get("X-GitHub-Event"))
		assert.Len(t, req.Header.Get("X-GitHub-Delivery"), 36)
		assert.Equal(t, githubtest.Sign("sekret", body), req.Header.Get("X-Hub-Signature-256"))
		assert.Equal(t, githubtest.SignSHA1("sekret", body), req.Header.Get("X-Hub-Signature"))
		assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
		var p struct {
			Action      string `json:"action"`
			WorkflowRun struct {
				ID           int64  `json:"id"`
				DisplayTitle string `json:"display_title"`
			} `json:"workflow_run"`
			Repository struct {
				FullName string `json:"full_name"`
			} `json:"repository"`
			Installation struct{ ID int64 } `json:"installation"`
		}
		require.NoError(t, json.Unmarshal(body, &p))
		assert.Equal(t, action, p.Action)
		assert.Equal(t, r.ID, p.WorkflowRun.ID)
		assert.Equal(t, "Deploy j-9", p.WorkflowRun.DisplayTitle)
		assert.Equal(t, "acme/api", p.Repository.FullName)
		assert.Equal(t, f.inst.ID, p.Installation.ID)
	}
	failedGUID := got[2].Header.Get("X-GitHub-Delivery")
	fail = false
	mu.Unlock()

	ds := f.Deliveries()
	require.Len(t, ds, 3)
	assert.Equal(t, 500, ds[2].StatusCode)
	assert.False(t, ds[2].OK())

	// The App's delivery log, newest first, paginated by cursor.
	app := f.jwt(t, nil, nil)
	req, _ := http.NewRequest("GET", f.URL+"app/hook/deliveries?per_page=2", nil)
	req.Header.Set("Authorization", "Bearer "+app)
	resp, err := f.Client().Do(req)
	require.NoError(t, err)
	var page []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.Len(t, page, 2)
	assert.Equal(t, failedGUID, page[0]["guid"])
	assert.EqualValues(t, 500, page[0]["status_code"])
	assert.Equal(t, "Invalid HTTP Response: 500", page[0]["status"])
	assert.Contains(t, resp.Header.Get("Link"), `rel="next"`)

	code, _, _ := f.call(t, "POST", fmt.Sprintf("/app/hook/deliveries/%d/attempts", ds[2].ID), app, nil)
	assert.Equal(t, 202, code)
	f.WaitDeliveries()
	require.Len(t, f.Deliveries(), 4)
	again := f.Deliveries()[3]
	assert.True(t, again.Redelivery)
	assert.Equal(t, failedGUID, again.GUID, "a redelivery keeps the GUID")
	assert.True(t, again.OK())
	code, _, _ = f.call(t, "POST", "/app/hook/deliveries/1/attempts", app, nil)
	assert.Equal(t, 404, code)

	_, err = githubtest.New(t).Deliver("ping", map[string]any{})
	assert.Error(t, err, "no webhook set")
}

func TestFaults(t *testing.T) {
	t.Parallel()
	route := "GET /repos/{owner}/{repo}"
	t.Run("status once", func(t *testing.T) {
		f := newFake(t)
		f.InjectFault(githubtest.Fault{Route: route, Status: 502})
		code, _, _ := f.call(t, "GET", "/repos/acme/api", f.token, nil)
		assert.Equal(t, 502, code)
		code, _, _ = f.call(t, "GET", "/repos/acme/api", f.token, nil)
		assert.Equal(t, 200, code)
		assert.Equal(t, 2, f.RequestCount(route))
	})
	t.Run("until cleared", func(t *testing.T) {
		f := newFake(t)
		f.InjectFault(githubtest.Fault{Route: route, Status: 503, Times: -1})
		for range 3 {
			code, _, _ := f.call(t, "GET", "/repos/acme/api", f.token, nil)
			assert.Equal(t, 503, code)
		}
		f.ClearFaults()
		code, _, _ := f.call(t, "GET", "/repos/acme/api", f.token, nil)
		assert.Equal(t, 200, code)
	})
	t.Run("rate limits are typed by go-github", func(t *testing.T) {
		f := newFake(t)
		c := ghClient(t, f)
		f.InjectFault(githubtest.Fault{Route: route, SecondaryRateLimit: true, RetryAfter: 30 * time.Second})
		_, _, err := c.Repositories.Get(context.Background(), "acme", "api")
		var arl *gh.AbuseRateLimitError
		require.True(t, errors.As(err, &arl), "%T", err)
		assert.Equal(t, 30*time.Second, *arl.RetryAfter)
		f.InjectFault(githubtest.Fault{Route: route, PrimaryRateLimit: true, RetryAfter: time.Hour})
		_, _, err = ghClient(t, f).Repositories.Get(context.Background(), "acme", "api")
		var rl *gh.RateLimitError
		require.True(t, errors.As(err, &rl), "%T", err)
		assert.Equal(t, f.clock.Now().Add(time.Hour).Unix(), rl.Rate.Reset.Unix())
	})
	t.Run("after handling", func(t *testing.T) {
		f := newFake(t)
		f.InjectFault(githubtest.Fault{Route: "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", Status: 502, AfterHandling: true})
		code, _, _ := f.call(t, "POST", "/repos/acme/api/actions/workflows/any.yml/dispatches", f.token, map[string]any{"ref": "main"})
		assert.Equal(t, 502, code)
		assert.Len(t, f.Runs(), 1, "the dispatch took effect before the fault answered")
	})
	t.Run("reset and delay", func(t *testing.T) {
		f := newFake(t)
		f.InjectFault(githubtest.Fault{Route: route, ResetConnection: true})
		req, _ := http.NewRequest("GET", f.URL+"repos/acme/api", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		// A fresh connection: net/http silently retries a GET whose
		// reused connection dies.
		_, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		assert.Error(t, err)
		f.InjectFault(githubtest.Fault{Route: route, Delay: 100 * time.Millisecond})
		start := time.Now()
		code, _, _ := f.call(t, "GET", "/repos/acme/api", f.token, nil)
		assert.Equal(t, 200, code)
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	})
}

func TestRepositoryDispatch(t *testing.T) {
	t.Parallel()
	f := newFake(t, refusedByContract(t))
	code, _, _ := f.call(t, "POST", "/repos/acme/api/dispatches", f.token, map[string]any{"event_type": "ship", "client_payload": map[string]any{"job_id": "j-3"}})
	require.Equal(t, 204, code)
	rd := f.RepositoryDispatches()
	require.Len(t, rd, 1)
	require.Len(t, rd[0].RunIDs, 1)
	run, _ := f.GetRun(rd[0].RunIDs[0])
	assert.Equal(t, "Ship j-3", run.DisplayTitle)
	assert.Equal(t, "repository_dispatch", run.Event)
	many := map[string]any{}
	for i := range 11 {
		many[fmt.Sprint("k", i)] = i
	}
	code, _, _ = f.call(t, "POST", "/repos/acme/api/dispatches", f.token, map[string]any{"event_type": "ship", "client_payload": many})
	assert.Equal(t, 422, code)
	code, _, _ = f.call(t, "POST", "/repos/acme/api/dispatches", f.token, map[string]any{"event_type": strings.Repeat("x", 101)})
	assert.Equal(t, 422, code)
	code, _, _ = f.call(t, "POST", "/repos/acme/api/dispatches", f.token, map[string]any{})
	assert.Equal(t, 422, code)
}

func TestDeploymentsAndChecks(t *testing.T) {
	t.Parallel()
	f := newFake(t, refusedByContract(t))
	code, body, _ := f.call(t, "POST", "/repos/acme/api/deployments", f.token, map[string]any{"ref": "main", "environment": "prod", "payload": map[string]any{"job_id": "j"}, "required_contexts": []string{}})
	require.Equal(t, 201, code, body)
	id := int64(body["id"].(float64))
	code, _, _ = f.call(t, "POST", "/repos/acme/api/deployments", f.token, map[string]any{"ref": "nope"})
	assert.Equal(t, 422, code)
	code, _, _ = f.call(t, "POST", "/repos/acme/api/deployments", f.token, map[string]any{"ref": "main"})
	require.Equal(t, 201, code)
	deps := f.Deployments()
	require.Len(t, deps, 2)
	assert.NotNil(t, deps[0].RequiredContexts)
	assert.Nil(t, deps[1].RequiredContexts, "absent and empty are told apart")
	assert.Equal(t, "production", deps[1].Environment)
	assert.True(t, deps[1].AutoMerge)

	path := fmt.Sprintf("/repos/acme/api/deployments/%d/statuses", id)
	code, _, _ = f.call(t, "POST", path, f.token, map[string]any{"state": "in_progress", "log_url": "https://ci/1"})
	assert.Equal(t, 201, code)
	code, _, _ = f.call(t, "POST", path, f.token, map[string]any{"state": "done"})
	assert.Equal(t, 422, code)
	assert.Equal(t, "https://ci/1", f.Deployments()[0].Statuses[0].LogURL)

	sha := strings.Repeat("a", 40)
	code, body, _ = f.call(t, "POST", "/repos/acme/api/check-runs", f.token, map[string]any{"name": "deploy", "head_sha": sha, "conclusion": "success", "output": map[string]any{"title": "t", "summary": "s"}})
	require.Equal(t, 201, code, body)
	assert.Equal(t, "completed", body["status"], "a conclusion completes the run")
	crID := int64(body["id"].(float64))
	code, _, _ = f.call(t, "POST", "/repos/acme/api/check-runs", f.token, map[string]any{"name": "x", "head_sha": sha, "status": "completed"})
	assert.Equal(t, 422, code)
	code, _, _ = f.call(t, "POST", "/repos/acme/api/check-runs", f.token, map[string]any{"name": "x", "head_sha": sha, "output": map[string]any{"title": "only title"}})
	assert.Equal(t, 422, code)
	code, _, _ = f.call(t, "PATCH", fmt.Sprintf("/repos/acme/api/check-runs/%d", crID), f.token, map[string]any{"conclusion": "failure"})
	assert.Equal(t, 200, code)
	assert.Equal(t, 1, f.CheckRuns()[0].Updates)
	assert.Equal(t, "failure", f.CheckRuns()[0].Conclusion)
	f.AddStaticToken("ghp_pat")
	code, body, _ = f.call(t, "POST", "/repos/acme/api/check-runs", "ghp_pat", map[string]any{"name": "x", "head_sha": sha})
	assert.Equal(t, 403, code)
	assert.Equal(t, "You must authenticate via a GitHub App.", body["message"])
}

func TestGitAndPulls(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := ghClient(t, f)
	ctx := context.Background()
	ref, _, err := c.Git.GetRef(ctx, "acme", "api", "heads/main")
	require.NoError(t, err)
	base := ref.GetObject().GetSHA()
	commit, _, err := c.Git.GetCommit(ctx, "acme", "api", base)
	require.NoError(t, err)
	tree, _, err := c.Git.CreateTree(ctx, "acme", "api", commit.GetTree().GetSHA(), []*gh.TreeEntry{{Path: gh.String("a/b.txt"), Mode: gh.String("100644"), Type: gh.String("blob"), Content: gh.String("hi")}})
	require.NoError(t, err)
	nc, _, err := c.Git.CreateCommit(ctx, "acme", "api", &gh.Commit{Message: gh.String("m"), Tree: tree, Parents: []*gh.Commit{{SHA: gh.String(base)}}}, nil)
	require.NoError(t, err)
	_, _, err = c.Git.CreateRef(ctx, "acme", "api", &gh.Reference{Ref: gh.String("refs/heads/topic"), Object: &gh.GitObject{SHA: nc.SHA}})
	require.NoError(t, err)
	_, _, err = c.Git.CreateRef(ctx, "acme", "api", &gh.Reference{Ref: gh.String("refs/heads/topic"), Object: &gh.GitObject{SHA: nc.SHA}})
	var er *gh.ErrorResponse
	require.True(t, errors.As(err, &er))
	assert.Equal(t, "Reference already exists", er.Message)
	content, ok := f.File("acme", "api", "topic", "a/b.txt")
	require.True(t, ok)
	assert.Equal(t, "hi", content)

	pr, _, err := c.PullRequests.Create(ctx, "acme", "api", &gh.NewPullRequest{Title: gh.String("T"), Head: gh.String("topic"), Base: gh.String("main")})
	require.NoError(t, err)
	assert.Equal(t, 1, pr.GetNumber())
	_, _, err = c.PullRequests.Create(ctx, "acme", "api", &gh.NewPullRequest{Title: gh.String("T"), Head: gh.String("topic"), Base: gh.String("main")})
	require.True(t, errors.As(err, &er))
	assert.Equal(t, 422, er.Response.StatusCode)
	assert.Equal(t, "Validation Failed", er.Message, "GitHub's shape: the detail is in errors[]")
	require.Len(t, er.Errors, 1)
	assert.Equal(t, gh.Error{Resource: "PullRequest", Code: "custom", Message: "A pull request already exists for acme:topic."}, er.Errors[0])
	assert.Contains(t, er.DocumentationURL, "docs.github.com")
	list, _, err := c.PullRequests.List(ctx, "acme", "api", &gh.PullRequestListOptions{Head: "acme:topic", State: "all"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	merged, err := f.MergePull("acme", "api", 1, true)
	require.NoError(t, err)
	assert.True(t, merged.Merged)
	_, err = f.MergePull("acme", "api", 1, true)
	assert.Error(t, err, "already closed")
}

func TestDoctorRoutes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := ghClient(t, f)
	ctx := context.Background()
	file, _, _, err := c.Repositories.GetContents(ctx, "acme", "api", ".github/workflows/deploy.yml", nil)
	require.NoError(t, err)
	text, err := file.GetContent()
	require.NoError(t, err)
	assert.Contains(t, text, "workflow_dispatch:")
	assert.Contains(t, text, "run-name: Deploy ${{ inputs.job_id }}")
	assert.Contains(t, text, "job_id:\n        required: true")
	_, _, resp, err := c.Repositories.GetContents(ctx, "acme", "api", "nope.txt", nil)
	require.Error(t, err)
	assert.Equal(t, 404, resp.StatusCode)
	file, _, _, err = c.Repositories.GetContents(ctx, "acme", "api", ".github/workflows/push.yml", nil)
	require.NoError(t, err)
	text, err = file.GetContent()
	require.NoError(t, err)
	assert.Contains(t, text, "push:")
	assert.NotContains(t, text, "workflow_dispatch", "a workflow without the trigger")

	app := gh.NewClient(f.Client()).WithAuthToken(f.jwt(t, nil, nil))
	app.BaseURL = c.BaseURL
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, "acme", "api")
	require.NoError(t, err)
	assert.Equal(t, f.inst.ID, inst.GetID())
	_, resp, err = app.Apps.FindRepositoryInstallation(ctx, "acme", "private")
	require.Error(t, err)
	assert.Equal(t, 404, resp.StatusCode)
	f.SetWebhook("https://example.test/hook", "s")
	hc, _, err := app.Apps.GetHookConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "********", hc.GetSecret())
	_, err = app.Apps.DeleteInstallation(ctx, f.inst.ID)
	require.NoError(t, err)
	_, _, err = app.Apps.GetInstallation(ctx, f.inst.ID)
	require.Error(t, err)
}

func TestAPIVersionsServed(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	call := func(version string, body map[string]any) (int, map[string]any, http.Header) {
		req, err := http.NewRequest("POST", f.URL+"repos/acme/api/actions/workflows/any.yml/dispatches", strings.NewReader(mustJSON(t, body)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("Content-Type", "application/json")
		if version != "" {
			req.Header.Set("X-GitHub-Api-Version", version)
		}
		resp, err := f.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	code, _, h := call("", map[string]any{"ref": "main"})
	assert.Equal(t, 204, code)
	assert.Equal(t, "2022-11-28", h.Get("X-GitHub-Api-Version-Selected"))

	code, body, h := call("2026-03-10", map[string]any{"ref": "main", "inputs": map[string]any{"n": 1, "b": true}})
	assert.Equal(t, 200, code, "2026-03-10 always answers the run")
	assert.NotZero(t, body["workflow_run_id"])
	assert.Equal(t, "2026-03-10", h.Get("X-GitHub-Api-Version-Selected"))
	assert.Equal(t, map[string]string{"n": "1", "b": "true"}, f.Dispatches()[1].Inputs, "numbers and booleans are inputs too")

	code, body, _ = call("2026-03-10", map[string]any{"ref": "main", "return_run_details": true})
	assert.Equal(t, 422, code)
	assert.Contains(t, body["message"], "return_run_details")

	code, body, _ = call("2021-01-01", map[string]any{"ref": "main"})
	assert.Equal(t, 400, code)
	assert.Contains(t, body["message"], "not supported")
}

// TestUninstallPerVersion: uninstalling answers 204, and 202 since
// 2026-03-10 (GitHub uninstalls in the background); either way the
// installation is gone. The contract checks both answers.
func TestUninstallPerVersion(t *testing.T) {
	t.Parallel()
	for version, want := range map[string]int{"": 204, "2022-11-28": 204, "2026-03-10": 202} {
		f := newFake(t)
		req, err := http.NewRequest("DELETE", f.URL+"app/installations/"+strconv.FormatInt(f.inst.ID, 10), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+f.jwt(t, nil, nil))
		if version != "" {
			req.Header.Set("X-GitHub-Api-Version", version)
		}
		resp, err := f.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, version)
		resp, err = f.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 404, resp.StatusCode, "%s: uninstalled", version)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
