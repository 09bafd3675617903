package template_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ghbridge/ghbridge/template"
)

// Bounds every render must meet, whatever the agent config and job
// context, as long as both fit in the API's 1 MiB request body.
const (
	maxBody       = 1 << 20
	maxRenderMB   = 64
	bombRangeSize = 10000
)

// bomb is an agent config and job context built to make one render as
// expensive as possible.
type bomb struct {
	name string
	cfg  string
	ctx  template.Context
}

// wf wraps inputs into a workflow_dispatch config.
func wf(inputs string) string {
	return `{"owner":"acme","repo":"api","workflowId":"d.yml","inputs":{` + inputs + `}}`
}

// in returns one input holding text.
func in(text string) string {
	b, _ := json.Marshal(text)
	return `"x":` + string(b)
}

func withName(s string) template.Context {
	c := ctxData
	c.Resource.Name = s
	return c
}

func withConfig(m map[string]any) template.Context {
	c := ctxData
	c.Resource.Config = m
	return c
}

func zeros(n int) []any {
	l := make([]any, n)
	for i := range l {
		l[i] = float64(0)
	}
	return l
}

func bigMap(n, valLen int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("k%06d", i)] = strings.Repeat("v", valLen)
	}
	return m
}

func nested(depth int, leaf string) string {
	return strings.Repeat("[", depth) + leaf + strings.Repeat("]", depth)
}

