package textlimit_test

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/ghbridge/ghbridge/internal/textlimit"
)

func TestRunes(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "héllo", textlimit.Runes("héllo", 5))
	assert.Equal(t, "hé…", textlimit.Runes("héllo", 3))
	assert.Equal(t, "a\uFFFDb", textlimit.Runes("a\xffb", 5), "invalid UTF-8 is repaired")
}

func TestBytes(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "héllo", textlimit.Bytes("héllo", 6))
	got := textlimit.Bytes("ééééé", 7) // 10 bytes
	assert.Equal(t, "éé…", got, "cut between characters")
	assert.LessOrEqual(t, len(got), 7)
	assert.True(t, utf8.ValidString(textlimit.Bytes("a\xff\xfe", 3)))
}
