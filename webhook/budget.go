package webhook

import "sync/atomic"

// byteBudget caps the bytes held at once by deliveries whose signature is
// not checked yet. It never blocks: a delivery that does not fit is
// refused at once, so an unauthenticated client cannot park goroutines
// either. Lock-free, as every delivery passes through it.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// tryAcquire takes n bytes of the budget, or reports that they are not
// available.
func (b *byteBudget) tryAcquire(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// release gives back n bytes taken with tryAcquire.
func (b *byteBudget) release(n int64) { b.used.Add(-n) }
