package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/failure"
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
	t.Parallel()
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
		{`{{ truncate 2 "h\xffllo" }}|{{ truncate 9 "h\xff" }}|{{ truncate -1 "x" }}`, "h\uFFFD|h\xff|"},
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
	t.Parallel()
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
			assert.ErrorIs(t, err, failure.ErrInvalidJobAgent, "the config's fault, whatever the kind")
			var e *template.FieldError
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
	t.Parallel()
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
	t.Parallel()
	ctx := context.Background()
	small := template.NewRenderer(template.WithLimits(template.Limits{MaxOutput: 100, MaxIterations: 50, MaxTemplate: 200}))
	tight := template.NewRenderer(template.WithLimits(template.Limits{MaxOutput: 100}))
	few := template.NewRenderer(template.WithLimits(template.Limits{MaxSteps: 20}))
	dag := `{{ $l := list "x" }}{{ range 60 }}{{ $l = list $l $l }}{{ end }}`
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
		// values shared 2^60 times, built in 60 steps
		{"dag toJson", template.NewRenderer(), dag + `{{ toJson $l }}`, template.ErrOutputTooLarge},
		{"dag printed", template.NewRenderer(), dag + `{{ $l }}`, template.ErrOutputTooLarge},
		{"dag printf", template.NewRenderer(), dag + `{{ printf "%v" $l }}`, template.ErrOutputTooLarge},
		{"dag print", template.NewRenderer(), dag + `{{ $x := print $l }}`, template.ErrOutputTooLarge},
		{"dag join", template.NewRenderer(), dag + `{{ join "" (list $l) }}`, template.ErrOutputTooLarge},
		{"dag quote", template.NewRenderer(), dag + `{{ quote $l }}`, template.ErrOutputTooLarge},
		{"dag html", template.NewRenderer(), dag + `{{ html $l 1 }}`, template.ErrOutputTooLarge},
		{"dag toString", template.NewRenderer(), dag + `{{ toString $l }}`, template.ErrOutputTooLarge},
		// sized before allocating
		{"printf width on each element", template.NewRenderer(), `{{ printf "%1000v" (list 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143 144 145 146 147 148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166 167 168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187 188 189 190 191 192 193 194 195 196 197 198 199 200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 215 216 217 218 219 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 257 258 259 260 261 262 263 264 265 266) }}`, template.ErrOutputTooLarge},
		{"split into too many parts", tight, `{{ split "" "` + strings.Repeat("x", 10) + `" }}`, template.ErrOutputTooLarge},
		{"upper grows past the limit", tight, `{{ upper "` + strings.Repeat("ɐ", 40) + `" }}`, template.ErrOutputTooLarge},
		// steps
		{"wide body in a loop", template.NewRenderer(), `{{ range 9999 }}` + strings.Repeat(`{{ if 0 }}{{ end }}`, 20) + `{{ end }}`, template.ErrTooComplex},
		{"steps in if chains", few, `{{ if 1 }}{{ if 1 }}{{ if 1 }}{{ if 1 }}{{ if 1 }}{{ if 1 }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}`, template.ErrTooComplex},
		{"function work counts", few, `{{ $x := "` + strings.Repeat("x", 2000) + `" }}{{ $y := contains "y" $x }}`, template.ErrTooComplex},
		{"fromJson counts its input", few, `{{ fromJson "[` + strings.Repeat("0,", 200) + `0]" }}`, template.ErrTooComplex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.r.RenderString(ctx, "f", tc.in, ctxData)
			require.ErrorIs(t, err, tc.kind, "got %q", out)
		})
	}
}

