package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/template"
)

func render(t *testing.T, cfg string) (template.AgentConfig, error) {
	t.Helper()
	return template.NewRenderer().Render(context.Background(), json.RawMessage(cfg), ctxData)
}

func TestAgentConfigWorkflowDispatch(t *testing.T) {
	t.Parallel()
	c, err := render(t, `{"installationId": 42, "owner": "acme", "repo": "deployer", "workflowId": "deploy.yml",
		"inputs": {"version": "{{ .version.tag }}", "env": "{{ .environment.name }}"}}`)
	require.NoError(t, err)
	assert.Equal(t, template.AgentConfig{
		Type: template.KindWorkflowDispatch, InstallationID: 42, Owner: "acme", Repo: "deployer",
		Ref: "main", Workflow: template.WorkflowRef{File: "deploy.yml"},
		Inputs: map[string]string{"version": "v1.4.0", "env": "production"},
	}, c)
	assert.Equal(t, "acme/deployer", c.Repository())
	assert.Equal(t, "deploy.yml", c.Workflow.String())

	for _, tc := range []struct {
		workflowID string
		want       template.WorkflowRef
	}{
		{`123`, template.WorkflowRef{ID: 123}},
		{`"123"`, template.WorkflowRef{ID: 123}},
		{`"{{ printf \"%d\" 77 }}"`, template.WorkflowRef{ID: 77}},
		{`"deploy.yaml"`, template.WorkflowRef{File: "deploy.yaml"}},
		{`".github/workflows/deploy.yml"`, template.WorkflowRef{File: "deploy.yml"}},
		{`"{{ .resource.config.namespace }}.yml"`, template.WorkflowRef{File: "api.yml"}},
	} {
		c, err := render(t, `{"owner":"a","repo":"b","workflowId":`+tc.workflowID+`,"ref":"{{ .version.tag }}","installationId":"{{ printf \"%d\" 9 }}"}`)
		require.NoError(t, err, tc.workflowID)
		assert.Equal(t, tc.want, c.Workflow, tc.workflowID)
		assert.Equal(t, "v1.4.0", c.Ref)
		assert.Equal(t, int64(9), c.InstallationID)
		assert.Equal(t, tc.want.String(), c.Workflow.String())
	}
}

func TestAgentConfigOtherKinds(t *testing.T) {
	t.Parallel()
	c, err := render(t, `{"type": "repository_dispatch", "owner": "acme", "repo": "api", "eventType": "deploy-{{ .environment.name }}",
		"clientPayload": {"version": "{{ .version.tag }}", "n": 1}, "token": "{{ secrets.PAT }}"}`)
	require.NoError(t, err)
	assert.Equal(t, template.KindRepositoryDispatch, c.Type)
	assert.Equal(t, "deploy-production", c.EventType)
	assert.Equal(t, map[string]any{"version": "v1.4.0", "n": int64(1)}, c.ClientPayload)
	assert.Equal(t, "{{ secrets.PAT }}", c.Token)

	c, err = render(t, `{"type": "deployment", "owner": "acme", "repo": "api", "environment": "{{ .environment.name }}",
		"ref": "{{ .version.tag }}", "payload": {"resource": "{{ .resource.identifier }}"}, "requiredContexts": [], "autoMerge": false,
		"task": "deploy:migrate", "description": "ship it"}`)
	require.NoError(t, err)
	assert.Equal(t, "production", c.Environment)
	assert.Equal(t, "v1.4.0", c.Ref)
	assert.Equal(t, map[string]any{"resource": "cluster-eu-1"}, c.Payload)
	assert.NotNil(t, c.RequiredContexts)
	assert.Empty(t, c.RequiredContexts)
	require.NotNil(t, c.AutoMerge)
	assert.False(t, *c.AutoMerge)
	assert.Equal(t, "deploy:migrate", c.Task)

	c, err = render(t, `{"type": "deployment", "owner": "acme", "repo": "api", "environment": "staging", "autoMerge": "{{ eq 1 1 }}"}`)
	require.NoError(t, err)
	assert.Nil(t, c.RequiredContexts, "absent requiredContexts leaves the choice to the dispatcher")
	assert.True(t, *c.AutoMerge)

	c, err = render(t, `{"type": "pull_request", "owner": "acme", "repo": "gitops", "ref": "main", "title": "Deploy {{ .version.tag }}",
		"files": {"envs/{{ .environment.name }}/version.txt": "{{ .version.tag }}\n"}}`)
	require.NoError(t, err)
	require.NotNil(t, c.PullRequest)
	assert.Equal(t, &template.PullRequestSpec{
		Branch: "ghbridge/job-job-7", Title: "Deploy v1.4.0", CommitMessage: "Deploy v1.4.0",
		Files: map[string]string{"envs/production/version.txt": "v1.4.0\n"},
	}, c.PullRequest, "keys are rendered too")

	_, err = render(t, `{"type": "pull_request", "owner": "a", "repo": "b", "title": "t",
		"files": {"x/{{ .version.name }}": "1", "x/1.4": "2"}}`)
	require.ErrorIs(t, err, template.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `two keys render to "x/1.4"`)
	_, err = render(t, `{"type": "pull_request", "owner": "a", "repo": "b", "title": "t",
		"files": {"a/{{ .version.name }}": "1", "a/1.4": "2"}}`)
	require.ErrorIs(t, err, template.ErrInvalidConfig, "whichever key comes first")
}