// bombs are the worst templates we could write, grouped by what they
// attack. Each stays within the 1 MiB API body limit.
func bombs() []bomb {
	r := fmt.Sprintf("range %d", bombRangeSize)
	var many []string
	for i, size := 0, 0; size < 1000_000; i++ {
		many = append(many, fmt.Sprintf(`"k%d":"{{%d}}"`, i, i))
		size += len(many[i]) + 1
	}
	var manyBig []string
	for i := range 15 {
		manyBig = append(manyBig, fmt.Sprintf(`"k%d":"{{%d%s}}"`, i, i, strings.Repeat(" 1", 32000)))
	}
	deepLeaves := strings.TrimSuffix(strings.Repeat(`"{{1}}",`, 100_000), ",")
	ifs := strings.Repeat("{{ if 0 }}{{ end }}", 60_000/19)
	eqs := strings.Repeat("{{ if eq $.resource.name $.resource.identifier }}{{ end }}", 20)
	halfA := strings.Repeat("a", 450_000)
	eqCtx := ctxData
	eqCtx.Resource.Name, eqCtx.Resource.Identifier = halfA, strings.Clone(halfA)
	containsCtx := ctxData
	containsCtx.Resource.Name, containsCtx.Resource.Identifier = strings.Repeat("a", 600_000), strings.Repeat("a", 300_000)+"b"
	dagJSON := `{{ $l := list 1 }}{{ range 24 }}{{ $l = list $l $l }}{{ end }}`
	return []bomb{
		// printf and friends
		{"printf-width-split", wf(in(`{{ printf "%1000v" (split "" .resource.name) }}`)), withName(strings.Repeat("a", 900_000))},
		{"printf-width-list", wf(in(`{{ printf "%1000v" .resource.config.l }}`)), withConfig(map[string]any{"l": zeros(450_000)})},
		{"printf-loop-big-value", wf(in(`{{ ` + r + ` }}{{ $y := printf "%s" $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 250_000))},
		{"print-map-loop", wf(in(`{{ ` + r + ` }}{{ $y := print $.resource.config }}{{ end }}`)), withConfig(bigMap(8000, 20))},
		{"printf-dag", wf(in(dagJSON + `{{ printf "%v" $l }}`)), ctxData},
		{"print-dag", wf(in(dagJSON + `{{ $l }}`)), ctxData},
		// strings grown in loops
		{"concat-quadratic", wf(in(`{{ $x := "" }}{{ ` + r + ` }}{{ $x = printf "%s%s" $x $.resource.kind }}{{ end }}`)), func() template.Context { c := ctxData; c.Resource.Kind = strings.Repeat("k", 25); return c }()},
		{"upper-loop", wf(in(`{{ ` + r + ` }}{{ $y := upper $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 200_000))},
		{"replace-loop", wf(in(`{{ ` + r + ` }}{{ $y := replace "a" "bb" $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 120_000))},
		{"quote-loop", wf(in(`{{ ` + r + ` }}{{ $y := quote $.resource.name }}{{ end }}`)), withName(strings.Repeat("\x01", 60_000))},
		{"join-loop", wf(in(`{{ ` + r + ` }}{{ $y := join $.resource.name (list $.resource.name $.resource.name) }}{{ end }}`)), withName(strings.Repeat("a", 80_000))},
		{"b64enc-loop", wf(in(`{{ ` + r + ` }}{{ $y := b64enc $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 180_000))},
		{"truncate-loop", wf(in(`{{ ` + r + ` }}{{ $y := truncate 5 $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 900_000))},
		{"split-loop", wf(in(`{{ ` + r + ` }}{{ $y := len (split "" $.resource.name) }}{{ end }}`)), withName(strings.Repeat("a", 900_000))},
		{"sha256-loop", wf(in(`{{ ` + r + ` }}{{ $y := sha256sum $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", 900_000))},
		{"contains-loop", wf(in(`{{ ` + r + ` }}{{ $y := contains $.resource.identifier $.resource.name }}{{ end }}`)), containsCtx},
		{"eq-memcmp", wf(in(`{{ range 9999 }}` + eqs + `{{ end }}`)), eqCtx},
		// JSON
		{"toJson-loop", wf(in(`{{ ` + r + ` }}{{ $y := toJson $.resource.config }}{{ end }}`)), withConfig(bigMap(8000, 20))},
		{"toJson-dag", wf(in(dagJSON + `{{ $y := toJson $l }}`)), ctxData},
		{"fromJson-loop", wf(in(`{{ ` + r + ` }}{{ $y := fromJson $.resource.name }}{{ end }}`)), withName("[" + strings.Repeat("0,", 450_000) + "0]")},
		// control flow
		{"nested-range", wf(in(`{{ range $.resource.config.l }}{{ range $.resource.config.l }}{{ end }}{{ end }}`)), withConfig(map[string]any{"l": zeros(99)})},
		{"range-wide-body", wf(in(`{{ range 9999 }}` + ifs + `{{ end }}`)), ctxData},
		// the config itself
		{"parse-big-templates", wf(strings.Join(manyBig, ",")), ctxData},
		{"many-small-templates", wf(strings.Join(many, ",")), ctxData},
		{"deep-path", wf(`"x":` + nested(9000, deepLeaves)), ctxData},
		{"config-numbers", `{"type":"repository_dispatch","owner":"a","repo":"b","eventType":"e","clientPayload":{"l":[` + strings.TrimSuffix(strings.Repeat("0,", 520_000), ",") + `]}}`, ctxData},
	}
}

// measure runs f once and returns the bytes it allocated and the CPU
// time the process used meanwhile (GC included).
func measure(f func()) (allocMB, cpuSec float64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c0 := cpuTime()
	f()
	c1 := cpuTime()
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20), (c1 - c0).Seconds()
}

// TestBombsBounded renders every bomb and asserts that it renders or
// fails within 64 MB of allocation. Its CPU time is logged, not asserted
// (a timed assertion fails on a loaded machine): BenchmarkBombs measures
// it against decoding the config, and the step limit, which bounds it, is
// asserted exactly by TestStepLimitIsDeterministic.
func TestBombsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("renders about 30 MB of hostile configs")
	}
	for _, b := range bombs() {
		t.Run(b.name, func(t *testing.T) {
			if raceEnabled {
				// Nothing is measured under the race detector: the
				// bombs render side by side.
				t.Parallel()
			}
			body, err := json.Marshal(struct {
				Agent   json.RawMessage  `json:"agent"`
				Context template.Context `json:"context"`
			}{json.RawMessage(b.cfg), b.ctx})
			if err != nil {
				t.Fatal(err)
			}
			if len(body) > maxBody {
				t.Fatalf("bomb is %d bytes; the API takes %d", len(body), maxBody)
			}
			r := template.NewRenderer()
			var rerr error
			mb, cpu := measure(func() { _, rerr = r.Render(context.Background(), json.RawMessage(b.cfg), b.ctx) })
			t.Logf("BOMB %-22s %8.1f MB %7.3f s CPU  body %4d KB  err: %.90v", b.name, mb, cpu, len(body)>>10, rerr)
			if raceEnabled {
				return // the race detector's own cost would be measured
			}
			if mb > maxRenderMB {
				t.Errorf("allocated %.1f MB; the bound is %d MB", mb, maxRenderMB)
			}
		})
	}
}

// BenchmarkBombs renders each bomb. Baseline: decoding the same config
// with encoding/json, the floor any renderer of it pays.
func BenchmarkBombs(b *testing.B) {
	for _, bm := range bombs() {
		b.Run(bm.name, func(b *testing.B) {
			r := template.NewRenderer()
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.Render(context.Background(), json.RawMessage(bm.cfg), bm.ctx)
			}
		})
		b.Run(bm.name+"/baseline-json-decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				d := json.NewDecoder(strings.NewReader(bm.cfg))
				d.UseNumber()
				_ = d.Decode(&m)
			}
		})
	}
}
