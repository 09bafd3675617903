package contend_test

import (
	"sync"
	"testing"

	"github.com/ghbridge/ghbridge/internal/contend"
	"github.com/ghbridge/ghbridge/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Exit(m.Run()) }

func TestWinners(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	taken := false
	seen := map[int]bool{}
	got := contend.Winners(50, func(i int) bool {
		mu.Lock()
		defer mu.Unlock()
		seen[i] = true
		if taken {
			return false
		}
		taken = true
		return true
	})
	if got != 1 || len(seen) != 50 {
		t.Fatalf("Winners = %d over %d attempts, want 1 over 50", got, len(seen))
	}
	if got := contend.Winners(7, func(int) bool { return true }); got != 7 {
		t.Fatalf("Winners = %d, want 7", got)
	}
}
