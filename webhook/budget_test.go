package webhook

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent takers never hold more than the limit together, and every
// byte comes back.
func TestByteBudgetNeverOverdraws(t *testing.T) {
	t.Parallel()
	b := &byteBudget{limit: 1000}
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(100 + 37*g)
			for range 2000 {
				if !b.tryAcquire(n) {
					continue
				}
				now := held.Add(n)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				held.Add(-n)
				b.release(n)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 1000 {
		t.Fatalf("%d bytes held at once, over the limit of 1000", p)
	}
	if u := b.used.Load(); u != 0 {
		t.Fatalf("%d bytes not given back", u)
	}
	if !b.tryAcquire(1000) || b.tryAcquire(1) || !b.tryAcquire(0) {
		t.Fatal("the whole budget, and only it, can be taken")
	}
}

// BenchmarkEdgeChecks measures what the edge adds to every delivery:
// header checks, the event label and taking and giving back the budget.
// Compare with BenchmarkDelivery (tens of µs).
func BenchmarkEdgeChecks(b *testing.B) {
	hdr := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"workflow_run"},
		"X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}, "X-Github-Hook-Id": {"123456789"}}
	budget := &byteBudget{limit: DefaultUnverifiedBudget}
	var values [len(checkedHeaders)]string
	b.ReportAllocs()
	for b.Loop() {
		if checkHeaders(hdr, &values) != "" || EventLabel(values[0]) != "workflow_run" || !budget.tryAcquire(18000) {
			b.Fatal("refused")
		}
		budget.release(18000)
	}
}
