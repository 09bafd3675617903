package doctor_test

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghbridge/ghbridge/doctor"
)

// The README's permissions and events table says what the doctor checks.
func TestREADMETableMatchesRequirements(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	rows := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`") {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = cells[1:]
	}
	for _, r := range doctor.Requirements() {
		row, ok := rows[string(r.Kind)]
		if !assert.True(t, ok, "README has no row for %s", r.Kind) {
			continue
		}
		assert.Equal(t, ticked(r.Events), row[0], r.Kind)
		assert.Equal(t, ticked(r.Optional), row[1], r.Kind)
		var perms []string
		for _, p := range slices.Sorted(maps.Keys(r.Permissions)) {
			perms = append(perms, p+": "+r.Permissions[p])
		}
		assert.Equal(t, strings.Join(perms, ", "), row[2], r.Kind)
	}
}

func ticked(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
}
