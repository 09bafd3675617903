package template_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
// expensive as possible, and what stops it: nil, or the error it fails
// with.
type bomb struct {
	name string
	cfg  string
	ctx  template.Context
	want error
}

// bombScale divides the bombs and the limits they run into. Under the
// race detector, where nothing is measured, the bombs are 16 times
// smaller and run into limits 16 times smaller: the same limits stop
// them on the same code paths, without the race detector's cost of
// rendering megabytes. Without it they are the worst cases at the
// default limits, and their allocation is measured.
func bombScale() int {
	if raceEnabled {
		return 16
	}
	return 1
}

// bombLimits are the default limits divided by scale.
func bombLimits(scale int) template.Limits {
	return template.Limits{
		MaxOutput:        template.DefaultMaxOutput / scale,
		MaxTemplate:      template.DefaultMaxTemplate / scale,
		MaxTemplateTotal: template.DefaultMaxTemplateTotal / scale,
		MaxSteps:         template.DefaultMaxSteps / scale,
		MaxIterations:    template.DefaultMaxIterations / scale,
	}
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
// attack, their sizes divided by scale (see bombScale). At scale 1 each
// stays within the 1 MiB API body limit.
func bombs(scale int) []bomb {
	n := func(size int) int { return size / scale }
	r := fmt.Sprintf("range %d", n(bombRangeSize))
	var many []string
	for i, size := 0, 0; size < n(1000_000); i++ {
		many = append(many, fmt.Sprintf(`"k%d":"{{%d}}"`, i, i))
		size += len(many[i]) + 1
	}
	var manyBig []string
	for i := range 15 {
		manyBig = append(manyBig, fmt.Sprintf(`"k%d":"{{%d%s}}"`, i, i, strings.Repeat(" 1", n(32000))))
	}
	deepLeaves := strings.TrimSuffix(strings.Repeat(`"{{1}}",`, n(100_000)), ",")
	ifs := strings.Repeat("{{ if 0 }}{{ end }}", n(60_000)/19)
	eqs := strings.Repeat("{{ if eq $.resource.name $.resource.identifier }}{{ end }}", 20)
	halfA := strings.Repeat("a", n(450_000))
	eqCtx := ctxData
	eqCtx.Resource.Name, eqCtx.Resource.Identifier = halfA, strings.Clone(halfA)
	containsCtx := ctxData
	containsCtx.Resource.Name, containsCtx.Resource.Identifier = strings.Repeat("a", n(600_000)), strings.Repeat("a", n(300_000))+"b"
	dagJSON := `{{ $l := list 1 }}{{ range 24 }}{{ $l = list $l $l }}{{ end }}`
	// The nested loops stay under the iteration limit: 99 by 99 at
	// scale 1 (9,900 iterations), 24 by 24 at scale 16 (600).
	side := int(math.Sqrt(float64(n(bombRangeSize)))) - 1
	// The client payload limit is GitHub's, not scaled: the numbers
	// stay over it (64 KB) at every scale.
	numbers := max(n(520_000), 40_000)
	tooComplex, tooLarge, invalid := template.ErrTooComplex, template.ErrOutputTooLarge, template.ErrInvalidConfig
	return []bomb{
		// printf and friends
		{"printf-width-split", wf(in(`{{ printf "%1000v" (split "" .resource.name) }}`)), withName(strings.Repeat("a", n(900_000))), tooLarge},
		{"printf-width-list", wf(in(`{{ printf "%1000v" .resource.config.l }}`)), withConfig(map[string]any{"l": zeros(n(450_000))}), tooLarge},
		{"printf-loop-big-value", wf(in(`{{ ` + r + ` }}{{ $y := printf "%s" $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(250_000))), tooComplex},
		{"print-map-loop", wf(in(`{{ ` + r + ` }}{{ $y := print $.resource.config }}{{ end }}`)), withConfig(bigMap(n(8000), 20)), tooLarge},
		{"printf-dag", wf(in(dagJSON + `{{ printf "%v" $l }}`)), ctxData, tooLarge},
		{"print-dag", wf(in(dagJSON + `{{ $l }}`)), ctxData, tooLarge},
		// strings grown in loops
		{"concat-quadratic", wf(in(`{{ $x := "" }}{{ ` + r + ` }}{{ $x = printf "%s%s" $x $.resource.kind }}{{ end }}`)), func() template.Context { c := ctxData; c.Resource.Kind = strings.Repeat("k", 25); return c }(), tooComplex},
		{"upper-loop", wf(in(`{{ ` + r + ` }}{{ $y := upper $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(200_000))), tooComplex},
		{"replace-loop", wf(in(`{{ ` + r + ` }}{{ $y := replace "a" "bb" $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(120_000))), tooComplex},
		{"quote-loop", wf(in(`{{ ` + r + ` }}{{ $y := quote $.resource.name }}{{ end }}`)), withName(strings.Repeat("\x01", n(60_000))), tooComplex},
		{"join-loop", wf(in(`{{ ` + r + ` }}{{ $y := join $.resource.name (list $.resource.name $.resource.name) }}{{ end }}`)), withName(strings.Repeat("a", n(80_000))), tooLarge},
		{"b64enc-loop", wf(in(`{{ ` + r + ` }}{{ $y := b64enc $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(180_000))), tooLarge},
		{"truncate-loop", wf(in(`{{ ` + r + ` }}{{ $y := truncate 5 $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(900_000))), nil},
		{"split-loop", wf(in(`{{ ` + r + ` }}{{ $y := len (split "" $.resource.name) }}{{ end }}`)), withName(strings.Repeat("a", n(900_000))), tooLarge},
		{"sha256-loop", wf(in(`{{ ` + r + ` }}{{ $y := sha256sum $.resource.name }}{{ end }}`)), withName(strings.Repeat("a", n(900_000))), tooComplex},
		{"contains-loop", wf(in(`{{ ` + r + ` }}{{ $y := contains $.resource.identifier $.resource.name }}{{ end }}`)), containsCtx, tooComplex},
		{"eq-memcmp", wf(in(`{{ range ` + strconv.Itoa(n(9999)) + ` }}` + eqs + `{{ end }}`)), eqCtx, tooComplex},
		// JSON
		{"toJson-loop", wf(in(`{{ ` + r + ` }}{{ $y := toJson $.resource.config }}{{ end }}`)), withConfig(bigMap(n(8000), 20)), tooLarge},
		{"toJson-dag", wf(in(dagJSON + `{{ $y := toJson $l }}`)), ctxData, tooLarge},
		{"fromJson-loop", wf(in(`{{ ` + r + ` }}{{ $y := fromJson $.resource.name }}{{ end }}`)), withName("[" + strings.Repeat("0,", n(450_000)) + "0]"), tooComplex},
		// control flow
		{"nested-range", wf(in(`{{ range $.resource.config.l }}{{ range $.resource.config.l }}{{ end }}{{ end }}`)), withConfig(map[string]any{"l": zeros(side)}), nil},
		{"range-wide-body", wf(in(`{{ range ` + strconv.Itoa(n(9999)) + ` }}` + ifs + `{{ end }}`)), ctxData, tooComplex},
		// the config itself
		{"parse-big-templates", wf(strings.Join(manyBig, ",")), ctxData, invalid},
		{"many-small-templates", wf(strings.Join(many, ",")), ctxData, invalid},
		{"deep-path", wf(`"x":` + nested(n(9000), deepLeaves)), ctxData, invalid},
		{"config-numbers", `{"type":"repository_dispatch","owner":"a","repo":"b","eventType":"e","clientPayload":{"l":[` + strings.TrimSuffix(strings.Repeat("0,", numbers), ",") + `]}}`, ctxData, invalid},
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

// TestBombsBounded renders every bomb and asserts that it is stopped by
// the limit it runs into (or renders), within 64 MB of allocation. Its
// CPU time is logged, not asserted (a timed assertion fails on a loaded
// machine): BenchmarkBombs measures it against decoding the config, and
// the step limit, which bounds it, is asserted exactly by
// TestStepLimitIsDeterministic. Under the race detector, which would be
// measured too, nothing is measured, and the bombs and limits are
// scaled down (bombScale).
func TestBombsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("renders about 30 MB of hostile configs")
	}
	scale := bombScale()
	for _, b := range bombs(scale) {
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
			r := template.NewRenderer() // the default limits
			if scale != 1 {
				r = template.NewRenderer(template.WithLimits(bombLimits(scale)))
			}
			var rerr error
			render := func() { _, rerr = r.Render(context.Background(), json.RawMessage(b.cfg), b.ctx) }
			if raceEnabled {
				render()
			} else {
				mb, cpu := measure(render)
				t.Logf("BOMB %-22s %8.1f MB %7.3f s CPU  body %4d KB  err: %.90v", b.name, mb, cpu, len(body)>>10, rerr)
				if mb > maxRenderMB {
					t.Errorf("allocated %.1f MB; the bound is %d MB", mb, maxRenderMB)
				}
			}
			if b.want == nil {
				require.NoError(t, rerr)
			} else {
				require.ErrorIs(t, rerr, b.want)
			}
		})
	}
}

// BenchmarkBombs renders each bomb. Baseline: decoding the same config
// with encoding/json, the floor any renderer of it pays.
func BenchmarkBombs(b *testing.B) {
	for _, bm := range bombs(1) {
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
