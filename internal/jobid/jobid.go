// Package jobid finds job ids in run titles: dispatch uses it to tie a run
// to the job that started it, status to tie a delivery's run to its job.
package jobid

import "strings"

// Contains reports whether text holds id delimited by characters that
// cannot be part of an id, so that "job-1" is found neither in "job-10"
// nor in "acme.job-1".
func Contains(text, id string) bool {
	if id == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(text[i:], id)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(id)
		if !joined(text, start-1, -1) && !joined(text, end, 1) {
			return true
		}
		i = start + 1
	}
}

// joined reports whether text[at] continues an id that ends (dir -1) or
// starts (dir 1) next to it. A '.' between id characters joins, so that
// qualified ids ("tenant.id") are one; a '.' ending a sentence does not.
func joined(text string, at, dir int) bool {
	if at < 0 || at >= len(text) {
		return false
	}
	if text[at] == '.' {
		next := at + dir
		return next >= 0 && next < len(text) && char(text[next])
	}
	return char(text[at])
}

func char(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Candidates splits a run title into the words that could be a job id,
// at most 8, in order: what a delivery's run is looked up by when its run
// id is not known yet.
func Candidates(text string) []string {
	words := strings.FieldsFunc(text, func(r rune) bool {
		return r > 127 || !(r == '.' || char(byte(r)))
	})
	var out []string
	for _, w := range words {
		w = strings.Trim(w, ".")
		if len(w) >= 3 && Contains(text, w) {
			out = append(out, w)
		}
		if len(out) == 8 {
			break
		}
	}
	return out
}
