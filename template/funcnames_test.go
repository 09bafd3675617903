package template_test

import (
	"slices"
	"testing"

	"github.com/ghbridge/ghbridge/template"
)

// FuncNames documents the function set: every name it lists renders, and
// the hidden step counter is not among them.
func TestFuncNames(t *testing.T) {
	t.Parallel()
	names := template.FuncNames()
	for _, want := range []string{"lower", "upper", "toJson", "default"} {
		if !slices.Contains(names, want) {
			t.Errorf("FuncNames lacks %q: %v", want, names)
		}
	}
	for _, n := range names {
		if n == "" || n[0] == '_' {
			t.Errorf("FuncNames lists an internal name %q", n)
		}
	}
}