func TestAgentConfigValidation(t *testing.T) {
	t.Parallel()
	many := func(n int, prefix string) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf(`"%s%d": "v"`, prefix, i))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	wd := func(extra string) string {
		return `{"owner":"acme","repo":"api","workflowId":"deploy.yml"` + extra + `}`
	}
	rd := func(extra string) string {
		return `{"type":"repository_dispatch","owner":"acme","repo":"api"` + extra + `}`
	}
	for _, tc := range []struct {
		name, cfg, field, text string
		kind                   error
	}{
		{"config not JSON", `{"owner":`, "", "the agent config itself", template.ErrInvalidJSON},
		{"config not an object", `[1]`, "", "not an object", template.ErrInvalidJSON},
		{"missing owner", `{"repo":"api","workflowId":"d.yml"}`, "owner", "is required", nil},
		{"owner rendered empty", `{"owner":"{{ get .deployment.variables \"X\" }}","repo":"api","workflowId":"d.yml"}`, "owner", "is required", nil},
		{"missing repo", `{"owner":"acme","workflowId":"d.yml"}`, "repo", "is required", nil},
		{"repo with slash", `{"owner":"acme","repo":"a/b","workflowId":"d.yml"}`, "repo", "not a GitHub repo name", nil},
		{"owner not a string", `{"owner":1,"repo":"api","workflowId":"d.yml"}`, "owner", "must be a string, got a number", nil},
		{"missing workflow", `{"owner":"acme","repo":"api"}`, "workflowId", "is required", nil},
		{"workflow not yml", wd(`,"workflowId":"deploy"`), "workflowId", "neither a numeric workflow id nor a workflow file name", nil},
		{"workflow json", wd(`,"workflowId":"deploy.json"`), "workflowId", "ending in .yml or .yaml", nil},
		{"workflow only extension", `{"owner":"acme","repo":"api","workflowId":".yml"}`, "workflowId", "neither", nil},
		{"workflow negative", `{"owner":"acme","repo":"api","workflowId":-4}`, "workflowId", "positive", nil},
		{"workflow fraction", `{"owner":"acme","repo":"api","workflowId":1.5}`, "workflowId", "neither", nil},
		{"installation not a number", wd(`,"installationId":"abc"`), "installationId", "whole number", nil},
		{"installation negative", wd(`,"installationId":-1`), "installationId", "positive", nil},
		{"bad ref", wd(`,"ref":"feature x"`), "ref", "not a valid git ref", nil},
		{"input not a string", wd(`,"inputs":{"n":3}`), "inputs.n", "quote it", nil},
		{"input from document not a string", `{"template":"{\"owner\":\"acme\",\"repo\":\"api\",\"workflowId\":\"d.yml\",\"inputs\":{\"n\":true}}"}`, "inputs.n", "a boolean", nil},
		{"inputs not an object", wd(`,"inputs":["a"]`), "inputs", "must be an object, got a list", nil},
		{"job_id input reserved", wd(`,"inputs":{"job_id":"x"}`), "inputs.job_id", "set by ghbridge", nil},
		{"too many inputs", wd(`,"inputs":` + many(25, "i")), "inputs", "limit of 25", nil},
		{"unknown field", wd(`,"workflowID":"x.yml"`), "workflowID", `did you mean "workflowId"`, nil},
		{"unknown field snake", wd(`,"installation_id":1`), "installation_id", `did you mean "installationId"`, nil},
		{"field of another kind", wd(`,"eventType":"x"`), "eventType", "unknown field for type workflow_dispatch", nil},
		{"unknown type", `{"type":"cron","owner":"a","repo":"b"}`, "type", "unknown type", nil},
		{"event type missing", rd(``), "eventType", "is required", nil},
		{"event type too long", rd(`,"eventType":"` + strings.Repeat("é", 101) + `"`), "eventType", "101 characters", nil},
		{"payload too many keys", rd(`,"eventType":"e","clientPayload":` + many(10, "k")), "clientPayload", "limit of 10", nil},
		{"payload job_id reserved", rd(`,"eventType":"e","clientPayload":{"job_id":1}`), "clientPayload.job_id", "set by ghbridge", nil},
		{"payload not object", rd(`,"eventType":"e","clientPayload":"x"`), "clientPayload", "must be an object", nil},
		{"deployment without environment", `{"type":"deployment","owner":"a","repo":"b"}`, "environment", "is required", nil},
		{"deployment contexts not strings", `{"type":"deployment","owner":"a","repo":"b","environment":"e","requiredContexts":[1]}`, "requiredContexts[0]", "must be a string", nil},
		{"deployment autoMerge text", `{"type":"deployment","owner":"a","repo":"b","environment":"e","autoMerge":"maybe"}`, "autoMerge", "true or false", nil},
		{"deployment description too long", `{"type":"deployment","owner":"a","repo":"b","environment":"e","description":"` + strings.Repeat("x", 141) + `"}`, "description", "140", nil},
		{"deployment payload job_id", `{"type":"deployment","owner":"a","repo":"b","environment":"e","payload":{"job_id":"x"}}`, "payload.job_id", "set by ghbridge", nil},
		{"pr without title", `{"type":"pull_request","owner":"a","repo":"b","files":{"a":"b"}}`, "title", "is required", nil},
		{"pr without files", `{"type":"pull_request","owner":"a","repo":"b","title":"t"}`, "files", "is required", nil},
		{"pr absolute path", `{"type":"pull_request","owner":"a","repo":"b","title":"t","files":{"/etc/x":"b"}}`, "files", "clean relative path", nil},
		{"pr parent path", `{"type":"pull_request","owner":"a","repo":"b","title":"t","files":{"../x":"b"}}`, "files", "clean relative path", nil},
		{"pr branch is base", `{"type":"pull_request","owner":"a","repo":"b","title":"t","files":{"x":"b"},"branch":"main"}`, "branch", "not the base", nil},
		{"pr file content not string", `{"type":"pull_request","owner":"a","repo":"b","title":"t","files":{"x":1}}`, "files.x", "must be a string", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.cfg)
			require.Error(t, err)
			kind := tc.kind
			if kind == nil {
				kind = template.ErrInvalidConfig
			}
			require.ErrorIs(t, err, kind)
			var e *template.FieldError
			require.True(t, errors.As(err, &e), "%T", err)
			assert.Equal(t, tc.field, e.Field)
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}

