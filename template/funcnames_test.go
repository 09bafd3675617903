package template

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package documentation lists the function set: every function a
// template may call besides text/template's builtins, and nothing else.
func TestDocListsTheFunctions(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(src), "// # Functions\n")
	require.True(t, ok, "doc.go has a Functions section")
	section, _, _ = strings.Cut(section, "// #")
	var listed []string
	for _, line := range strings.Split(section, "\n") {
		words, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			continue
		}
		for _, w := range strings.Fields(words) {
			if w != "strings" && w != "values" { // the groups' labels
				listed = append(listed, w)
			}
		}
	}
	var defined []string
	for name := range funcs {
		if !strings.HasPrefix(name, internalPrefix) {
			defined = append(defined, name)
		}
	}
	slices.Sort(listed)
	slices.Sort(defined)
	assert.Equal(t, defined, listed)
}
