package status

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMappingTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, conclusion string
		want               Status
		known              bool
	}{
		{"requested", "", InProgress, true},
		{"queued", "", InProgress, true},
		{"pending", "", InProgress, true},
		{"waiting", "", ActionRequired, true},
		{"action_required", "", ActionRequired, true},
		{"in_progress", "", InProgress, true},
		{"completed", "success", Successful, true},
		{"completed", "failure", Failure, true},
		{"completed", "timed_out", Failure, true},
		{"completed", "startup_failure", Failure, true},
		{"completed", "cancelled", Cancelled, true},
		{"completed", "action_required", ActionRequired, true},
		{"completed", "skipped", Skipped, true},
		{"completed", "neutral", Skipped, true},
		{"completed", "stale", Skipped, true},
		{"completed", "", Failure, false},
		{"completed", "exploded", Failure, false},
		{"teleporting", "", InProgress, false},
		{"", "", InProgress, false},
	} {
		got, known := fromRun(tc.status, tc.conclusion)
		assert.Equal(t, tc.want, got, "%s/%s", tc.status, tc.conclusion)
		assert.Equal(t, tc.known, known, "%s/%s", tc.status, tc.conclusion)
	}
	// The tables hold every documented value and nothing else.
	assert.Len(t, runStatuses, 6)
	assert.Len(t, runConclusions, 9)
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	final := []Status{Successful, Failure, Cancelled, Skipped, InvalidJobAgent, InvalidIntegration}
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			want := from == to || (!from.Final() && to != Pending)
			assert.Equal(t, want, canTransition(from, to), "%s -> %s", from, to)
		}
		assert.False(t, canTransition(from, "bogus"))
	}
	for _, s := range final {
		assert.True(t, s.Final(), s)
	}
	for _, s := range []Status{Pending, InProgress, ActionRequired, ExternalRunNotFound} {
		assert.False(t, s.Final(), s)
	}
}