func TestAgentConfigLimitsCountJobID(t *testing.T) {
	t.Parallel()
	inputs := map[string]any{}
	for i := range 24 {
		inputs[fmt.Sprint("i", i)] = "v"
	}
	c, err := template.ParseAgentConfig(map[string]any{"owner": "a", "repo": "b", "workflowId": "d.yml", "inputs": inputs}, "j")
	require.NoError(t, err, "24 inputs plus job_id is GitHub's 25")
	assert.Len(t, c.Inputs, 24)

	payload := map[string]any{}
	for i := range 9 {
		payload[fmt.Sprint("k", i)] = i
	}
	_, err = template.ParseAgentConfig(map[string]any{"type": "repository_dispatch", "owner": "a", "repo": "b", "eventType": strings.Repeat("e", 100), "clientPayload": payload}, "j")
	require.NoError(t, err, "9 keys plus job_id is GitHub's 10; 100 characters is allowed")
}

func TestClientPayloadSizeLimit(t *testing.T) {
	t.Parallel()
	parse := func(n int) error {
		_, err := template.ParseAgentConfig(map[string]any{"type": "repository_dispatch", "owner": "a", "repo": "b", "eventType": "e",
			"clientPayload": map[string]any{"blob": strings.Repeat("x", n)}}, "job-1")
		return err
	}
	// {"blob":"…","job_id":"job-1"} is 28 bytes around the blob.
	require.NoError(t, parse(template.MaxClientPayloadBytes-28), "exactly the largest payload GitHub takes")
	err := parse(template.MaxClientPayloadBytes - 27)
	require.ErrorIs(t, err, template.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "64 KB")
	require.Error(t, parse(71<<10), "a 71 KB payload is refused before it is sent")
	assert.Equal(t, 28+5, template.ClientPayloadSize(map[string]any{"blob": "xxxxx"}, "job-1"))
}

