package app_test

// The security suite: what a hostile tenant, or an anonymous client, can
// try against the reference server, and the answer each attempt must get.
// Every attempt also asserts that nothing reached GitHub (the fake logs
// every request it receives).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/examples/internal/testdb"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

// tenants is two tenants with an installation each, a third installation
// nobody claimed, and secrets: A's own, and a server-wide one.
type tenants struct {
	*env
	instA, instB, unclaimed githubtest.AppInstallation
}

func twoTenants(t *testing.T) *tenants {
	t.Helper()
	fake, instA := fakeGitHub(t)
	fake.AddRepo(githubtest.Repo{Owner: "beta", Name: "web", Workflows: []githubtest.Workflow{
		{Name: "deploy", Path: ".github/workflows/deploy.yml", RunName: "Deploy ${{ inputs.job_id }}", Inputs: []string{"job_id", "version", "environment"}},
	}})
	fake.AddRepo(githubtest.Repo{Owner: "gamma", Name: "app", Workflows: []githubtest.Workflow{{Name: "deploy", Path: ".github/workflows/deploy.yml"}}})
	instB := fake.AddInstallation(githubtest.AppInstallation{Account: "beta", Repositories: []string{"beta/web"}})
	unclaimed := fake.AddInstallation(githubtest.AppInstallation{Account: "gamma", AllRepositories: true})
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	vars["GHBRIDGE_SECRET_TENANT_A__ACME_TOKEN"] = "ghp_tenant_a_secret"
	fake.AddStaticToken("ghp_tenant_a_secret")
	vars["GHBRIDGE_SECRET_ACME_TOKEN"] = "ghp_server_wide_secret"
	e := start(t, fake, vars)
	e.inst = instA
	tt := &tenants{env: e, instA: instA, instB: instB, unclaimed: unclaimed}
	e.claimed(t, "tenant-a", instA)
	e.claimed(t, "tenant-b", instB)
	// The unclaimed installation is known to the server (a webhook or a
	// sync would record it) but nobody's.
	unclaimed.Repositories = []string{"gamma/app"}
	e.claimed(t, "", unclaimed)
	return tt
}

// quiet runs fn and asserts that it sent nothing to GitHub.
func (e *env) quiet(t *testing.T, what string, fn func()) {
	t.Helper()
	before := len(e.fake.Requests())
	fn()
	if after := e.fake.Requests(); len(after) != before {
		t.Errorf("%s: %d request(s) reached GitHub: %v", what, len(after)-before, after[before:])
	}
}

