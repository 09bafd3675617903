package template_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ghbridge/ghbridge/template"
)

// typicalConfig is the shape most hosts use: a workflow file, the version
// as ref, and a few inputs from the job context.
var typicalConfig = json.RawMessage(`{
	"installationId": 42,
	"owner": "acme",
	"repo": "deployer",
	"workflowId": "deploy.yml",
	"ref": "{{ .version.tag }}",
	"inputs": {
		"version": "{{ .version.tag }}",
		"environment": "{{ .environment.name }}",
		"resource": "{{ .resource.identifier }}",
		"region": "{{ get .deployment.variables \"REGION\" \"us-east-1\" }}",
		"note": "static text"
	}
}`)

var typicalContext = template.Context{
	JobID:       "job-123",
	Version:     template.Version{Tag: "v1.4.0", Name: "1.4"},
	Environment: template.Environment{ID: "env-1", Name: "production"},
	Resource:    template.Resource{Identifier: "cluster-eu-1", Name: "EU 1", Kind: "kubernetes"},
	Deployment:  template.Deployment{Name: "api", Variables: map[string]any{"REGION": "eu-west-1"}},
}

// BenchmarkRender renders the typical config with a warm template cache.
// Baseline: json.Unmarshal of the same config into a map, the floor any
// renderer pays.
func BenchmarkRender(b *testing.B) {
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		r := template.NewRenderer()
		if _, err := r.Render(ctx, typicalConfig, typicalContext); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Render(ctx, typicalConfig, typicalContext); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-json-unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(typicalConfig, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
