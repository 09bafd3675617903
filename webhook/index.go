package webhook

// idIndex finds the entries of a MemoryDeliveryStore by their keys: an
// open-addressing table of pointer-free slots, with linear probing and
// backward-shift deletion (no tombstones). Looking up a new id, the usual
// case, reads a slot and maybe its neighbours, one cache line, where a Go
// map reads a control word and then a slot; and it finds the empty slot
// the id goes in at once.
//
// A slot is 0 when empty, else tag<<32 | uint32(seq): seq is the sequence
// number of the entry (its low 32 bits: the store's entries span fewer
// than 1<<32 of them, see seqOf), and tag is the top 32 bits of the key's
// first word with the lowest bit set, so that no slot in use is 0. A key's
// home slot is the top bits of its tag, so that slots move, when the
// table grows or a slot is freed, without their keys.
type idIndex struct {
	slots []uint64
	bits  uint // len(slots) == 1<<bits, when slots is not nil
	n     int  // slots in use
}

// minIndexBits is the size of a new table: 64 slots.
const minIndexBits = 6

// tagOf returns a key's tag.
func tagOf(k idKey) uint32 { return uint32(k[0]>>32) | 1 }

// home returns the slot a tag is looked for from.
func (x *idIndex) home(tag uint32) int { return int(tag >> (32 - x.bits)) }

// set fills slot i, found empty by a probe for tag, and grows the table
// when it is half full.
func (x *idIndex) set(i int, tag uint32, seq uint64) {
	x.slots[i] = uint64(tag)<<32 | uint64(uint32(seq))
	x.n++
	if 2*x.n > len(x.slots) {
		x.resize(x.bits + 1)
	}
}

// resize moves the slots into a table of 1<<bits slots.
func (x *idIndex) resize(bits uint) {
	old := x.slots
	x.slots, x.bits = make([]uint64, 1<<bits), bits
	mask := len(x.slots) - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := x.home(uint32(v >> 32))
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = v
	}
}

// free empties slot i, moving back the slots after it that a probe would
// no longer reach.
func (x *idIndex) free(i int) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		// The slot at j may move to i unless its home is cyclically in
		// (i, j]: a probe from there would not pass i.
		h := x.home(uint32(x.slots[j] >> 32))
		if i < j && (h <= i || h > j) || j < i && h <= i && h > j {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}
