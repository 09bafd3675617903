package template

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	texttemplate "text/template"
	"time"
	"unicode"
)

// sizeValues are values of every kind a template can format, with the
// characters that grow most when escaped.
func sizeValues() []any {
	type pair struct {
		Name  string `json:"a_much_longer_name_than_the_field"`
		Value any
	}
	nested := []any{"a", []any{1.5, nil, map[string]any{"k": "v\x00<>&'\"\u2028"}}}
	return []any{
		nil, "", "plain", "\x00\x01\x7f\"\\'<>&=\n\t\u2028\u2029", "\xff\xfe invalid", "héllo wörld ɐ ı ǅ xı ſ K Ω 𐐨 ꞵ", "\U0001F600\u00ad\u0378",
		strings.Repeat("\x01", 50), 0.0, -1e308, math.SmallestNonzeroFloat64, math.MaxFloat64, math.Inf(1), math.NaN(),
		float32(-3.4e38), 1, -9223372036854775808, uint64(math.MaxUint64), int8(-128), true, false,
		complex(-1e308, 1e-308), json.Number("12345678901234567890"), []byte("bytes\x00\xff"), []string{"a", "", "\x01"},
		nested, map[string]any{"z": nested, "": nil, "\xff": []any{}}, map[int]string{-1: "x"}, pair{"n", nested}, &pair{"p", 1},
		[]any{&pair{}, (*pair)(nil)}, time.Unix(0, 0).UTC(), fmt.Errorf("an error"), [2]bool{true, false},
	}
}

func bigState() *execState {
	return &execState{maxOut: 1 << 30, maxSteps: 1 << 40, maxIter: 1 << 30, clock: clockEvery}
}

// Estimates must never be smaller than what fmt and encoding/json
// produce: they are what keeps rendering from allocating past the
// budget.
func TestSizeEstimatesAreUpperBounds(t *testing.T) {
	t.Parallel()
	verbs := []string{"v", "+v", "#v", "s", "q", "+q", "#q", "x", "X", "% x", "% #x", "#x", "d", "+d", "f", "e", "g", "b", "o", "O", "c", "U", "#U", "t", "T", "z"}
	mods := []string{"", "5", "-1000", "01000", ".3", "1000.1000", "*", ".*"}
	for _, v := range sizeValues() {
		st := bigState()
		if n, err := fmtSize(st, v); err != nil || n < len(fmt.Sprint(v)) {
			t.Errorf("fmtSize(%#v) = %d, %v; Sprint gives %d", v, n, err, len(fmt.Sprint(v)))
		}
		if b, err := json.Marshal(v); err == nil {
			if n, err := jsonSize(st, v); err != nil || n < len(b) {
				t.Errorf("jsonSize(%#v) = %d, %v; Marshal gives %d", v, n, err, len(b))
			}
		}
		for _, verb := range verbs {
			for _, mod := range mods {
				format := "x%" + mod + verb + "y"
				args := []any{v}
				if strings.Contains(mod, "*") {
					args = []any{-999, v}
				}
				n, err := printfSize(st, format, args)
				if err != nil {
					t.Fatalf("printfSize(%q): %v", format, err)
				}
				if want := len(fmt.Sprintf(format, args...)); n < want {
					t.Errorf("printfSize(%q, %#v) = %d; Sprintf gives %d", format, v, n, want)
				}
			}
		}
	}
	for _, format := range []string{"%", "%d %d", "%!", "%%%5%", "%[1]d"[:2], "%-#+ 010.5"} {
		n, err := printfSize(bigState(), format, []any{1})
		if strings.Contains(format, "[") {
			if err == nil {
				t.Errorf("printfSize(%q) accepted an argument index", format)
			}
			continue
		}
		if want := len(fmt.Sprintf(format, 1)); err != nil || n < want {
			t.Errorf("printfSize(%q) = %d, %v; Sprintf gives %d", format, n, err, want)
		}
	}
	for _, v := range sizeValues() {
		s, ok := v.(string)
		if !ok {
			continue
		}
		for _, c := range []struct {
			name string
			got  int
			want int
		}{
			{"quote", quoteSize(s), len(strconv.Quote(s))},
			{"upper", mappedSize(s, unicode.ToUpper), len(strings.ToUpper(s))},
			{"lower", mappedSize(s, unicode.ToLower), len(strings.ToLower(s))},
			{"title", mappedSize(s, unicode.ToUpper), len(title(s))},
			{"html", htmlSize(s), len(texttemplate.HTMLEscapeString(s))},
			{"js", jsSize(s), len(texttemplate.JSEscapeString(s))},
			{"urlquery", urlQuerySize(s), len(url.QueryEscape(s))},
			{"json", jsonStringSize(s), len(must(json.Marshal(s)))},
		} {
			if c.got < c.want {
				t.Errorf("%s size of %q = %d; the function gives %d", c.name, s, c.got, c.want)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// An estimate stops early: sizing a value far larger than the budget
// costs about the budget, not the value.
func TestSizeEstimateStopsEarly(t *testing.T) {
	t.Parallel()
	l := []any{"x"}
	for range 60 { // 2^60 leaves, shared
		l = []any{l, l}
	}
	const budget = 1 << 16
	st := &execState{maxOut: budget, maxSteps: 1 << 40, clock: clockEvery}
	z := newSizer(st)
	z.fmtValue(reflect.ValueOf(l), vspec, 0)
	if !z.over() || z.visited > budget {
		t.Fatalf("visited %d values, over=%v", z.visited, z.over())
	}
	z = newSizer(st)
	z.jsonValue(reflect.ValueOf(l), 0)
	if !z.over() || z.visited > budget {
		t.Fatalf("visited %d values, over=%v", z.visited, z.over())
	}
}