func TestContextInputs(t *testing.T) {
	t.Parallel()
	in := ctxData.Inputs()
	assert.Equal(t, "job-7", in["job_id"])
	assert.Equal(t, "v1.4.0", in["version_tag"])
	assert.Equal(t, "1.4", in["version_name"])
	assert.Equal(t, "production", in["environment_name"])
	assert.Equal(t, "env-1", in["environment_id"])
	assert.Equal(t, "cluster-eu-1", in["resource_identifier"])
	assert.Equal(t, "EU One", in["resource_name"])
	assert.Equal(t, "kubernetes", in["resource_kind"])
	assert.Equal(t, map[string]any{"namespace": "api"}, in["resource_config"])
	assert.Equal(t, "API", in["deployment_name"])
	assert.Equal(t, map[string]any{"REGION": "eu-west-1", "DEBUG": true}, in["deployment_variables"])

	b, err := json.Marshal(ctxData)
	require.NoError(t, err)
	var back template.Context
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, ctxData.JobID, back.JobID)
	assert.Equal(t, ctxData.Resource.Identifier, back.Resource.Identifier)
}

func TestAgentConfigReport(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("a1", 20)
	c, err := render(t, `{"owner":"a","repo":"b","workflowId":"d.yml","report":{"checkRun":{"name":"Deploy {{ .environment.name }}","headSha":"`+sha+`"}}}`)
	require.NoError(t, err)
	assert.Equal(t, &template.CheckRunSpec{Name: "Deploy production", HeadSHA: sha}, c.Report.CheckRun)
	assert.False(t, c.Report.DeploymentStatus)

	c, err = render(t, `{"type":"deployment","owner":"a","repo":"b","environment":"e"}`)
	require.NoError(t, err)
	assert.True(t, c.Report.DeploymentStatus, "deployments mirror their status by default")
	c, err = render(t, `{"type":"deployment","owner":"a","repo":"b","environment":"e","report":{"deploymentStatus":false}}`)
	require.NoError(t, err)
	assert.False(t, c.Report.DeploymentStatus)

	for _, tc := range []struct{ cfg, field string }{
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":{"deploymentStatus":true}}`, "report.deploymentStatus"},
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":{"checkRun":{"headSha":"` + sha + `"}}}`, "report.checkRun.name"},
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":{"checkRun":{"name":"x","headSha":"main"}}}`, "report.checkRun.headSha"},
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":{"checkRun":{"name":1,"headSha":"` + sha + `"}}}`, "report.checkRun.name"},
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":{"slack":true}}`, "report.slack"},
		{`{"owner":"a","repo":"b","workflowId":"d.yml","report":true}`, "report"},
	} {
		_, err := render(t, tc.cfg)
		require.ErrorIs(t, err, template.ErrInvalidConfig, tc.cfg)
		var e *template.FieldError
		require.True(t, errors.As(err, &e))
		assert.Equal(t, tc.field, e.Field, tc.cfg)
	}
}