// The defaults are what the package documentation says, and a renderer
// without limits set stops exactly at them. TestBombsBounded runs the
// worst cases at these defaults only without the race detector.
func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 256<<10, template.DefaultMaxOutput)
	assert.Equal(t, 100_000, template.DefaultMaxSteps)
	assert.Equal(t, 10_000, template.DefaultMaxIterations)
	assert.Equal(t, 64<<10, template.DefaultMaxTemplate)
	assert.Equal(t, 128<<10, template.DefaultMaxTemplateTotal)
	assert.Equal(t, 5*time.Second, template.DefaultTimeout)

	ctx := context.Background()
	r := template.NewRenderer()
	render := func(text string) error {
		_, err := r.RenderString(ctx, "f", text, ctxData)
		return err
	}
	require.NoError(t, render(fmt.Sprintf("{{ range %d }}{{ end }}", template.DefaultMaxIterations)))
	require.ErrorIs(t, render(fmt.Sprintf("{{ range %d }}{{ end }}", template.DefaultMaxIterations+1)), template.ErrTooManyIterations)

	line := strings.Repeat("x", 64)
	atLimit := fmt.Sprintf("{{ range %d }}%s{{ end }}", template.DefaultMaxOutput/len(line), line)
	require.NoError(t, render(atLimit))
	require.ErrorIs(t, render("x"+atLimit), template.ErrOutputTooLarge)

	big := "{{ .version.tag }}" + strings.Repeat("x", template.DefaultMaxTemplate-len("{{ .version.tag }}"))
	require.NoError(t, render(big))
	require.ErrorIs(t, render(big+"x"), template.ErrInvalidConfig)
}

// The hidden budget argument stays hidden: messages count it out, and
// templates cannot call the hidden functions.
func TestRenderBudgetIsHidden(t *testing.T) {
	t.Parallel()
	_, err := renderString(t, "{{ printf }}")
	require.ErrorIs(t, err, template.ErrRender)
	assert.Contains(t, err.Error(), "wrong number of args for printf: want at least 1 got 0")
	assert.NotContains(t, err.Error(), "\x00")

	out, err := renderString(t, "{{ len print }}|{{ upper | len }}|{{ (list 1 2).Field }}")
	require.Error(t, err, "got %q", out)

	out, err = renderString(t, "{{ len print }}")
	require.NoError(t, err)
	assert.Equal(t, "0", out)

	for _, text := range []string{"{{ __ghbridge_step 5 }}", "{{ __ghbridge_range_guard 1 }}", "{{ len __ghbridge_print_guard }}"} {
		_, err = renderString(t, text)
		require.ErrorIs(t, err, template.ErrNotAllowed, text)
	}
	// Redeclaring $ hides the budget: rendering fails, it is not bypassed.
	_, err = renderString(t, `{{ $ := dict "a" 1 }}{{ printf "x" }}`)
	require.Error(t, err)
}

// Steps are counted, not timed: the same template fails the same way
// whatever the machine's load, long before the wall-clock limit.
func TestStepLimitIsDeterministic(t *testing.T) {
	t.Parallel()
	text := `{{ range 500 }}{{ if 1 }}{{ $x := 1 }}{{ end }}{{ end }}`
	ctx := context.Background()
	var steps []int
	for _, limit := range []int{100, 2000, 4500, 10_000} {
		r := template.NewRenderer(template.WithLimits(template.Limits{MaxSteps: limit, Timeout: time.Hour}))
		_, err := r.RenderString(ctx, "f", text, ctxData)
		if err == nil {
			steps = append(steps, limit)
			continue
		}
		require.ErrorIs(t, err, template.ErrTooComplex)
		assert.Contains(t, err.Error(), "steps")
	}
	assert.Equal(t, []int{4500, 10_000}, steps, "the loop needs about 8 steps an iteration")
}

func TestRenderTimeout(t *testing.T) {
	t.Parallel()
	r := template.NewRenderer(template.WithLimits(template.Limits{Timeout: time.Nanosecond, MaxIterations: 1 << 30}))
	_, err := r.RenderString(context.Background(), "f", "{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}", ctxData)
	require.ErrorIs(t, err, template.ErrTimeout)

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = template.NewRenderer().RenderString(ctx, "f", "{{ .version.tag }}", ctxData)
	require.ErrorIs(t, err, template.ErrTimeout, "an expired context deadline bounds rendering too")
}

func TestRenderMap(t *testing.T) {
	t.Parallel()
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
	var e *template.FieldError
	require.True(t, errors.As(err, &e))
	assert.Equal(t, "a[1]", e.Field)
}

func TestRenderDocumentJSONErrors(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
