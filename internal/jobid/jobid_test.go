package jobid_test

import (
	"testing"

	"github.com/ghbridge/ghbridge/internal/jobid"
)

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		text, id string
		want     bool
	}{
		{"Deploy job-1", "job-1", true},
		{"Deploy job-10", "job-1", false},
		{"Deploy xjob-1", "job-1", false},
		{"job-1", "job-1", true},
		{"[job-1] deploy", "job-1", true},
		{"Deploy job-1 (retry job-1)", "job-1", true},
		{"job-10 job-1", "job-1", true},
		{"anything", "", false},
		{"6f1c2a0e-8b1d-4e44-9d21-2a8f5c0e7b11 deploy", "6f1c2a0e-8b1d-4e44-9d21-2a8f5c0e7b11", true},
		{"Deploy acme.job-1", "acme.job-1", true},
		{"Deploy acme.job-1", "job-1", false},
		{"Deploy beta.job-1", "acme.job-1", false},
		{"Deploy acme.job-1.", "acme.job-1", true},
		{"Deploy job-1. Done", "job-1", true},
		{"Deploy acme.job-1.x", "acme.job-1", false},
	} {
		if got := jobid.Contains(tc.text, tc.id); got != tc.want {
			t.Errorf("Contains(%q, %q) = %v", tc.text, tc.id, got)
		}
	}
}

func TestCandidates(t *testing.T) {
	got := jobid.Candidates("Deploy acme.job-1 to prod. Done")
	want := []string{"Deploy", "acme.job-1", "prod", "Done"}
	if len(got) != len(want) {
		t.Fatalf("Candidates = %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Candidates = %q", got)
		}
	}
	if n := len(jobid.Candidates("a1a b2b c3c d4d e5e f6f g7g h8h i9i j0j")); n != 8 {
		t.Errorf("at most 8 candidates, got %d", n)
	}
}

func FuzzContains(f *testing.F) {
	f.Add("Deploy acme.job-1.", "acme.job-1")
	f.Fuzz(func(t *testing.T, text, id string) {
		if jobid.Contains(text, id) && id != "" && !contains(text, id) {
			t.Fatalf("Contains(%q, %q) without the substring", text, id)
		}
		for _, c := range jobid.Candidates(text) {
			if !jobid.Contains(text, c) {
				t.Fatalf("candidate %q not contained in %q", c, text)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
