package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/template"
)

var ctxData = template.Context{
	JobID:       "job-7",
	Version:     template.Version{ID: "v-id", Tag: "v1.4.0", Name: "1.4", Config: map[string]any{"image": "ghcr.io/acme/api", "replicas": float64(3), "flags": []any{"a", "b"}}},
	Environment: template.Environment{ID: "env-1", Name: "production"},
	Resource:    template.Resource{ID: "r-1", Identifier: "cluster-eu-1", Name: "EU One", Kind: "kubernetes", Config: map[string]any{"namespace": "api"}},
	Deployment:  template.Deployment{ID: "d-1", Name: "API", Slug: "api", Variables: map[string]any{"REGION": "eu-west-1", "DEBUG": true}},
}

func renderString(t *testing.T, text string) (string, error) {
	t.Helper()
	return template.NewRenderer().RenderString(context.Background(), "f", text, ctxData)
}

func TestRenderStringValues(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"{{ .job.id }}", "job-7"},
		{"{{ .version.tag }}", "v1.4.0"},
		{"v={{ .version.tag }} env={{ .environment.name }}", "v=v1.4.0 env=production"},
		{"{{- .version.name -}} x", "1.4x"},
		{"{{ .version.id }}/{{ .environment.id }}/{{ .resource.id }}/{{ .deployment.id }}", "v-id/env-1/r-1/d-1"},
		{"{{ .resource.identifier }} {{ .resource.name }} {{ .resource.kind }}", "cluster-eu-1 EU One kubernetes"},
		{"{{ .deployment.name }} {{ .deployment.slug }}", "API api"},
		{"{{ .version.config.image }}:{{ .version.tag }}", "ghcr.io/acme/api:v1.4.0"},
		{"{{ .version.config.replicas }}", "3"},             // a number: rendered by text/template
		{"{{ .deployment.variables.DEBUG }}", "true"},       // a bool
		{"{{ .resource.config.namespace | upper }}", "API"}, // pipeline
		{"{{ index .deployment.variables \"REGION\" }}", "eu-west-1"},
		{"{{ get .deployment.variables \"MISSING\" \"dflt\" }}", "dflt"},
		{"{{ get .deployment.variables \"MISSING\" }}", ""},
		{"{{ hasKey .deployment.variables \"REGION\" }}", "true"},
		{"{{ if hasKey .resource.config \"namespace\" }}yes{{ else }}no{{ end }}", "yes"},
		{"{{ range .version.config.flags }}[{{ . }}]{{ end }}", "[a][b]"},
		{"{{ range $i := 3 }}{{ $i }}{{ end }}", "012"},
		{"{{ .resource.name | lower | replace \" \" \"-\" }}", "eu-one"},
		{"{{ title \"hello big-world\" }}", "Hello Big-World"},
		{"{{ trim \"  x  \" }}|{{ trimPrefix \"v\" .version.tag }}|{{ trimSuffix \".0\" .version.tag }}", "x|1.4.0|v1.4"},
		{"{{ contains \"eu\" .resource.identifier }} {{ hasPrefix \"cluster\" .resource.identifier }} {{ hasSuffix \"-1\" .resource.identifier }}", "true true true"},
		{"{{ split \"-\" .resource.identifier | join \",\" }}", "cluster,eu,1"},
		{"{{ truncate 3 .resource.identifier }}", "clu"},
		{"{{ quote .version.tag }} {{ squote \"it's\" }}", `"v1.4.0" 'it'\''s'`},
		{"{{ toString 3.5 }} {{ toString nil }}", "3.5 "},
		{"{{ b64enc \"hi\" }} {{ b64dec \"aGk=\" }}", "aGk= hi"},
		{"{{ sha256sum \"x\" | truncate 8 }}", "2d711642"},
		{"{{ printf \"%s-%03d\" .version.tag 7 }}", "v1.4.0-007"},
		{"{{ default \"d\" \"\" }} {{ default \"d\" \"x\" }} {{ coalesce \"\" \"b\" \"c\" }}", "d x b"},
		{"{{ empty \"\" }} {{ empty .version.tag }}", "true false"},
		{"{{ required \"need tag\" .version.tag }}", "v1.4.0"},
		{"{{ toJson .resource.config }}", `{"namespace":"api"}`},
		{"{{ (fromJson \"{\\\"a\\\": [1,2]}\").a | len }}", "2"},
		{"{{ toJson (dict \"a\" 1 \"b\" (list 1 \"x\")) }}", `{"a":1,"b":[1,"x"]}`},
		{"{{ atoi \"42\" | printf \"%d\" }}", "42"},
		{"{{ html \"<a>\" }} {{ js \"'\" }} {{ urlquery \"a b\" }}", `&lt;a&gt; \' a+b`},
		{"{{ print \"a\" 1 }}{{ println \"b\" }}", "a1b\n"},
		{"{{ len .version.config.flags }} {{ slice .version.tag 1 4 }}", "2 1.4"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := renderString(t, tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRenderStringErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind error
		key  string
		text []string
	}{
		{"{{ .version.tagg }}", template.ErrMissingKey, ".version.tagg", []string{"config field f", ".version has config, id, name, tag", "get or hasKey"}},
		{"x {{ .nope }} y", template.ErrMissingKey, ".nope", []string{"the job context has deployment, environment, job, resource, version"}},
		{"{{ .deployment.variables.NOPE }}", template.ErrMissingKey, ".deployment.variables.NOPE", []string{".deployment.variables has DEBUG, REGION"}},
		{"{{ .resource.config.a.b }}", template.ErrMissingKey, ".resource.config.a.b", nil},
		{"{{ .version.tag.x }}", template.ErrMissingKey, ".version.tag.x", []string{".version.tag is not an object"}},
		{"{{ .version.tag ", template.ErrSyntax, "", []string{"line 1", "unclosed action"}},
		{"line1\n{{ nosuchfunc }}", template.ErrSyntax, "", []string{"line 2", `function "nosuchfunc" not defined`}},
		{"{{ env \"HOME\" }}", template.ErrSyntax, "", []string{`function "env" not defined`}},
		{"{{ readFile \"/etc/passwd\" }}", template.ErrSyntax, "", []string{`function "readFile" not defined`}},
		{"{{ define \"x\" }}a{{ end }}{{ template \"x\" }}", template.ErrNotAllowed, "", []string{"define"}},
		{"{{ template \"x\" }}", template.ErrNotAllowed, "", nil},
		{"{{ block \"x\" . }}a{{ end }}", template.ErrNotAllowed, "", nil},
		{"{{ required \"version tag missing\" .version.name | printf \"%s\" | len | printf \"%d\" }}{{ required \"need it\" \"\" }}", template.ErrRender, "", []string{"need it"}},
		{"{{ b64dec \"!!\" }}", template.ErrRender, "", []string{"b64dec"}},
		{"{{ printf \"%[2]s\" 1 2 }}", template.ErrRender, "", []string{"argument indexes"}},
		{"{{ printf \"%999999999d\" 1 }}", template.ErrRender, "", []string{"width or precision"}},
		{"{{ printf \"%.99999s\" \"x\" }}", template.ErrRender, "", []string{"width or precision"}},
		{"{{ printf \"%*d\" 100000000 1 }}", template.ErrRender, "", []string{"width or precision"}},
		{"{{ dict \"a\" }}", template.ErrRender, "", []string{"key/value pairs"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := renderString(t, tc.in)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.kind)
			var e *template.Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, "f", e.Field)
			assert.Equal(t, tc.key, e.Key)
			for _, want := range tc.text {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

// The fast path for plain field references must give the same results as
// text/template, including when it has to fall back.
func TestFastPathParity(t *testing.T) {
	ctx := context.Background()
	r := template.NewRenderer()
	for _, text := range []string{
		"{{ .version.tag }}", "a{{ .version.tag }}b{{ .environment.name }}c", "{{ .version.config.replicas }}",
		"{{ .deployment.variables.DEBUG }}", "{{ .version.config.flags }}", "{{ .resource.config }}",
	} {
		fast, err := r.RenderString(ctx, "f", text, ctxData)
		require.NoError(t, err)
		// Wrapped in with, the same template goes through text/template.
		slow, err := r.RenderString(ctx, "f", "{{ with . }}"+text+"{{ end }}", ctxData)
		require.NoError(t, err)
		assert.Equal(t, slow, fast, text)
	}
}

func TestRenderLimits(t *testing.T) {
	ctx := context.Background()
	small := template.NewRenderer(template.WithLimits(template.Limits{MaxOutput: 100, MaxIterations: 50, MaxTemplate: 200}))
	tight := template.NewRenderer(template.WithLimits(template.Limits{MaxOutput: 100}))
	for _, tc := range []struct {
		name string
		r    *template.Renderer
		in   string
		kind error
	}{
		{"output over the limit", small, "{{ range 40 }}abc{{ end }}", template.ErrOutputTooLarge},
		{"plain fields over the limit", tight, strings.Repeat("{{ .version.tag }}", 20), template.ErrOutputTooLarge},
		{"range over a huge int", template.NewRenderer(), "{{ range 1000000000000 }}{{ end }}", template.ErrTooManyIterations},
		{"range over max int", template.NewRenderer(), "{{ range 9223372036854775807 }}{{ end }}", template.ErrTooManyIterations},
		{"nested ranges multiply", small, "{{ range 10 }}{{ range 10 }}{{ end }}{{ end }}", template.ErrTooManyIterations},
		{"range in else branch", small, "{{ if false }}{{ else }}{{ range 100 }}{{ end }}{{ end }}", template.ErrTooManyIterations},
		{"range in with", small, "{{ with 1 }}{{ range 100 }}{{ end }}{{ end }}", template.ErrTooManyIterations},
		{"range in range else", small, "{{ range list }}{{ else }}{{ range 100 }}{{ end }}{{ end }}", template.ErrTooManyIterations},
		{"doubling with print", template.NewRenderer(), `{{ $x := "ab" }}{{ range 64 }}{{ $x = print $x $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"doubling with printf", template.NewRenderer(), `{{ $x := "ab" }}{{ range 64 }}{{ $x = printf "%s%s" $x $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with replace", template.NewRenderer(), `{{ $x := "ab" }}{{ range 64 }}{{ $x = replace "" $x $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with b64enc", template.NewRenderer(), `{{ $x := "abcdefgh" }}{{ range 200 }}{{ $x = b64enc $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with html", template.NewRenderer(), `{{ $x := "<<<<" }}{{ range 64 }}{{ $x = html $x $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with quote", template.NewRenderer(), `{{ $x := "\x00" }}{{ range 64 }}{{ $x = quote $x }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with join", template.NewRenderer(), `{{ $x := "ab" }}{{ range 64 }}{{ $x = join $x (list $x $x $x) }}{{ end }}`, template.ErrOutputTooLarge},
		{"growing with toJson", template.NewRenderer(), `{{ $x := "\"" }}{{ range 64 }}{{ $x = toJson (list $x $x) }}{{ end }}`, template.ErrOutputTooLarge},
		{"template too large", small, "{{ .version.tag }}" + strings.Repeat("x", 300), template.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.r.RenderString(ctx, "f", tc.in, ctxData)
			require.ErrorIs(t, err, tc.kind, "got %q", out)
		})
	}
}

func TestRenderTimeout(t *testing.T) {
	r := template.NewRenderer(template.WithLimits(template.Limits{Timeout: time.Nanosecond, MaxIterations: 1 << 30}))
	_, err := r.RenderString(context.Background(), "f", "{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}", ctxData)
	require.ErrorIs(t, err, template.ErrTimeout)

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = template.NewRenderer().RenderString(ctx, "f", "{{ .version.tag }}", ctxData)
	require.ErrorIs(t, err, template.ErrTimeout, "an expired context deadline bounds rendering too")
}

func TestRenderMap(t *testing.T) {
	r := template.NewRenderer()
	ctx := context.Background()
	in := map[string]any{
		"owner": "acme",
		"token": "{{ secrets.DEPLOY_TOKEN }}",
		"nested": map[string]any{
			"list": []any{"{{ .version.tag }}", 1.5, true, nil, map[string]any{"deep": "{{ .environment.name }}"}},
		},
		"template": `{"repo": "{{ .resource.config.namespace }}", "inputs": {"n": {{ .version.config.replicas }}}}`,
	}
	out, err := r.RenderMap(ctx, in, ctxData)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"owner":  "acme",
		"token":  "{{ secrets.DEPLOY_TOKEN }}", // a secret reference is not a template
		"nested": map[string]any{"list": []any{"v1.4.0", 1.5, true, nil, map[string]any{"deep": "production"}}},
		"repo":   "api",
		"inputs": map[string]any{"n": int64(3)},
	}, out)
	assert.Equal(t, "{{ .version.tag }}", in["nested"].(map[string]any)["list"].([]any)[0], "the input is not modified")

	_, err = r.RenderMap(ctx, map[string]any{"owner": "x", "template": `{"owner": "y"}`}, ctxData)
	require.ErrorIs(t, err, template.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "owner")

	_, err = r.RenderMap(ctx, map[string]any{"template": 5}, ctxData)
	require.ErrorIs(t, err, template.ErrInvalidConfig)

	_, err = r.RenderMap(ctx, map[string]any{"a": []any{"ok", "{{ .nope }}"}}, ctxData)
	var e *template.Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, "a[1]", e.Field)
}

func TestRenderDocumentJSONErrors(t *testing.T) {
	r := template.NewRenderer()
	for _, tc := range []struct{ doc, want string }{
		{"{\n  \"owner\": \"acme\",\n  \"repo\": {{ .version.tag }}\n}", `line 3, column 11: "\"repo\": v1.4.0"`},
		{`["a"]`, "rendered to a JSON array, not an object"},
		{`{"a": 1} {"b": 2}`, "extra data"},
		{`{"a": `, "unexpected end of input"},
		{`null`, "null, not a JSON object"},
	} {
		_, err := r.RenderMap(context.Background(), map[string]any{"template": tc.doc}, ctxData)
		require.ErrorIs(t, err, template.ErrInvalidJSON, tc.doc)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), "config field template")
	}
}

func TestRenderValue(t *testing.T) {
	v, err := template.NewRenderer().RenderValue(context.Background(), []any{"{{ .job.id }}", 2.0}, ctxData)
	require.NoError(t, err)
	assert.Equal(t, []any{"job-7", 2.0}, v)
}

func TestParsedTemplatesAreCached(t *testing.T) {
	r := template.NewRenderer(template.WithCacheSize(8))
	cfg := json.RawMessage(`{"owner":"a","repo":"b","workflowId":1,"ref":"{{ .version.tag }}"}`)
	for range 3 {
		c, err := r.Render(context.Background(), cfg, ctxData)
		require.NoError(t, err)
		assert.Equal(t, "v1.4.0", c.Ref)
	}
	allocs := testing.AllocsPerRun(50, func() {
		_, _ = r.Render(context.Background(), cfg, ctxData)
	})
	assert.Less(t, allocs, 40.0, "a cached config is not parsed again")
}

func TestConcurrentRender(t *testing.T) {
	r := template.NewRenderer()
	cfg := json.RawMessage(`{"owner":"a","repo":"b","workflowId":"x.yml","ref":"{{ .version.tag }}","inputs":{"n":"{{ range $i := 3 }}{{ $i }}{{ end }}"}}`)
	done := make(chan error)
	for i := range 16 {
		go func() {
			c := ctxData
			c.Version.Tag = strings.Repeat("v", i+1)
			ac, err := r.Render(context.Background(), cfg, c)
			if err == nil && (ac.Ref != c.Version.Tag || ac.Inputs["n"] != "012") {
				err = errors.New("wrong result " + ac.Ref)
			}
			done <- err
		}()
	}
	for range 16 {
		require.NoError(t, <-done)
	}
}
