package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ghbridge/ghbridge/template"
)

func ExampleRenderer_Render() {
	r := template.NewRenderer() // share one: parsed templates are cached
	job := template.Context{
		JobID:       "job-42",
		Version:     template.Version{Tag: "v1.4.0"},
		Environment: template.Environment{Name: "production"},
		Resource:    template.Resource{Identifier: "cluster-eu-1"},
		Deployment:  template.Deployment{Variables: map[string]any{"REGION": "eu-west-1"}},
	}
	cfg := json.RawMessage(`{
		"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml",
		"ref": "{{ .version.tag }}",
		"inputs": {
			"environment": "{{ .environment.name }}",
			"target": "{{ .resource.identifier | upper }}",
			"region": "{{ get .deployment.variables \"REGION\" \"us-east-1\" }}"
		}
	}`)
	c, err := r.Render(context.Background(), cfg, job)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Type, c.Repository(), c.Workflow, c.Ref)
	fmt.Println(c.Inputs["environment"], c.Inputs["target"], c.Inputs["region"])

	_, err = r.Render(context.Background(), json.RawMessage(`{"owner": "acme", "repo": "deployer", "workflowId": "deploy.yml", "ref": "{{ .version.tg }}"}`), job)
	fmt.Println(errors.Is(err, template.ErrMissingKey))
	fmt.Println(err)
	// Output:
	// workflow_dispatch acme/deployer deploy.yml v1.4.0
	// production CLUSTER-EU-1 eu-west-1
	// true
	// missing key ".version.tg" in config field ref: .version has config, id, name, tag; use get or hasKey for optional values
}
