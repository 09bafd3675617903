package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/examples/server/app"
	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/status"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

const (
	keyA   = "tenant-a-key-0123456789abcdef"
	keyB   = "tenant-b-key-0123456789abcdef"
	secret = "webhook-secret"
)

type env struct {
	fake    *githubtest.Server
	inst    githubtest.AppInstallation
	srv     *app.Server
	http    *httptest.Server
	vars    map[string]string
	changes *changes // nil for a server not made by start
}

// changes wakes the tests that wait for a job: every status change the
// server stores closes the channel they wait on.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// next returns a channel closed at the next stored status change.
func (c *changes) next() <-chan struct{} {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) notify(status.Job, status.Transition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

var lookup = credentials.MapLookup

func fakeGitHub(t *testing.T) (*githubtest.Server, githubtest.AppInstallation) {
	fake := githubtest.NewServer(githubtest.WithContract(t))
	t.Cleanup(fake.Close)
	fake.AddRepo(githubtest.Repo{Owner: "acme", Name: "deployer", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id", "version", "environment"}},
		{Name: "push-only", Path: ".github/workflows/push.yml", NoDispatch: true},
	}})
	inst := fake.AddInstallation(githubtest.AppInstallation{Account: "acme", Repositories: []string{"acme/deployer"}})
	return fake, inst
}

func baseVars(fake *githubtest.Server, dbURL string) map[string]string {
	return map[string]string{
		"GITHUB_APP_ID":            strconv.FormatInt(fake.AppID, 10),
		"GITHUB_APP_PRIVATE_KEY":   strings.ReplaceAll(fake.PrivateKeyPEM(), "\n", `\n`), // as pasted into a one-line variable
		"GITHUB_APP_NAME":          fake.AppSlug,
		"GITHUB_APP_CLIENT_ID":     fake.ClientID,
		"GITHUB_APP_CLIENT_SECRET": fake.ClientSecret,
		"GITHUB_API_URL":           fake.URL,
		"GITHUB_WEBHOOK_SECRET":    "old-secret," + secret,
		"GHBRIDGE_API_KEYS":        "tenant-a:" + keyA + ",tenant-b:" + keyB,
		"GHBRIDGE_DATABASE_URL":    dbURL,
		"GHBRIDGE_QUIET_AFTER":     "1s",
	}
}

// start runs a server on vars, with opts after the tests' defaults: no
// logs, and short waits where the server looks for a run or retries a
// GitHub request (what is asserted is the outcome, not the wait).
func start(t *testing.T, fake *githubtest.Server, vars map[string]string, opts ...app.Option) *env {
	t.Helper()
	cfg, err := app.LoadConfig(lookup(vars))
	require.NoError(t, err)
	changed := &changes{}
	srv, err := app.New(context.Background(), cfg, append([]app.Option{app.WithLogger(slog.New(slog.DiscardHandler)), app.WithTransitionHook(changed.notify),
		app.WithDispatchOptions(dispatch.WithRunLookup(dispatch.RunLookup{Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond, Settle: 20 * time.Millisecond})),
		app.WithClientOptions(github.WithRetryPolicy(github.RetryPolicy{MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}))}, opts...)...)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	stop := srv.Start(context.Background())
	t.Cleanup(func() { ts.Close(); stop(); srv.Close() })
	if fake != nil {
		fake.SetWebhook(ts.URL+"/api/github/webhook", secret)
	}
	return &env{fake: fake, srv: srv, http: ts, vars: vars, changes: changed}
}

func newEnv(t *testing.T, opts ...app.Option) *env {
	fake, inst := fakeGitHub(t)
	e := start(t, fake, baseVars(fake, testdb.MigratedSQLite(t)), opts...)
	e.inst = inst
	return e
}

