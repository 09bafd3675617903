package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/ghbridge/ghbridge/template"
)

var fuzzLimits = template.Limits{MaxOutput: 4096, MaxIterations: 1000, MaxSteps: 10_000, Timeout: 5 * time.Second, MaxTemplate: 4096}

// fuzzMaxAlloc bounds what one render with fuzzLimits may allocate, its
// input included: the budget must hold whatever the template.
const fuzzMaxAlloc = 4 << 20

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// fuzzBombs are templates built to allocate or loop without bound.
var fuzzBombs = []string{
	`{{ printf "%1000v" (split "" .resource.name) }}`,
	`{{ $l := list 1 }}{{ range 60 }}{{ $l = list $l $l }}{{ end }}{{ toJson $l }}{{ $l }}`,
	`{{ $x := "ab" }}{{ range 999 }}{{ $x = printf "%s%s" $x $x }}{{ end }}`,
	`{{ range 999 }}{{ range 999 }}{{ if 0 }}{{ end }}{{ if 0 }}{{ end }}{{ end }}{{ end }}`,
	`{{ range $.version.config.flags }}{{ $y := printf "%1000v%1000v" $ $.version.config }}{{ end }}`,
	`{{ $x := toJson . }}{{ range 999 }}{{ $y := fromJson $x }}{{ $z := upper $x | quote | b64enc }}{{ end }}`,
	`{{ $x := "\x00" }}{{ range 99 }}{{ $x = js (html $x $x) }}{{ end }}`,
}

// FuzzRenderString renders arbitrary template text: it must never panic,
// never exceed the output limit, and fail only with a *template.FieldError.
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
	for _, s := range fuzzBombs {
		f.Add(s)
	}
	r := template.NewRenderer(template.WithLimits(fuzzLimits))
	f.Fuzz(func(t *testing.T, text string) {
		var out string
		var err error
		if n := allocated(func() { out, err = r.RenderString(context.Background(), "f", text, ctxData) }); n > fuzzMaxAlloc {
			t.Fatalf("rendering allocated %d bytes; the bound is %d", n, fuzzMaxAlloc)
		}
		if err != nil {
			var e *template.FieldError
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *template.FieldError: %v", err, err)
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
	for _, s := range fuzzBombs {
		b, _ := json.Marshal(map[string]any{"owner": "a", "repo": "b", "workflowId": 1, "inputs": map[string]any{"x": s}})
		f.Add(b)
	}
	r := template.NewRenderer(template.WithLimits(fuzzLimits))
	f.Fuzz(func(t *testing.T, cfg []byte) {
		var c template.AgentConfig
		var err error
		// Decoding the config costs up to about 40 bytes per byte of it.
		if n := allocated(func() { c, err = r.Render(context.Background(), json.RawMessage(cfg), ctxData) }); n > fuzzMaxAlloc+64*uint64(len(cfg)) {
			t.Fatalf("rendering a %d-byte config allocated %d bytes", len(cfg), n)
		}
		if err != nil {
			var e *template.FieldError
			if !errors.As(err, &e) {
				t.Fatalf("error is %T, not *template.FieldError: %v", err, err)
			}
			return
		}
		if c.Owner == "" || c.Repo == "" || c.Ref == "" {
			t.Fatalf("a valid config lacks owner, repo or ref: %+v", c)
		}
		if c.Type == template.KindWorkflowDispatch && (c.Workflow == (template.WorkflowRef{}) || len(c.Inputs) >= template.MaxWorkflowInputs) {
			t.Fatalf("invalid workflow_dispatch config accepted: %+v", c)
		}
	})
}
