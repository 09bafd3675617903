package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"
)

// DeliveryStore remembers deliveries so that each is applied once, across
// retries, redeliveries, replicas and restarts. Hosts with several
// replicas implement it on shared storage (WithDeliveryStore) and run
// webhooktest.TestDeliveryStore on their implementation.
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

// Holder names the process that claims deliveries: hosts make theirs
// with NewHolder (WithHolder); DeliveryStore implementations keep it with
// each claim.
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
// Hosts call it once at startup.
func NewHolder(name string) Holder {
	if name == "" {
		name = "anonymous-" + randomHex(8)
	}
	return Holder{Name: name, Incarnation: time.Now().UnixNano()}
}

// String returns "name#incarnation", for logs.
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
// keeps by default, for hosts that size theirs relative to it.
const DefaultMemoryDeliveries = 100_000

// MemoryDeliveryStore is a DeliveryStore in memory, bounded: beyond its
// size the oldest ids are forgotten. It suits a single process; replicas
// need a shared store. The zero value keeps DefaultMemoryDeliveries ids
// and measures leases with time.Now. It is the Handler's default; hosts
// make one themselves (NewMemoryDeliveryStore) only to size it.
//
// Ids are kept as 128-bit keyed hashes in pointer-free tables, so that the
// garbage collector has nothing to scan in them however many are kept. A
// new delivery taken for a duplicate needs two independent 64-bit hashes
// with random seeds to collide: about 1 in 10^29 at 100,000 ids.
type MemoryDeliveryStore struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time // nil: time.Now
	epoch time.Time        // leases are kept as offsets from it
	seeds [2]maphash.Seed

	index map[idKey]uint64 // id -> sequence number of its entry
	queue []memDelivery    // entries by sequence number, oldest first
	first uint64           // sequence number of queue[0]
	head  int              // queue[:head] are dropped
	live  int              // entries of queue in use
	// holders interns claim holders, so entries hold small numbers.
	holders    []Holder
	holderIDs  map[Holder]int32
	holderTrim int   // len(holders) at which unused holders are dropped
	lastHolder int32 // the holder interned last, if still in holders
	// last is the id claimed last, whose completion usually comes next.
	last struct {
		id  string
		key idKey
		seq uint64
	}
}

// idKey is a delivery id's 128-bit keyed hash.
type idKey [2]uint64

// memDelivery is a delivery id's state. A released entry stays in the
// queue, unused, until it is dropped from the front.
type memDelivery struct {
	key       idKey
	leaseEnds time.Duration // since epoch
	holder    int32         // index in holders
	used      bool
	done      bool
}

// MemoryStoreOption configures a MemoryDeliveryStore
// (NewMemoryDeliveryStore).
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
	s := &MemoryDeliveryStore{max: max}
	for _, o := range opts {
		o(s)
	}
	return s
}

// init sets up a store on first use; s.mu held.
func (s *MemoryDeliveryStore) init() {
	if s.index != nil {
		return
	}
	if s.max <= 0 {
		s.max = DefaultMemoryDeliveries
	}
	if s.now == nil {
		s.epoch = time.Now()
	} else {
		s.epoch = s.now()
	}
	s.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	s.index = map[idKey]uint64{}
	s.holderIDs = map[Holder]int32{}
	s.holderTrim = 64
}

// locate returns id's key and, when the store holds it, the sequence
// number of its entry; s.mu held.
func (s *MemoryDeliveryStore) locate(id string) (k idKey, seq uint64, ok bool) {
	s.init()
	if id == s.last.id && id != "" {
		// Usually a completion right after the claim: no hashing, and
		// no lookup in a table too large for the CPU's caches.
		if d := s.entry(s.last.seq); d != nil && d.key == s.last.key {
			return d.key, s.last.seq, true
		}
		k = s.last.key
	} else {
		k = idKey{maphash.String(s.seeds[0], id), maphash.String(s.seeds[1], id)}
	}
	seq, ok = s.index[k]
	return k, seq, ok
}

// entry returns the entry in use of sequence number seq, or nil; s.mu
// held.
func (s *MemoryDeliveryStore) entry(seq uint64) *memDelivery {
	if seq < s.first || seq-s.first >= uint64(len(s.queue)) || !s.queue[seq-s.first].used {
		return nil
	}
	return &s.queue[seq-s.first]
}

// clock returns the time now as an offset from the epoch; s.mu held.
func (s *MemoryDeliveryStore) clock() time.Duration {
	if s.now == nil {
		return time.Since(s.epoch) // reads the monotonic clock only
	}
	return s.now().Sub(s.epoch)
}

