package doctor

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplain(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "github.invalid", IsNotFound: true}
	ex := explain(&netErrWrap{dns}, "github.invalid", "the App's JWT")
	assert.Equal(t, CauseDNS, ex.Cause)
	assert.Contains(t, ex.Error(), "cannot resolve github.invalid")
	assert.True(t, ex.Network())
	ex = explain(context.DeadlineExceeded, "h", "x")
	assert.Equal(t, CauseTimeout, ex.Cause)
	assert.Nil(t, explain(nil, "h", "x"))
}

type netErrWrap struct{ err error }

func (e *netErrWrap) Error() string { return "Get https://github.invalid/app: " + e.err.Error() }
func (e *netErrWrap) Unwrap() error { return e.err }

func TestParseWorkflow(t *testing.T) {
	for _, tc := range []struct {
		src      string
		dispatch bool
		inputs   []string
	}{
		{"on: workflow_dispatch", true, nil},
		{"on: [push, workflow_dispatch]", true, nil},
		{"on:\n  push:\n  workflow_dispatch:\n    inputs:\n      job_id: {required: true}\n      version: {}\n", true, []string{"job_id", "version"}},
		{"on: push", false, nil},
		{"name: x", false, nil},
	} {
		w, err := parseWorkflow([]byte(tc.src))
		require.NoError(t, err)
		assert.Equal(t, tc.dispatch, w.Dispatchable, tc.src)
		for _, in := range tc.inputs {
			assert.True(t, w.Inputs[in], tc.src)
		}
	}
	_, err := parseWorkflow([]byte("on: [unclosed"))
	assert.Error(t, err)
}

func FuzzParseWorkflow(f *testing.F) {
	f.Add([]byte("on:\n  workflow_dispatch:\n    inputs:\n      job_id: {}\nrun-name: Deploy ${{ inputs.job_id }}\n"))
	f.Add([]byte("on: [push, workflow_dispatch]"))
	f.Add([]byte("on: {workflow_dispatch: null}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		w, err := parseWorkflow(src)
		if err == nil && w.Inputs == nil {
			t.Fatal("parsed without an inputs map")
		}
		if !w.Dispatchable && len(w.Inputs) > 0 {
			t.Fatalf("inputs without a workflow_dispatch trigger: %v", w.Inputs)
		}
		_ = strings.Contains(w.RunName, "job_id")
	})
}
