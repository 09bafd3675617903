// Package contend runs attempts at once and counts those that win, for the
// conformance suites' checks that a store lets exactly one through.
package contend

import (
	"sync"
	"sync/atomic"
)

// Winners runs try(0) ... try(n-1) at once and returns how many reported
// a win.
func Winners(n int, try func(i int) bool) int {
	var wg sync.WaitGroup
	var won atomic.Int64
	for i := range n {
		wg.Go(func() {
			if try(i) {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	return int(won.Load())
}
