package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/template"
)

var fuzzLimits = template.Limits{MaxOutput: 4096, MaxIterations: 1000, Timeout: 50 * time.Millisecond, MaxTemplate: 4096}

// FuzzRenderString renders arbitrary template text: it must never panic,
// never exceed the output limit, and fail only with a *template.Error.
func FuzzRenderString(f *testing.F) {
	for _, s := range []string{
		"{{ .version.tag }}", "a{{ .environment.name }}b", "{{ range 5 }}x{{ end }}",
		"{{ range $i, $e := .version.config.flags }}{{ $i }}{{ $e }}{{ end }}",
		"{{ printf \"%5s\" .version.tag }}", `{{ $x := "ab" }}{{ range 64 }}{{ $x = print $x $x }}{{ end }}{{ $x }}`,
		"{{ toJson . }}", "{{ template \"x\" }}", "{{ .nope }}", "{{", "{{ get .deployment.variables \"REGION\" }}",
		"{{ range 10 }}{{ range 10 }}{{ range 10 }}{{ end }}{{ end }}{{ end }}", "{{ index .version.config \"flags\" 1 }}",
		"{{ slice .version.tag 1 99 }}", "{{ dict \"a\" (list 1 2) | toJson | fromJson }}",
	} {
		f.Add(s)
	}
	r := template.NewRenderer(template.WithLimits(fuzzLimits))
	f.Fuzz(func(t *testing.T, text string) {
		out, err := r.RenderString(context.Background(), "f", text, ctxData)
		if err != nil {
			var e *template.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *template.Error: %v", err, err)
			}
			return
		}
		if !strings.Contains(text, "{{") {
			if out != text {
				t.Fatalf("text without actions changed: %q -> %q", text, out)
			}
			return
		}
		if len(out) > fuzzLimits.MaxOutput {
			t.Fatalf("output of %d bytes exceeds the limit", len(out))
		}
	})
}

// FuzzRender renders arbitrary agent configs end to end.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		string(typicalConfig),
		`{"type":"repository_dispatch","owner":"a","repo":"b","eventType":"{{ .environment.name }}","clientPayload":{"x":"{{ .job.id }}"}}`,
		`{"type":"deployment","owner":"a","repo":"b","environment":"e","requiredContexts":["ci"],"payload":{"a":[1,{"b":"{{ .version.tag }}"}]}}`,
		`{"type":"pull_request","owner":"a","repo":"b","title":"t","files":{"p/{{ .version.tag }}":"{{ .version.tag }}"}}`,
		`{"template":"{\"owner\":\"a\",\"repo\":\"b\",\"workflowId\":{{ 5 }}}"}`,
		`{"owner":"a","repo":"b","workflowId":1e300}`, `[]`, `{"inputs":{"{{ .job.id }}":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	r := template.NewRenderer(template.WithLimits(fuzzLimits))
	f.Fuzz(func(t *testing.T, cfg []byte) {
		c, err := r.Render(context.Background(), json.RawMessage(cfg), ctxData)
		if err != nil {
			var e *template.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *template.Error: %v", err, err)
			}
			return
		}
		if c.Owner == "" || c.Repo == "" || c.Ref == "" {
			t.Fatalf("a valid config lacks owner, repo or ref: %+v", c)
		}
		if c.Type == template.KindWorkflowDispatch && (c.Workflow.IsZero() || len(c.Inputs) >= template.MaxWorkflowInputs) {
			t.Fatalf("invalid workflow_dispatch config accepted: %+v", c)
		}
	})
}
