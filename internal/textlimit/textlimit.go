// Package textlimit shortens the texts ghbridge sends to GitHub to the
// limits GitHub sets, in characters or bytes, as valid UTF-8 (GitHub
// refuses anything else).
package textlimit

import (
	"strings"
	"unicode/utf8"
)

// Runes shortens s to at most n characters, the last an ellipsis.
func Runes(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Bytes shortens s to at most n bytes, the last character an ellipsis,
// cutting only between characters.
func Bytes(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