// Claim implements DeliveryStore.
func (s *MemoryDeliveryStore) Claim(ctx context.Context, id string, holder Holder, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, seq, ok := s.locate(id)
	now := s.clock()
	if ok {
		d := &s.queue[seq-s.first]
		if d.done || (now < d.leaseEnds && !holder.earlierIncarnation(s.holders[d.holder])) {
			return false, nil
		}
		d.holder, d.leaseEnds = s.intern(holder), addSat(now, lease)
	} else {
		seq = s.add(memDelivery{key: k, holder: s.intern(holder), leaseEnds: addSat(now, lease)})
	}
	s.last.id, s.last.key, s.last.seq = id, k, seq
	return true, nil
}

// Complete implements DeliveryStore.
func (s *MemoryDeliveryStore) Complete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, seq, ok := s.locate(id)
	if ok {
		s.queue[seq-s.first].done = true
		return nil
	}
	s.add(memDelivery{key: k, done: true, holder: -1})
	return nil
}

// Release implements DeliveryStore.
func (s *MemoryDeliveryStore) Release(ctx context.Context, id string, holder Holder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seq, ok := s.locate(id); ok {
		if d := &s.queue[seq-s.first]; !d.done && s.holders[d.holder] == holder {
			s.remove(d)
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
	s.init()
	n := 0
	for i := range s.queue {
		if d := &s.queue[i]; d.used && !d.done && holder.earlierIncarnation(s.holders[d.holder]) {
			s.remove(d)
			n++
		}
	}
	return n, nil
}

// add appends a new entry, forgetting the oldest beyond the bound, and
// returns its sequence number; s.mu held.
func (s *MemoryDeliveryStore) add(d memDelivery) uint64 {
	for s.live >= s.max {
		s.dropFront()
	}
	if len(s.queue)-s.live > s.max {
		s.compact()
	}
	d.used = true
	seq := s.first + uint64(len(s.queue))
	s.index[d.key] = seq
	s.queue = append(s.queue, d)
	s.live++
	return seq
}

// remove forgets an entry; its slot stays in the queue until it reaches
// the front. s.mu held.
func (s *MemoryDeliveryStore) remove(d *memDelivery) {
	delete(s.index, d.key)
	*d = memDelivery{}
	s.live--
}

// dropFront forgets the oldest entry in use. The queue is compacted in
// place once its dropped front is half of it: each entry is moved once on
// average, and the queue's array is reused. s.mu held.
func (s *MemoryDeliveryStore) dropFront() {
	for !s.queue[s.head].used {
		s.head++
	}
	s.remove(&s.queue[s.head])
	for s.head < len(s.queue) && !s.queue[s.head].used {
		s.head++
	}
	if s.head >= len(s.queue)/2 {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.first += uint64(s.head)
		s.head = 0
	}
}

// compact drops the released entries and the dropped front from the
// queue, renumbering the entries in use in the index. A
// released entry reaches the front of the queue only once the entries
// before it are forgotten: without compact, a store that seldom fills up
// would keep a slot for every claim released after a failed handler. add
// calls it when they are more than max, so that the queue holds at most
// 2*max+1 entries, and each entry is moved once on average. s.mu held.
func (s *MemoryDeliveryStore) compact() {
	n := 0
	for _, d := range s.queue {
		if d.used {
			s.queue[n] = d
			n++
		}
	}
	clear(s.queue[n:])
	s.queue, s.head = s.queue[:n], 0
	s.last.id = "" // its sequence number is another entry's now
	for p := range s.queue {
		s.index[s.queue[p].key] = s.first + uint64(p)
	}
}

// intern returns holder's number, dropping the holders no entry names
// when they become many; s.mu held.
func (s *MemoryDeliveryStore) intern(holder Holder) int32 {
	if id := s.lastHolder; int(id) < len(s.holders) && s.holders[id] == holder {
		return id // usually the same holder every time: no hashing
	}
	if id, ok := s.holderIDs[holder]; ok {
		s.lastHolder = id
		return id
	}
	if len(s.holders) >= s.holderTrim {
		s.trimHolders()
	}
	id := int32(len(s.holders))
	s.holders = append(s.holders, holder)
	s.holderIDs[holder] = id
	s.lastHolder = id
	return id
}

// trimHolders renumbers the holders, keeping those that entries name;
// s.mu held.
func (s *MemoryDeliveryStore) trimHolders() {
	renumber := make([]int32, len(s.holders))
	for i := range renumber {
		renumber[i] = -1
	}
	var kept []Holder
	clear(s.holderIDs)
	for i := range s.queue {
		d := &s.queue[i]
		if !d.used || d.holder < 0 {
			continue
		}
		if renumber[d.holder] < 0 {
			renumber[d.holder] = int32(len(kept))
			s.holderIDs[s.holders[d.holder]] = int32(len(kept))
			kept = append(kept, s.holders[d.holder])
		}
		d.holder = renumber[d.holder]
	}
	s.holders = kept
	s.holderTrim = max(64, 2*len(kept))
}

// addSat returns t+d, saturating instead of overflowing (a lease of
// "forever").
func addSat(t, d time.Duration) time.Duration {
	if d > 0 && t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

// Len returns how many ids the store holds, for metrics and tests.
func (s *MemoryDeliveryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}