// holdDispatches starts a proxy before fake that holds every dispatch
// request (workflow or repository) until release: GitHub keeping a
// dispatch in flight for as long as a test needs. It returns the proxy's
// API URL, for GITHUB_API_URL, and a channel that receives a value as
// each dispatch arrives. The test releases before its server stops
// (which waits for the step that sent the dispatch): heldEnv does.
func holdDispatches(t *testing.T, fake *githubtest.Server) (apiURL string, arrived <-chan struct{}, release func()) {
	t.Helper()
	u, err := url.Parse(fake.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	held, in := make(chan struct{}), make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/dispatches") {
			select {
			case in <- struct{}{}:
			default:
			}
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	u.Host = srv.Listener.Addr().String()
	return u.String(), in, func() { once.Do(func() { close(held) }) }
}

// heldEnv is newEnv with tenant A's installation claimed and every dispatch held (see
// holdDispatches) until release, or until the test ends.
func heldEnv(t *testing.T) (e *env, arrived <-chan struct{}, release func()) {
	t.Helper()
	fake, inst := fakeGitHub(t)
	apiURL, arrived, release := holdDispatches(t, fake)
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	vars["GITHUB_API_URL"] = apiURL
	e = start(t, fake, vars)
	t.Cleanup(release) // before the server stops
	e.inst = inst
	e.claimed(t, "tenant-a", inst)
	return e, arrived, release
}

// lostCompletion completes a run on GitHub while no webhook is set (the
// delivery is lost) and returns the workflow_run payload GitHub would
// have sent, for a test to deliver itself.
func lostCompletion(t *testing.T, fake *githubtest.Server, runID int64) []byte {
	t.Helper()
	fake.SetWebhook("", "")
	_, err := fake.SetRunStatus(runID, "completed", "success")
	require.NoError(t, err)
	payload, err := fake.RunEventPayload(runID, "completed")
	require.NoError(t, err)
	raw, err := json.Marshal(payload)
	require.NoError(t, err)
	return raw
}

// offsetClock is the real time, moved on by the test: jobs become quiet
// without waiting.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }

func (c *offsetClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.off += d }

// call sends a request and decodes the JSON answer.
func (e *env) call(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// create posts a job and, once it is accepted, waits for the queue to
// take it past pending, then returns it as GET shows it.
func (e *env) create(t *testing.T, key string, body any) (int, map[string]any) {
	t.Helper()
	code, job := e.call(t, "POST", "/api/jobs", key, body)
	if code != 201 {
		return code, job
	}
	assert.Contains(t, []any{"pending", "invalid_job_agent"}, job["status"], "accepting never waits for GitHub")
	id, _ := job["id"].(string)
	return code, e.waitJob(t, key, id, "leave pending", func(job map[string]any) bool { return job["status"] != "pending" })
}

// waitJob GETs job id as key until ok holds: after each status change
// the server stores, and every 50 ms besides (for what changes without
// one), for up to 10 s. It returns the job as last seen.
func (e *env) waitJob(t *testing.T, key, id, what string, ok func(job map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := e.changes.next() // before the GET: a change during it is not missed
		_, got := e.call(t, "GET", "/api/jobs/"+id, key, nil)
		if ok(got) {
			return got
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("job %s did not %s within 10 s: %v", id, what, got)
		}
	}
}

// install runs the install flow for a tenant: the install URL, then
// GitHub's redirect to the callback, by a person who installed id (and so
// can access it).
func (e *env) install(t *testing.T, key string, id int64) (int, map[string]any) {
	t.Helper()
	login := "installer-" + key[:8]
	e.fake.AddUser(login, id)
	return e.callback(t, e.installState(t, key), id, e.fake.AuthorizeUser(login))
}

// claimed stores inst as the server's install flow does (see install),
// claimed by tenant ("" for nobody), without the flow's GitHub requests:
// for tests whose subject comes after the install. An installation of all
// repositories lists them in inst.Repositories, as the flow would store.
func (e *env) claimed(t *testing.T, tenant string, inst githubtest.AppInstallation) {
	t.Helper()
	in := installed(inst, tenant)
	ctx := context.Background()
	require.NoError(t, e.srv.DB().Installations().UpsertInstallation(ctx, in))
	if tenant != "" {
		require.NoError(t, e.srv.DB().Installations().ClaimInstallation(ctx, inst.ID, tenant))
	}
}

// installed is the installation the install flow stores for inst
// (TestInstallFlow checks it).
func installed(inst githubtest.AppInstallation, tenant string) credentials.Installation {
	in := credentials.Installation{ID: inst.ID, Account: inst.Account, AccountType: inst.AccountType, Status: credentials.StatusActive,
		RepositorySelection: credentials.SelectionSelected, Repositories: inst.Repositories, Tenant: tenant}
	if in.AccountType == "" {
		in.AccountType = "Organization"
	}
	if inst.AllRepositories {
		in.RepositorySelection = credentials.SelectionAll // Repositories: the account's, which the caller lists
	}
	return in
}

// installState asks for an install URL and returns its state.
func (e *env) installState(t *testing.T, key string) string {
	t.Helper()
	code, body := e.call(t, "GET", "/api/github/install-url", key, nil)
	require.Equal(t, 200, code, body)
	u, err := url.Parse(body["url"].(string))
	require.NoError(t, err)
	assert.Contains(t, u.Path, "/github-apps/"+e.fake.AppSlug+"/installations/new", "a GHES host gets the github-apps path")
	return u.Query().Get("state")
}

// callback is GitHub's redirect of the browser to the install callback.
func (e *env) callback(t *testing.T, state string, id int64, oauthCode string) (int, map[string]any) {
	t.Helper()
	q := url.Values{"setup_action": {"install"}, "state": {state}}
	if id != 0 {
		q.Set("installation_id", strconv.FormatInt(id, 10))
	}
	if oauthCode != "" {
		q.Set("code", oauthCode)
	}
	return e.call(t, "GET", "/api/github/install-callback?"+q.Encode(), "", nil)
}

const agent = `{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml", "ref": "main",
	"inputs": {"version": "{{ .version.tag }}", "environment": "{{ .environment.name }}"}}`

func jobRequest(id string) map[string]any {
	return map[string]any{
		"id":      id,
		"agent":   json.RawMessage(agent),
		"context": map[string]any{"version": map[string]any{"tag": "v1.4.0"}, "environment": map[string]any{"name": "production"}, "resource": map[string]any{"identifier": "cluster-1"}},
	}
}

func TestDemoFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, body := e.install(t, keyA, e.inst.ID)
	require.Equal(t, 200, code, body)
	assert.Equal(t, "installed", body["status"])

	code, job := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code, job)
	assert.Equal(t, "in_progress", job["status"])
	runID := int64(job["runId"].(float64))
	require.NotZero(t, runID)
	assert.EqualValues(t, e.inst.ID, job["installationId"])
	ds := e.fake.Dispatches()
	require.Len(t, ds, 1)
	assert.Equal(t, map[string]string{"job_id": "tenant-a.job-1", "version": "v1.4.0", "environment": "production"}, ds[0].Inputs,
		"GitHub gets the job id qualified by its tenant: unique across tenants")

	for _, st := range [][2]string{{"queued", ""}, {"in_progress", ""}, {"completed", "success"}} {
		_, err := e.fake.SetRunStatus(runID, st[0], st[1])
		require.NoError(t, err, "the server answered the delivery")
	}
	code, job = e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	require.Equal(t, 200, code)
	assert.Equal(t, "successful", job["status"])
	hist := job["history"].([]any)
	require.Len(t, hist, 2, "queued and in_progress deliveries do not change an in_progress job")
	assert.Equal(t, []any{"pending", "in_progress", "dispatch"}, []any{hist[0].(map[string]any)["from"], hist[0].(map[string]any)["to"], hist[0].(map[string]any)["source"]})
	assert.Equal(t, "successful", hist[1].(map[string]any)["to"])

	code, inputs := e.call(t, "GET", "/api/jobs/job-1/inputs", keyA, nil)
	require.Equal(t, 200, code)
	assert.Equal(t, "tenant-a.job-1", inputs["job_id"])
	code, again := e.call(t, "GET", "/api/jobs/tenant-a.job-1/inputs", keyA, nil)
	require.Equal(t, 200, code, "the workflow may ask with the job_id it got")
	assert.Equal(t, inputs, again)
	assert.Equal(t, "v1.4.0", inputs["version_tag"])
	assert.Equal(t, "cluster-1", inputs["resource_identifier"])

	resp, err := e.http.Client().Get(e.http.URL + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ghbridge_webhook_deliveries_total{event="workflow_run",outcome="handled"} 3`,
		`ghbridge_dispatches_total{kind="workflow_dispatch",outcome="in_progress"} 1`,
		`ghbridge_token_exchanges_total{outcome="success"}`,
		`ghbridge_job_transitions_total{from="in_progress",source="workflow_run",to="successful"} 1`,
		`ghbridge_http_request_duration_seconds_bucket{code="201",route="POST /api/jobs"`,
	} {
		assert.Contains(t, string(metrics), want)
	}
	code, health := e.call(t, "GET", "/healthz", "", nil)
	assert.Equal(t, 200, code)
	assert.Equal(t, "configured", health["github_app"])
}

func TestInstallFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, body := e.install(t, keyA, e.inst.ID)
	require.Equal(t, 200, code, body)
	in := body["installation"].(map[string]any)
	assert.Equal(t, "acme", in["account"])
	assert.Equal(t, []any{"acme/deployer"}, in["repositories"])
	stored, err := e.srv.DB().Installations().GetInstallation(context.Background(), e.inst.ID)
	require.NoError(t, err)
	stored.UpdatedAt = time.Time{}
	assert.Equal(t, installed(e.inst, "tenant-a"), stored, "what the tests' claimed stores")

	code, body = e.install(t, keyB, e.inst.ID)
	assert.Equal(t, 409, code, "another tenant cannot take the installation")
	assert.Equal(t, "this installation is already claimed", body["error"], "without saying whose")
	code, _ = e.install(t, keyA, e.inst.ID)
	assert.Equal(t, 200, code, "the owner may come back")

	code, body = e.call(t, "GET", "/api/github/install-callback?installation_id=1&state=forged.state", "", nil)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"], "install state")
	code, _ = e.install(t, keyA, 424242)
	assert.Equal(t, 403, code, "nobody can access an installation that does not exist")

	code, body = e.call(t, "POST", "/api/github/installations/recover", keyB, map[string]any{"installationId": e.inst.ID})
	require.Equal(t, 202, code, body)
	au, err := url.Parse(body["authorizeUrl"].(string))
	require.NoError(t, err)
	assert.Equal(t, "/login/oauth/authorize", au.Path)
	e.fake.AddUser("b-admin", e.inst.ID)
	code, body = e.callback(t, au.Query().Get("state"), 0, e.fake.AuthorizeUser("b-admin"))
	assert.Equal(t, 409, code, "even with access on GitHub, another tenant's claim stands: %v", body)
	code, body = e.call(t, "POST", "/api/github/installations/recover", keyA, nil)
	require.Equal(t, 200, code, body)
	assert.Len(t, body["installations"], 1)

	code, _ = e.call(t, "DELETE", fmt.Sprintf("/api/github/installations/%d", e.inst.ID), keyB, nil)
	assert.Equal(t, 404, code)
	before := len(e.fake.Requests())
	code, _ = e.call(t, "DELETE", fmt.Sprintf("/api/github/installations/%d", e.inst.ID), keyA, nil)
	assert.Equal(t, 204, code)
	assert.Len(t, e.fake.Requests(), before, "forgetting an installation never uninstalls the App on GitHub")
	got, err := e.srv.DB().Installations().GetInstallation(context.Background(), e.inst.ID)
	require.NoError(t, err)
	assert.Equal(t, "deleted", string(got.Status))
	_, job := e.create(t, keyA, jobRequest("after-delete"))
	assert.Equal(t, "invalid_integration", job["status"], "a deleted installation is not a silent fallback")
	assert.Contains(t, job["message"], "deleted")
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.claimed(t, "tenant-a", e.inst)
	code, _ := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	_, err := e.fake.SetRunStatus(e.fake.Runs()[0].ID, "completed", "success")
	require.NoError(t, err)
	// Just over the 1 MiB limit (by the JSON around the string) is
	// enough: a larger body would be sent and decoded for nothing.
	huge := `{"agent": {"x": "` + strings.Repeat("a", 1<<20) + `"}}`
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		code                    int
		msg                     string
	}{
		{"no key", "POST", "/api/jobs", "", jobRequest("x"), 401, "missing bearer key"},
		{"wrong key", "POST", "/api/jobs", "tenant-a-key-0123456789abcdeX", jobRequest("x"), 401, "invalid bearer key"},
		{"not JSON", "POST", "/api/jobs", keyA, "{", 400, "invalid JSON"},
		{"empty body", "POST", "/api/jobs", keyA, "", 400, "empty body"},
		{"unknown field", "POST", "/api/jobs", keyA, `{"agnet": {}}`, 400, `unknown field "agnet"`},
		{"no agent", "POST", "/api/jobs", keyA, `{"id": "j"}`, 400, "agent: required"},
		{"agent not an object", "POST", "/api/jobs", keyA, `{"agent": [1]}`, 400, "agent: required, a JSON object"},
		{"bad id", "POST", "/api/jobs", keyA, `{"id": "a b", "agent": {}}`, 400, "id: use"},
		{"context not an object", "POST", "/api/jobs", keyA, `{"agent": {}, "context": "x"}`, 400, "context:"},
		{"context unknown field", "POST", "/api/jobs", keyA, `{"agent": {}, "context": {"versoin": {}}}`, 400, "context:"},
		{"context job id differs", "POST", "/api/jobs", keyA, `{"id": "a", "agent": {}, "context": {"jobId": "b"}}`, 400, "differs"},
		{"too large", "POST", "/api/jobs", keyA, huge, 413, "larger than"},
		{"duplicate id", "POST", "/api/jobs", keyA, jobRequest("job-1"), 409, "exists"},
		{"unknown job", "GET", "/api/jobs/nope", keyA, nil, 404, "no such job"},
		{"other tenant's job", "GET", "/api/jobs/job-1", keyB, nil, 404, "no such job"},
		{"other tenant's inputs", "GET", "/api/jobs/job-1/inputs", keyB, nil, 404, "no such job"},
		{"unknown status", "POST", "/api/jobs/job-1/status", keyA, `{"status": "done"}`, 400, "is not one of"},
		{"finished job", "POST", "/api/jobs/job-1/status", keyA, `{"status": "failure"}`, 409, "cannot become failure"},
		{"wrong method", "PUT", "/api/jobs/job-1", keyA, nil, 405, ""},
		{"unknown route", "GET", "/api/nope", keyA, nil, 404, ""},
		{"webhook bad signature", "POST", "/api/github/webhook", "", `{"action":"x"}`, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call(t, tc.method, tc.path, tc.key, tc.body)
			assert.Equal(t, tc.code, code, body)
			if tc.msg != "" {
				assert.Contains(t, fmt.Sprint(body["error"]), tc.msg)
			}
		})
	}
	// A config that does not render is a job that failed, not a bad request.
	code, job := e.create(t, keyA, map[string]any{"id": "job-bad", "agent": json.RawMessage(`{"owner":"acme","repo":"deployer","workflowId":"deploy.yml","ref":"{{ .version.nope }}"}`)})
	require.Equal(t, 201, code)
	assert.Equal(t, "invalid_job_agent", job["status"])
	assert.Contains(t, job["message"], `missing key ".version.nope"`)
	code, job = e.create(t, keyA, map[string]any{"id": "job-nodispatch", "agent": json.RawMessage(`{"owner":"acme","repo":"deployer","workflowId":"push.yml"}`)})
	require.Equal(t, 201, code)
	assert.Equal(t, "invalid_job_agent", job["status"])
	assert.Contains(t, job["message"], "workflow_dispatch")
}

func TestManualStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.claimed(t, "tenant-a", e.inst)
	code, _ := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	code, job := e.call(t, "POST", "/api/jobs/job-1/status", keyA, map[string]any{"status": "failure", "message": "smoke test failed"})
	require.Equal(t, 200, code, job)
	assert.Equal(t, "failure", job["status"])
	assert.Equal(t, "smoke test failed", job["message"])
	last := job["history"].([]any)[1].(map[string]any)
	assert.Equal(t, "manual", last["source"])
}

func TestWithoutGitHubSettings(t *testing.T) {
	t.Parallel()
	e := start(t, nil, map[string]string{
		"GHBRIDGE_DATABASE_URL": testdb.MigratedSQLite(t),
		"GHBRIDGE_API_KEYS":     keyA,
	})
	code, body := e.call(t, "GET", "/healthz", "", nil)
	assert.Equal(t, 200, code, "the server runs")
	assert.Contains(t, body["github_app"], "GITHUB_APP_ID")
	for _, path := range []string{"/api/github/install-url"} {
		code, body = e.call(t, "GET", path, keyA, nil)
		assert.Equal(t, 503, code)
		assert.Contains(t, body["error"], "GITHUB_APP_ID")
	}
	code, body = e.call(t, "POST", "/api/github/installations/recover", keyA, nil)
	assert.Equal(t, 503, code)
	assert.Contains(t, body["error"], "GITHUB_APP_PRIVATE_KEY")
	code, _ = e.call(t, "GET", "/api/github/install-callback?installation_id=1&state=x", "", nil)
	assert.Equal(t, 503, code)
	code, body = e.call(t, "POST", "/api/github/webhook", "", "{}")
	assert.Equal(t, 503, code)
	assert.Contains(t, body["error"], "GITHUB_WEBHOOK_SECRET")
	code, job := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	assert.Equal(t, "invalid_integration", job["status"])
	assert.Contains(t, job["message"], "no GitHub App is configured")

	e2 := start(t, nil, map[string]string{"GHBRIDGE_DATABASE_URL": testdb.MigratedSQLite(t)})
	code, body = e2.create(t, keyA, jobRequest("job-1"))
	assert.Equal(t, 503, code)
	assert.Contains(t, body["error"], "GHBRIDGE_API_KEYS")
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := app.LoadConfig(lookup(map[string]string{"GHBRIDGE_API_KEYS": "short"}))
	assert.ErrorContains(t, err, "shorter than 16")
	_, err = app.LoadConfig(lookup(map[string]string{"GHBRIDGE_RECONCILE_INTERVAL": "soon"}))
	assert.ErrorContains(t, err, "GHBRIDGE_RECONCILE_INTERVAL")
	_, err = app.LoadConfig(lookup(map[string]string{"GHBRIDGE_LOG_LEVEL": "loud"}))
	assert.ErrorContains(t, err, "GHBRIDGE_LOG_LEVEL")
	for _, bad := range []string{"0", "-1", "many"} {
		_, err = app.LoadConfig(lookup(map[string]string{"GHBRIDGE_DATABASE_MAX_CONNS": bad}))
		assert.ErrorContains(t, err, "GHBRIDGE_DATABASE_MAX_CONNS", bad)
	}
	cfg, err := app.LoadConfig(lookup(map[string]string{"GHBRIDGE_DATABASE_MAX_CONNS": "8"}))
	require.NoError(t, err)
	assert.Equal(t, 8, cfg.DatabaseMaxConns)
	cfg, err = app.LoadConfig(lookup(map[string]string{"GITHUB_APP_ID": "123"}))
	require.NoError(t, err, "a missing GitHub setting is not fatal")
	assert.Equal(t, 32, cfg.DatabaseMaxConns)
	assert.ErrorContains(t, cfg.AppErr, "GITHUB_APP_PRIVATE_KEY")
	_, err = app.New(context.Background(), app.Config{DatabaseURL: "mysql://x"})
	assert.ErrorContains(t, err, "GHBRIDGE_DATABASE_URL")
}

func TestRestartKeepsJobs(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	e := start(t, fake, vars)
	e.inst = inst
	e.claimed(t, "tenant-a", inst)
	code, _ := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	e.http.Close()
	require.NoError(t, e.srv.Close())

	e = start(t, fake, vars)
	code, job := e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	require.Equal(t, 200, code)
	assert.Equal(t, "in_progress", job["status"])
	_, err := fake.SetRunStatus(int64(job["runId"].(float64)), "completed", "success")
	require.NoError(t, err)
	_, job = e.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "successful", job["status"], "the installation and the job survived the restart")
}

func postgresSchema(t *testing.T) string {
	base := os.Getenv("GHBRIDGE_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		if os.Getenv("GHBRIDGE_TEST_POSTGRES") == "required" {
			t.Fatalf("PostgreSQL required: %v", err)
		}
		t.Skipf("PostgreSQL not reachable: %v", err)
	}
	schema := fmt.Sprintf("srv_%d", time.Now().UnixNano())
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE"); admin.Close() })
	return base + "&search_path=" + schema
}

// Two replicas behind a load balancer share one PostgreSQL database: a
// delivery that reaches both is applied once.
func TestTwoReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	vars := baseVars(fake, postgresSchema(t))
	a := start(t, fake, vars)
	a.inst = inst
	varsB := maps.Clone(vars)
	varsB["GHBRIDGE_INSTANCE"] = "replica-b" // two processes on one host
	b := start(t, nil, varsB)
	b.fake = fake
	a.claimed(t, "tenant-a", inst)
	code, job := b.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	runID := int64(job["runId"].(float64))
	raw := lostCompletion(t, fake, runID)

	var wg sync.WaitGroup
	codes := make(chan int, 10)
	for i := range 10 {
		replica := a
		if i%2 == 1 {
			replica = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := webhooktest.NewRequestWithID("workflow_run", "same-guid", raw, secret)
			r.RequestURI = ""
			u, _ := url.Parse(replica.http.URL + "/api/github/webhook")
			r.URL, r.Host = u, u.Host
			resp, err := replica.http.Client().Do(r)
			if assert.NoError(t, err) {
				codes <- resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(codes)
	handled := 0
	for c := range codes {
		if c == 200 {
			handled++
		} else {
			assert.Equal(t, 202, c)
		}
	}
	assert.Equal(t, 1, handled, "applied by exactly one replica")
	_, job = a.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "successful", job["status"])
	assert.Len(t, job["history"], 2)
}

func TestReconcileRecoversLostDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.claimed(t, "tenant-a", e.inst)
	code, job := e.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code)
	runID := int64(job["runId"].(float64))
	// The server is unreachable when the run completes.
	e.fake.SetWebhook(e.http.URL+"/down", secret)
	_, err := e.fake.SetRunStatus(runID, "completed", "failure")
	require.Error(t, err)
	e.fake.SetWebhook(e.http.URL+"/api/github/webhook", secret)

	e.srv.Reconcile(context.Background())
	e.waitStatus(t, keyA, "job-1", "failure") // the failed delivery was redelivered

}

func TestReconcileRunsOnTheLeaseHolderOnly(t *testing.T) {
	t.Parallel()
	clock := &offsetClock{}
	e := newEnv(t, app.WithClock(clock.Now))
	e.claimed(t, "tenant-a", e.inst)
	code, job := e.create(t, keyA, jobRequest("job-2"))
	require.Equal(t, 201, code)
	e.fake.SetWebhook("", "")
	_, err := e.fake.SetRunStatus(int64(job["runId"].(float64)), "completed", "success")
	require.NoError(t, err)
	clock.Advance(2 * time.Second) // GHBRIDGE_QUIET_AFTER is 1s
	ok, err := e.srv.DB().TryLease(context.Background(), "reconcile", "another-replica", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	e.srv.Reconcile(context.Background())
	_, job = e.call(t, "GET", "/api/jobs/job-2", keyA, nil)
	assert.Equal(t, "in_progress", job["status"], "another replica holds the lease: nothing done here")
}

func TestPollingQuietJobs(t *testing.T) {
	t.Parallel()
	clock := &offsetClock{}
	e := newEnv(t, app.WithClock(clock.Now))
	e.claimed(t, "tenant-a", e.inst)
	code, job := e.create(t, keyA, jobRequest("job-2"))
	require.Equal(t, 201, code)
	e.fake.SetWebhook("", "")
	_, err := e.fake.SetRunStatus(int64(job["runId"].(float64)), "completed", "success")
	require.NoError(t, err)
	clock.Advance(2 * time.Second) // GHBRIDGE_QUIET_AFTER is 1s
	e.srv.Reconcile(context.Background())
	_, job = e.call(t, "GET", "/api/jobs/job-2", keyA, nil)
	assert.Equal(t, "successful", job["status"])
	last := job["history"].([]any)[1].(map[string]any)
	assert.Equal(t, "reconcile", last["source"])
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	apiURL, arrived, release := holdDispatches(t, fake)
	defer release()
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	vars["GITHUB_API_URL"] = apiURL
	cfg, err := app.LoadConfig(lookup(vars))
	require.NoError(t, err)
	srv, err := app.New(context.Background(), cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e := &env{fake: fake, inst: inst, srv: srv, http: &httptest.Server{URL: "http://" + ln.Addr().String(), Config: &http.Server{}}}
	e.http.Config.Handler = srv.Handler()
	client := &http.Client{}
	// Claim the installation through the real listener.
	code, body := e.callWith(t, client, "GET", "/api/github/install-url", keyA, nil)
	require.Equal(t, 200, code, body)
	u, _ := url.Parse(body["url"].(string))
	fake.AddUser("admin", inst.ID)
	code, _ = e.callWith(t, client, "GET", fmt.Sprintf("/api/github/install-callback?installation_id=%d&code=%s&state=%s", inst.ID, fake.AuthorizeUser("admin"), url.QueryEscape(u.Query().Get("state"))), "", nil)
	require.Equal(t, 200, code)

	result := make(chan int, 1)
	go func() {
		code, _ := e.callWith(t, client, "POST", "/api/jobs", keyA, jobRequest("slow"))
		result <- code
	}()
	<-arrived // the job's dispatch is in flight, held by GitHub
	cancel()  // SIGTERM
	release()
	assert.Equal(t, 201, <-result, "the in-flight request finished")
	require.NoError(t, <-done)
	assert.Len(t, fake.Dispatches(), 1, "the dispatch in flight was not abandoned")
	_, err = client.Get("http://" + ln.Addr().String() + "/healthz")
	assert.Error(t, err, "the listener is closed")
}

func (e *env) callWith(t *testing.T, c *http.Client, method, path, key string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestServeLoopback(t *testing.T) {
	t.Parallel()
	fake, _ := fakeGitHub(t)
	cfg, err := app.LoadConfig(lookup(baseVars(fake, testdb.MigratedSQLite(t))))
	require.NoError(t, err)
	srv, err := app.New(context.Background(), cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	base, stop, err := srv.ServeLoopback(context.Background())
	require.NoError(t, err)
	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, stop())
	assert.Error(t, srv.DB().Ping(context.Background()), "stop closes the database")
	_, err = http.Get(base + "/healthz")
	assert.Error(t, err, "nothing listens after stop")
}
