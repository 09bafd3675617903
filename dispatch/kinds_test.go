package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/credentials"
	"github.com/ghbridge/ghbridge/dispatch"
	"github.com/ghbridge/ghbridge/github/githubtest"
	"github.com/ghbridge/ghbridge/template"
)

func TestRepositoryDispatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, err := e.d.Dispatch(context.Background(), job("job-9", `{"type":"repository_dispatch","owner":"acme","repo":"deployer",
		"eventType":"deploy","clientPayload":{"version":"{{ .version.tag }}"}}`))
	require.NoError(t, err)
	rds := e.srv.RepositoryDispatches()
	require.Len(t, rds, 1)
	assert.Equal(t, "deploy", rds[0].EventType)
	assert.Equal(t, map[string]any{"version": "v1.4.0", "job_id": "job-9"}, rds[0].ClientPayload)
	require.Len(t, rds[0].RunIDs, 1)
	assert.Equal(t, rds[0].RunIDs[0], res.RunID, "the run is found by the job id in its run-name")
	assert.Equal(t, template.KindRepositoryDispatch, res.Kind)
	assert.Equal(t, "dispatch.repository_dispatch", e.audit.Events()[0].Name)
}

func TestRepositoryDispatchPayloadOverGitHubsLimitIsNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	big := strings.Repeat("x", 71<<10)
	_, err := e.d.Dispatch(context.Background(), job("job-9", `{"type":"repository_dispatch","owner":"acme","repo":"deployer",
		"eventType":"deploy","clientPayload":{"blob":"`+big+`"}}`))
	require.ErrorIs(t, err, dispatch.ErrInvalidAgentConfig)
	assert.Contains(t, err.Error(), "64 KB")
	assert.Empty(t, e.srv.RepositoryDispatches(), "nothing was sent")
	assert.Zero(t, e.srv.RequestCount("POST /repos/{owner}/{repo}/dispatches"))
}

func TestRepositoryDispatchWithoutListeningWorkflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{dispatch: []dispatch.Option{giveUpLookup}})
	res, err := e.d.Dispatch(context.Background(), job("job-9", `{"type":"repository_dispatch","owner":"acme","repo":"deployer","eventType":"nobody-listens"}`))
	require.ErrorIs(t, err, dispatch.ErrRunNotFound)
	assert.Contains(t, err.Error(), "client_payload.job_id")
	assert.Equal(t, 1, res.Attempts)
}

func TestRepositoryDispatchAmbiguous(t *testing.T) {
	t.Parallel()
	for _, fault := range []githubtest.Fault{{Status: 502, AfterHandling: true}, {Status: 502}} {
		e := newEnv(t, envOptions{})
		fault.Route = "POST /repos/{owner}/{repo}/dispatches"
		e.srv.InjectFault(fault)
		res, err := e.d.Dispatch(context.Background(), job("job-9", `{"type":"repository_dispatch","owner":"acme","repo":"deployer","eventType":"deploy"}`))
		require.NoError(t, err)
		require.Len(t, e.srv.Runs(), 1, "exactly one run (after handling: %v)", fault.AfterHandling)
		assert.Equal(t, e.srv.Runs()[0].ID, res.RunID)
	}
}

func TestDeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, err := e.d.Dispatch(context.Background(), job("job-5", `{"type":"deployment","owner":"acme","repo":"deployer",
		"environment":"{{ .environment.name }}","ref":"release","payload":{"version":"{{ .version.tag }}"},"description":"ship"}`))
	require.NoError(t, err)
	deps := e.srv.Deployments()
	require.Len(t, deps, 1)
	d := deps[0]
	assert.Equal(t, d.ID, res.DeploymentID)
	assert.Equal(t, "production", d.Environment)
	assert.Equal(t, "release", d.Ref)
	assert.Equal(t, "ship", d.Description)
	assert.JSONEq(t, `{"version":"v1.4.0","job_id":"job-5"}`, string(d.Payload))
	assert.NotNil(t, d.RequiredContexts, "required_contexts is sent, empty, by default")
	assert.Empty(t, d.RequiredContexts)
	assert.False(t, d.AutoMerge)
	assert.Equal(t, "dispatch.deployment", e.audit.Events()[0].Name)
}

func TestDeploymentConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{dispatch: []dispatch.Option{dispatch.WithRequiredContexts([]string{"ci/build"}), dispatch.WithAutoMerge(true)}})
	_, err := e.d.Dispatch(context.Background(), job("job-5", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"staging"}`))
	require.NoError(t, err)
	_, err = e.d.Dispatch(context.Background(), job("job-6", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"staging","requiredContexts":[],"autoMerge":false}`))
	require.NoError(t, err)
	deps := e.srv.Deployments()
	require.Len(t, deps, 2)
	assert.Equal(t, []string{"ci/build"}, deps[0].RequiredContexts)
	assert.True(t, deps[0].AutoMerge)
	assert.Equal(t, []string{}, deps[1].RequiredContexts, "the config wins over the default")
	assert.False(t, deps[1].AutoMerge)

	e = newEnv(t, envOptions{dispatch: []dispatch.Option{dispatch.WithRequiredContexts(nil)}})
	_, err = e.d.Dispatch(context.Background(), job("job-7", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"staging"}`))
	require.NoError(t, err)
	assert.Nil(t, e.srv.Deployments()[0].RequiredContexts, "nil leaves GitHub's default")
}

func TestDeploymentNeverTwice(t *testing.T) {
	t.Parallel()
	for _, fault := range []githubtest.Fault{{Status: 502, AfterHandling: true}, {ResetConnection: true, AfterHandling: true}, {Status: 502}} {
		e := newEnv(t, envOptions{})
		fault.Route = "POST /repos/{owner}/{repo}/deployments"
		e.srv.InjectFault(fault)
		res, err := e.d.Dispatch(context.Background(), job("job-5", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production"}`))
		require.NoError(t, err)
		deps := e.srv.Deployments()
		require.Len(t, deps, 1, "exactly one deployment (%+v)", fault)
		assert.Equal(t, deps[0].ID, res.DeploymentID)
	}
}

func TestDeploymentErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	_, err := e.d.Dispatch(context.Background(), job("job-5", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production","ref":"nope"}`))
	require.ErrorIs(t, err, dispatch.ErrRefNotFound)
	e.srv.SetPermissions(e.inst.ID, map[string]string{"deployments": "read", "metadata": "read"})
	_, err = e.d.Dispatch(context.Background(), job("job-6", `{"type":"deployment","owner":"acme","repo":"deployer","environment":"production"}`))
	require.ErrorIs(t, err, dispatch.ErrMissingPermission)
	assert.Contains(t, err.Error(), "Deployments: Read and write")
}

const prAgent = `{"type":"pull_request","owner":"acme","repo":"deployer","title":"Deploy {{ .version.tag }}",
	"body":"Promote {{ .version.tag }} to {{ .environment.name }}",
	"files":{"envs/{{ .environment.name }}/version.txt":"{{ .version.tag }}\n","README.md":"hi"}}`

func TestPullRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, err := e.d.Dispatch(context.Background(), job("job-8", prAgent))
	require.NoError(t, err)
	pulls := e.srv.Pulls("acme", "deployer")
	require.Len(t, pulls, 1)
	pr := pulls[0]
	assert.Equal(t, pr.Number, res.PullRequestNumber)
	assert.Contains(t, res.PullRequestURL, fmt.Sprintf("/acme/deployer/pull/%d", pr.Number))
	assert.Equal(t, "ghbridge/job-job-8", pr.Head)
	assert.Equal(t, "main", pr.Base)
	assert.Equal(t, "Deploy v1.4.0", pr.Title)
	assert.Contains(t, pr.Body, "Promote v1.4.0 to production")
	assert.Contains(t, pr.Body, "ghbridge-job: job-8")
	content, ok := e.srv.File("acme", "deployer", "ghbridge/job-job-8", "envs/production/version.txt")
	require.True(t, ok)
	assert.Equal(t, "v1.4.0\n", content)
	_, ok = e.srv.File("acme", "deployer", "main", "envs/production/version.txt")
	assert.False(t, ok, "the base branch is untouched")
}

func TestPullRequestNeverTwice(t *testing.T) {
	t.Parallel()
	for _, route := range []string{"POST /repos/{owner}/{repo}/pulls", "POST /repos/{owner}/{repo}/git/refs"} {
		for _, fault := range []githubtest.Fault{{Status: 502, AfterHandling: true}, {Status: 502}} {
			e := newEnv(t, envOptions{})
			fault.Route = route
			e.srv.InjectFault(fault)
			res, err := e.d.Dispatch(context.Background(), job("job-8", prAgent))
			require.NoError(t, err, "%s %+v", route, fault)
			pulls := e.srv.Pulls("acme", "deployer")
			require.Len(t, pulls, 1)
			assert.Equal(t, pulls[0].Number, res.PullRequestNumber)
		}
	}
}

func TestPullRequestBranchOfAnotherJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.srv.AddBranch("acme", "deployer", "taken")
	_, err := e.d.Dispatch(context.Background(), job("job-8", `{"type":"pull_request","owner":"acme","repo":"deployer","title":"t","branch":"taken","files":{"a":"b"}}`))
	require.ErrorIs(t, err, dispatch.ErrRejected)
	assert.Contains(t, err.Error(), "not created for this job")
	assert.Empty(t, e.srv.Pulls("acme", "deployer"))

	_, err = e.d.Dispatch(context.Background(), job("job-9", `{"type":"pull_request","owner":"acme","repo":"deployer","ref":"nope","title":"t","files":{"a":"b"}}`))
	require.ErrorIs(t, err, dispatch.ErrRefNotFound)
}

func TestPullRequestRedispatchReusesBranchAndPull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	first, err := e.d.Dispatch(context.Background(), job("job-8", prAgent))
	require.NoError(t, err)
	again, err := e.d.Dispatch(context.Background(), job("job-8", prAgent))
	require.NoError(t, err, "dispatching the same job again finds its branch and pull request")
	assert.Equal(t, first.PullRequestNumber, again.PullRequestNumber)
	assert.Len(t, e.srv.Pulls("acme", "deployer"), 1)
}

func TestResultIsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	res, err := e.d.Dispatch(context.Background(), job("job-1", deployAgent))
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	assert.Contains(t, string(b), fmt.Sprint(res.RunID))
	assert.Equal(t, credentials.TypeInstallation, res.CredentialType)
}
