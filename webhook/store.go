package webhook

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DeliveryStore remembers deliveries so that each is applied once, across
// retries, redeliveries and replicas. webhooktest.TestDeliveryStore checks
// an implementation.
type DeliveryStore interface {
	// Claim marks a delivery as being processed for at most lease. It
	// reports false when the delivery was completed already, or another
	// worker holds a claim on it that has not expired.
	Claim(ctx context.Context, id string, lease time.Duration) (bool, error)
	// Complete records that the delivery was processed; it is never
	// claimed again.
	Complete(ctx context.Context, id string) error
	// Release drops a claim after a failure, so that a redelivery with
	// the same id is processed.
	Release(ctx context.Context, id string) error
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
	leaseEnds time.Time
}

// NewMemoryDeliveryStore returns a store keeping up to max ids (0 means
// DefaultMemoryDeliveries).
func NewMemoryDeliveryStore(max int) *MemoryDeliveryStore {
	if max <= 0 {
		max = DefaultMemoryDeliveries
	}
	return &MemoryDeliveryStore{max: max, now: time.Now, ids: map[string]*list.Element{}, order: list.New()}
}

// Claim implements DeliveryStore.
func (s *MemoryDeliveryStore) Claim(ctx context.Context, id string, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.ids[id]; ok {
		d := e.Value.(*memDelivery)
		if d.done || now.Before(d.leaseEnds) {
			return false, nil
		}
		d.leaseEnds = now.Add(lease)
		return true, nil
	}
	s.makeRoom()
	s.ids[id] = s.order.PushBack(&memDelivery{id: id, leaseEnds: now.Add(lease)})
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
func (s *MemoryDeliveryStore) Release(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ids[id]; ok && !e.Value.(*memDelivery).done {
		s.order.Remove(e)
		delete(s.ids, id)
	}
	return nil
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