func agentFor(owner, repo string, extra string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"owner": %q, "repo": %q, "workflowId": "deploy.yml"%s}`, owner, repo, extra))
}

func TestSecurityCrossTenantCredentials(t *testing.T) {
	t.Parallel()
	tt := twoTenants(t)
	probes := []struct {
		name       string
		agent      json.RawMessage
		wantStatus string
		wantText   string
	}{
		{"A's installation id on A's repository", agentFor("acme", "deployer", fmt.Sprintf(`, "installationId": %d`, tt.instA.ID)), "invalid_integration", "not one of tenant \"tenant-b\"'s installations"},
		{"A's installation id on B's repository", agentFor("beta", "web", fmt.Sprintf(`, "installationId": %d`, tt.instA.ID)), "invalid_integration", "installation-not-claimed"},
		{"A's repository through its linked installation", agentFor("acme", "deployer", ""), "invalid_integration", "repository-installation-not-claimed"},
		{"an installation nobody claimed, by id", agentFor("gamma", "app", fmt.Sprintf(`, "installationId": %d`, tt.unclaimed.ID)), "invalid_integration", "installation-not-claimed"},
		{"an installation nobody claimed, by repository", agentFor("gamma", "app", ""), "invalid_integration", "repository-installation-not-claimed"},
		{"an installation id unknown to the server", agentFor("acme", "deployer", `, "installationId": 987654`), "invalid_integration", "installation-not-claimed"},
		{"A's secret by name", agentFor("acme", "deployer", `, "token": "{{ secrets.ACME_TOKEN }}"`), "invalid_integration", "secret not found"},
		{"the server-wide secret", agentFor("beta", "web", `, "token": "{{ secrets.ACME_TOKEN }}"`), "invalid_integration", "GHBRIDGE_SECRET_TENANT_B__ACME_TOKEN"},
		{"own installation and a token at once", agentFor("beta", "web", fmt.Sprintf(`, "installationId": %d, "token": "ghp_x"`, tt.instB.ID)), "invalid_job_agent", "keep one"},
		{"A's installation id as a template", agentFor("acme", "deployer", fmt.Sprintf(`, "installationId": "{{ %d }}"`, tt.instA.ID)), "invalid_integration", "installation-not-claimed"},
	}
	for i, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			var code int
			var job map[string]any
			tt.quiet(t, p.name, func() {
				code, job = tt.create(t, keyB, map[string]any{"id": fmt.Sprint("probe-", i), "agent": p.agent})
			})
			require.Equal(t, 201, code, job)
			assert.Equal(t, p.wantStatus, job["status"])
			assert.Contains(t, job["message"], p.wantText)
			assert.NotContains(t, job["message"], "tenant-a", "a refusal never names the owner")
		})
	}
	// The same probes by the owner work: the refusals are about the
	// tenant, not the configs.
	code, job := tt.create(t, keyA, map[string]any{"id": "own", "agent": agentFor("acme", "deployer", fmt.Sprintf(`, "installationId": %d`, tt.instA.ID))})
	require.Equal(t, 201, code, job)
	assert.Equal(t, "in_progress", job["status"], job["message"])
	code, job = tt.create(t, keyA, map[string]any{"id": "own-secret", "agent": agentFor("acme", "deployer", `, "token": "{{ secrets.ACME_TOKEN }}"`)})
	require.Equal(t, 201, code, job)
	assert.Equal(t, "in_progress", job["status"], job["message"])
	ds := tt.fake.Dispatches()
	require.Len(t, ds, 2, "only the owner's jobs reached GitHub")
	t.Logf("cross-tenant credential probes: %d, all refused with nothing sent to GitHub", len(probes))
}

func TestSecurityCrossTenantJobRoutes(t *testing.T) {
	t.Parallel()
	tt := twoTenants(t)
	code, jobA := tt.create(t, keyA, jobRequest("job-1"))
	require.Equal(t, 201, code, jobA)
	require.Equal(t, "in_progress", jobA["status"])

	type probe struct{ method, path string }
	var probes []probe
	for _, id := range []string{"job-1", "tenant-a.job-1", "tenant-a.job-1%2F..", "tenant-b.job-1", "nope"} {
		probes = append(probes,
			probe{"GET", "/api/jobs/" + id},
			probe{"GET", "/api/jobs/" + id + "/inputs"},
			probe{"POST", "/api/jobs/" + id + "/status"},
			probe{"POST", "/api/jobs/" + id + "/cancel"},
			probe{"POST", "/api/jobs/" + id + "/rerun"},
			probe{"POST", "/api/jobs/" + id + "/approve"},
			probe{"POST", "/api/jobs/" + id + "/reject"},
		)
	}
	for _, p := range probes {
		var code int
		var body map[string]any
		tt.quiet(t, p.method+" "+p.path, func() {
			code, body = tt.call(t, p.method, p.path, keyB, map[string]any{"status": "failure", "message": "pwned", "comment": "pwned"})
		})
		assert.Equal(t, 404, code, "%s %s: %v", p.method, p.path, body)
		assert.Equal(t, "no such job", body["error"], "%s %s: the same answer whether the job exists or not", p.method, p.path)
	}
	code, got := tt.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	require.Equal(t, 200, code)
	assert.Equal(t, "in_progress", got["status"], "A's job is untouched")
	assert.Nil(t, got["cancel"], "B's cancel reached nothing")
	var list map[string]any
	tt.quiet(t, "GET /api/jobs", func() { code, list = tt.call(t, "GET", "/api/jobs?repo=acme/deployer", keyB, nil) })
	assert.Equal(t, 200, code)
	assert.Empty(t, list["jobs"], "B's list holds none of A's jobs")

	// B may use the same id; it gets a job of its own, never a 409.
	code, jobB := tt.create(t, keyB, map[string]any{"id": "job-1", "agent": agentFor("beta", "web", "")})
	require.Equal(t, 201, code, jobB)
	assert.Equal(t, "job-1", jobB["id"])
	assert.Equal(t, "tenant-b.job-1", jobB["githubJobId"])
	assert.Equal(t, "in_progress", jobB["status"], jobB["message"])
	code, again := tt.create(t, keyB, map[string]any{"id": "job-1", "agent": agentFor("beta", "web", "")})
	assert.Equal(t, 409, code, "within a tenant ids stay unique: %v", again)

	// Each run moves its own tenant's job only.
	runA, runB := int64(jobA["runId"].(float64)), int64(jobB["runId"].(float64))
	_, err := tt.fake.SetRunStatus(runB, "completed", "failure")
	require.NoError(t, err)
	_, got = tt.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "in_progress", got["status"], "B's run does not move A's job of the same id")
	_, got = tt.call(t, "GET", "/api/jobs/job-1", keyB, nil)
	assert.Equal(t, "failure", got["status"])
	_, err = tt.fake.SetRunStatus(runA, "completed", "success")
	require.NoError(t, err)
	_, got = tt.call(t, "GET", "/api/jobs/job-1", keyA, nil)
	assert.Equal(t, "successful", got["status"])
	_, got = tt.call(t, "GET", "/api/jobs/job-1", keyB, nil)
	assert.Equal(t, "failure", got["status"])
	t.Logf("cross-tenant job route probes: %d, all 404 with nothing sent to GitHub", len(probes))
}

func TestSecurityInstallClaims(t *testing.T) {
	t.Parallel()
	fake, instA := fakeGitHub(t)
	other := fake.AddInstallation(githubtest.AppInstallation{Account: "globex", AllRepositories: true})
	e := start(t, fake, baseVars(fake, testdb.MigratedSQLite(t)))
	e.inst = instA
	fake.AddUser("a-admin", instA.ID)
	fake.AddUser("b-admin") // a GitHub user with no access to either installation
	fake.AddUser("globex-admin", other.ID)
	owner := func(id int64) string {
		in, err := e.srv.DB().Installations().GetInstallation(context.Background(), id)
		if err != nil {
			return ""
		}
		return in.Tenant
	}
	attempts := 0
	claim := func(name string, wantCode int, state string, id int64, code string) {
		t.Helper()
		attempts++
		got, body := e.callback(t, state, id, code)
		assert.Equal(t, wantCode, got, "%s: %v", name, body)
	}

	// A legitimate install by A, then its state replayed by anyone.
	stateA := e.installState(t, keyA)
	claim("A's install", 200, stateA, instA.ID, fake.AuthorizeUser("a-admin"))
	claim("replayed state", 400, stateA, instA.ID, fake.AuthorizeUser("a-admin"))
	claim("replayed state on another installation", 400, stateA, other.ID, fake.AuthorizeUser("globex-admin"))

	// B with a valid state of its own and a spoofed installation_id.
	claim("spoofed installation_id", 403, e.installState(t, keyB), other.ID, fake.AuthorizeUser("b-admin"))
	claim("spoofed id of A's installation", 403, e.installState(t, keyB), instA.ID, fake.AuthorizeUser("b-admin"))
	claim("no OAuth code", 400, e.installState(t, keyB), other.ID, "")
	claim("forged OAuth code", 400, e.installState(t, keyB), other.ID, "forged")
	reused := fake.AuthorizeUser("globex-admin")
	claim("globex admin claims for B", 200, e.installState(t, keyB), other.ID, reused)
	claim("replayed OAuth code", 400, e.installState(t, keyA), other.ID, reused)
	claim("A's admin cannot take B's", 403, e.installState(t, keyA), other.ID, fake.AuthorizeUser("a-admin"))
	fake.AddUser("a-admin", other.ID) // now A's admin can see it too
	claim("a claimed installation stays claimed", 409, e.installState(t, keyA), other.ID, fake.AuthorizeUser("a-admin"))

	// A state forged or altered: another tenant, another expiry.
	st := e.installState(t, keyB)
	payload, sig, _ := strings.Cut(st, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	require.NoError(t, err)
	altered := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "tenant-b", "tenant-a", 1))) + "." + sig
	claim("state altered to another tenant", 400, altered, instA.ID, fake.AuthorizeUser("a-admin"))
	claim("unsigned state", 400, "eyJ0IjoidGVuYW50LWIifQ", instA.ID, fake.AuthorizeUser("a-admin"))
	claim("no state", 400, "", instA.ID, fake.AuthorizeUser("a-admin"))

	// Recover names an installation: the answer is an authorization URL,
	// never a claim on the bare id.
	third := fake.AddInstallation(githubtest.AppInstallation{Account: "initech", AllRepositories: true})
	attempts++
	code, body := e.call(t, "POST", "/api/github/installations/recover", keyB, map[string]any{"installationId": third.ID})
	require.Equal(t, 202, code, body)
	assert.Equal(t, "", owner(third.ID), "a bare recover claims nothing")
	code, body = e.call(t, "POST", "/api/github/installations/recover", keyB, map[string]any{"installationId": instA.ID})
	attempts++
	require.Equal(t, 202, code, body, "the answer does not reveal that the installation is claimed")

	assert.Equal(t, "tenant-a", owner(instA.ID))
	assert.Equal(t, "tenant-b", owner(other.ID))
	t.Logf("install claim attempts: %d", attempts)
}

func TestSecurityClaimsWithoutOAuthClient(t *testing.T) {
	t.Parallel()
	fake, inst := fakeGitHub(t)
	vars := baseVars(fake, testdb.MigratedSQLite(t))
	delete(vars, "GITHUB_APP_CLIENT_SECRET")
	e := start(t, fake, vars)
	e.inst = inst
	code, body := e.call(t, "GET", "/api/github/install-url", keyA, nil)
	assert.Equal(t, 503, code, "two tenants and no proof of who installed: no claims")
	assert.Contains(t, body["error"], "GITHUB_APP_CLIENT_SECRET")
	code, body = e.call(t, "POST", "/api/github/installations/recover", keyA, map[string]any{"installationId": inst.ID})
	assert.Equal(t, 503, code, body)
	assert.Contains(t, body["error"], "GITHUB_APP_CLIENT_ID")

	// One tenant: nobody else can be wronged, so the bare flow works,
	// and installations nobody claimed are that tenant's.
	vars = baseVars(fake, testdb.MigratedSQLite(t))
	delete(vars, "GITHUB_APP_CLIENT_SECRET")
	vars["GHBRIDGE_API_KEYS"] = "solo:" + keyA
	e = start(t, fake, vars)
	e.inst = inst
	code, body = e.call(t, "POST", "/api/github/installations/recover", keyA, nil)
	require.Equal(t, 200, code, body)
	code, job := e.create(t, keyA, jobRequest("single"))
	require.Equal(t, 201, code, job)
	assert.Equal(t, "in_progress", job["status"], job["message"])
	state := e.installState(t, keyA)
	code, body = e.callback(t, state, inst.ID, "")
	assert.Equal(t, 200, code, body)
}

// TestSecurityTemplateBombsAndNames: configs built to take memory or CPU,
// and owner or repo names that would bend the request path, fail as
// invalid_job_agent with nothing sent to GitHub.
func TestSecurityTemplateBombsAndNames(t *testing.T) {
	t.Parallel()
	tt := twoTenants(t)
	// split charges its parts (16 bytes each) against the output limit
	// (256 KiB) before it allocates them: 200,000 parts are 12 times over.
	bigName := strings.Repeat("x", 200_000)
	for _, p := range []struct {
		name    string
		agent   string
		context map[string]any
	}{
		{"printf width over a split of a huge name", `{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml", "inputs": {"x": "{{ printf \"%1000v\" (split \"\" .resource.name) }}"}}`,
			map[string]any{"resource": map[string]any{"name": bigName}}},
		{"nested ranges without output", `{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml", "inputs": {"x": "{{ range split \"\" .resource.name }}{{ range split \"\" .resource.name }}{{ end }}{{ end }}"}}`,
			map[string]any{"resource": map[string]any{"name": strings.Repeat("y", 100_000)}}},
		{"owner with a query", `{"owner": "acme?x=", "repo": "deployer", "workflowId": "deploy.yml"}`, nil},
		{"repo with a path", `{"owner": "acme", "repo": "deployer/../../x", "workflowId": "deploy.yml"}`, nil},
		{"owner with percent", `{"owner": "ac%2fme", "repo": "deployer", "workflowId": "deploy.yml"}`, nil},
		{"repo with a fragment", `{"owner": "acme", "repo": "deployer#x", "workflowId": "deploy.yml"}`, nil},
	} {
		t.Run(p.name, func(t *testing.T) {
			var code int
			var job map[string]any
			req := map[string]any{"agent": json.RawMessage(p.agent)}
			if p.context != nil {
				req["context"] = p.context
			}
			tt.quiet(t, p.name, func() { code, job = tt.create(t, keyA, req) })
			require.Equal(t, 201, code, job)
			assert.Equal(t, "invalid_job_agent", job["status"], job["message"])
		})
	}
}
