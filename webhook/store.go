package webhook

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// DeliveryStore remembers deliveries so that each is applied once, across
// retries, redeliveries, replicas and restarts. webhooktest.TestDeliveryStore
// checks an implementation.
//
// A claim names its Holder. A claim is stale, and a redelivery with the
// same id is processed, once its lease has passed or when it was taken by
// an earlier incarnation of the claiming process (same Holder.Name, lower
// Incarnation): that process is gone, and whatever it was doing died with
// it.
type DeliveryStore interface {
	// Claim marks a delivery as being processed by holder for at most
	// lease. It reports false when the delivery was completed already, or
	// is claimed by another worker and that claim is not stale.
	Claim(ctx context.Context, id string, holder Holder, lease time.Duration) (bool, error)
	// Complete records that the delivery was processed; it is never
	// claimed again.
	Complete(ctx context.Context, id string) error
	// Release drops holder's claim after a failure, so that a
	// redelivery with the same id is processed. A claim that another
	// holder has taken over since is left alone.
	Release(ctx context.Context, id string, holder Holder) error
	// ReleaseStale drops every claim that earlier incarnations of
	// holder.Name still hold, and returns how many. A process calls it
	// when it starts (Handler.ReleaseStaleClaims), so that deliveries it
	// was processing when it died can be redelivered to any replica at
	// once instead of after their lease.
	ReleaseStale(ctx context.Context, holder Holder) (int, error)
}

// Holder names the process that claims deliveries.
type Holder struct {
	// Name is the process's place: the same across its restarts (a host
	// name, a StatefulSet pod, host:port) and different from every other
	// process sharing the DeliveryStore at the same time. Claims of an
	// empty Name are only ever freed by their lease.
	Name string
	// Incarnation tells the starts of the process apart: a later start
	// has a higher one (NewHolder uses the start time).
	Incarnation int64
}

// NewHolder returns the Holder of this start of the process named name.
// An empty name is replaced by a random one: without a name that survives
// restarts, claims of a process that died are freed by their lease only.
func NewHolder(name string) Holder {
	if name == "" {
		name = "anonymous-" + randomHex(8)
	}
	return Holder{Name: name, Incarnation: time.Now().UnixNano()}
}

// String returns "name#incarnation".
func (h Holder) String() string { return h.Name + "#" + strconv.FormatInt(h.Incarnation, 10) }

// earlierIncarnation reports whether a claim by old is stale because old
// is another start of the process claiming now.
func (h Holder) earlierIncarnation(old Holder) bool {
	return h.Name != "" && old.Name == h.Name && old.Incarnation < h.Incarnation
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// DefaultMemoryDeliveries is how many delivery ids a MemoryDeliveryStore
// keeps by default.
const DefaultMemoryDeliveries = 100_000

// MemoryDeliveryStore is a DeliveryStore in memory, bounded: beyond its
// size the oldest ids are forgotten. It suits a single process; replicas
// need a shared store.
type MemoryDeliveryStore struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	ids   map[string]*list.Element
	order *list.List // oldest first
}

type memDelivery struct {
	id        string
	done      bool
	holder    Holder
	leaseEnds time.Time
}

// MemoryStoreOption configures a MemoryDeliveryStore.
type MemoryStoreOption func(*MemoryDeliveryStore)

// WithStoreClock sets the clock that leases are measured with (default
// time.Now), for tests.
func WithStoreClock(now func() time.Time) MemoryStoreOption {
	return func(s *MemoryDeliveryStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewMemoryDeliveryStore returns a store keeping up to max ids (0 means
// DefaultMemoryDeliveries).
func NewMemoryDeliveryStore(max int, opts ...MemoryStoreOption) *MemoryDeliveryStore {
	if max <= 0 {
		max = DefaultMemoryDeliveries
	}
	s := &MemoryDeliveryStore{max: max, now: time.Now, ids: map[string]*list.Element{}, order: list.New()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Claim implements DeliveryStore.
func (s *MemoryDeliveryStore) Claim(ctx context.Context, id string, holder Holder, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.ids[id]; ok {
		d := e.Value.(*memDelivery)
		if d.done || (now.Before(d.leaseEnds) && !holder.earlierIncarnation(d.holder)) {
			return false, nil
		}
		d.holder, d.leaseEnds = holder, now.Add(lease)
		return true, nil
	}
	s.makeRoom()
	s.ids[id] = s.order.PushBack(&memDelivery{id: id, holder: holder, leaseEnds: now.Add(lease)})
	return true, nil
}

// Complete implements DeliveryStore.
func (s *MemoryDeliveryStore) Complete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok {
		e.Value.(*memDelivery).done = true
		return nil
	}
	s.makeRoom()
	s.ids[id] = s.order.PushBack(&memDelivery{id: id, done: true})
	return nil
}

// Release implements DeliveryStore.
func (s *MemoryDeliveryStore) Release(ctx context.Context, id string, holder Holder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok {
		if d := e.Value.(*memDelivery); !d.done && d.holder == holder {
			s.order.Remove(e)
			delete(s.ids, id)
		}
	}
	return nil
}

// ReleaseStale implements DeliveryStore. It walks every id held: a
// process calls it once, when it starts.
func (s *MemoryDeliveryStore) ReleaseStale(ctx context.Context, holder Holder) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e := s.order.Front(); e != nil; {
		next := e.Next()
		if d := e.Value.(*memDelivery); !d.done && holder.earlierIncarnation(d.holder) {
			s.order.Remove(e)
			delete(s.ids, d.id)
			n++
		}
		e = next
	}
	return n, nil
}

// makeRoom forgets the oldest ids beyond the bound; s.mu held.
func (s *MemoryDeliveryStore) makeRoom() {
	for s.order.Len() >= s.max {
		oldest := s.order.Front()
		delete(s.ids, oldest.Value.(*memDelivery).id)
		s.order.Remove(oldest)
	}
}

// Len returns how many ids the store holds.
func (s *MemoryDeliveryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