// owner and repo become parts of request paths: anything outside
// GitHub's naming rules is refused before a request is made, naming the
// field.
func TestAgentConfigOwnerRepoNames(t *testing.T) {
	t.Parallel()
	cfg := func(owner, repo string) map[string]any {
		return map[string]any{"owner": owner, "repo": repo, "workflowId": "d.yml"}
	}
	for _, tc := range []struct{ owner, repo string }{
		{"a", "b"}, {"acme-corp", "api"}, {"A1-b2-C3", "my_repo.v2-x"}, {strings.Repeat("o", 39), strings.Repeat("r", 100)},
		{"0", ".github"}, {"x", "..."}, {"x", "_"}, {"x", "-"},
	} {
		c, err := template.ParseAgentConfig(cfg(tc.owner, tc.repo), "j")
		require.NoError(t, err, "%s/%s", tc.owner, tc.repo)
		assert.Equal(t, tc.owner+"/"+tc.repo, c.Repository())
	}
	for _, tc := range []struct{ field, owner, repo string }{
		{"owner", "acme?x=", "api"}, {"owner", "acme#", "api"}, {"owner", "ac%2Fme", "api"}, {"owner", "ac/me", "api"},
		{"owner", "-acme", "api"}, {"owner", "acme-", "api"}, {"owner", "ac--me", "api"}, {"owner", "ac_me", "api"},
		{"owner", "ac.me", "api"}, {"owner", strings.Repeat("o", 40), "api"}, {"owner", "ä", "api"}, {"owner", "..", "api"},
		{"repo", "acme", "."}, {"repo", "acme", ".."}, {"repo", "acme", "a?b"}, {"repo", "acme", "a#b"}, {"repo", "acme", "a%20b"},
		{"repo", "acme", "a/b"}, {"repo", "acme", "a b"}, {"repo", "acme", strings.Repeat("r", 101)}, {"repo", "acme", "ré"},
		{"repo", "acme", "a\x00"},
	} {
		_, err := template.ParseAgentConfig(cfg(tc.owner, tc.repo), "j")
		require.ErrorIs(t, err, template.ErrInvalidConfig, "%q/%q", tc.owner, tc.repo)
		var e *template.FieldError
		require.True(t, errors.As(err, &e))
		assert.Equal(t, tc.field, e.Field, "%q/%q", tc.owner, tc.repo)
		assert.Contains(t, err.Error(), "not a GitHub "+tc.field+" name")
	}
	// A rendered owner is checked too.
	_, err := render(t, `{"owner":"{{ .resource.name }}","repo":"api","workflowId":"d.yml"}`)
	require.ErrorIs(t, err, template.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `"EU One" is not a GitHub owner name`)
}
