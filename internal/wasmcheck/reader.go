package wasmcheck

import (
	"errors"
	"fmt"
)

// reader decodes the binary format. The first error sticks: later reads
// return zero values, so callers check err once per loop.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of module")

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b)-r.off {
		r.fail(errShort)
		return
	}
	r.off += n
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() uint32 {
	if r.off < len(r.b) && r.b[r.off] < 0x80 && r.err == nil {
		r.off++
		return uint32(r.b[r.off-1])
	}
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(fmt.Errorf("integer at offset %d is longer than 5 bytes", r.off))
	return 0
}

// leb skips a signed or unsigned LEB128 of up to 64 bits.
func (r *reader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(fmt.Errorf("integer at offset %d is longer than 10 bytes", r.off))
}

// name reads a length-prefixed string, quoted and shortened for messages.
func (r *reader) name() string {
	s := r.rawName()
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// rawName reads a length-prefixed string as it is.
func (r *reader) rawName() string {
	n := int(r.u32())
	if r.err != nil {
		return ""
	}
	if n > len(r.b)-r.off {
		r.fail(errShort)
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

// blockType skips a block type: empty (0x40), a value type, or an s33
// type index.
func (r *reader) blockType() {
	if r.off < len(r.b) && r.b[r.off]&0xc0 == 0x40 && r.b[r.off]&0x80 == 0 {
		r.off++ // 0x40 or a one-byte value type (0x7b..0x7f, 0x70, 0x6f)
		return
	}
	r.leb()
}

func (r *reader) memarg() { r.leb(); r.leb() }

// Immediate kinds, by opcode: what follows an instruction.
const (
	immBad    = iota // unknown opcode
	immNone          // nothing
	immU32           // one index
	immU32x2         // two indices
	immMemarg        // alignment and offset
	immLEB           // a constant
	immF32           // 4 bytes
	immF64           // 8 bytes
	immSelect        // a vector of value types
	immFC            // 0xfc prefix
	immFD            // 0xfd prefix (SIMD)
	immFE            // 0xfe prefix (threads)
)

var immediates = func() (t [256]uint8) {
	set := func(k uint8, ops ...int) {
		for _, op := range ops {
			t[op] = k
		}
	}
	set(immNone, 0x00, 0x01, 0x05, 0x0F, 0x19, 0x1A, 0x1B, 0xD1)
	for op := 0x45; op <= 0xC4; op++ {
		t[op] = immNone
	}
	set(immU32, 0x07, 0x08, 0x09, 0x18, 0x0C, 0x0D, 0x10, 0x12, 0x3F, 0x40, 0xD2)
	for op := 0x20; op <= 0x26; op++ {
		t[op] = immU32
	}
	set(immU32x2, 0x11, 0x13)
	for op := 0x28; op <= 0x3E; op++ {
		t[op] = immMemarg
	}
	set(immLEB, 0x41, 0x42, 0xD0)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immSelect, 0x1C)
	set(immFC, 0xFC)
	set(immFD, 0xFD)
	set(immFE, 0xFE)
	return t
}()

// skipImmediates skips the immediates of every instruction other than the
// structured ones Check counts, and refuses opcodes it does not know: a
// module it cannot read is not one it can vouch for.
func (r *reader) skipImmediates(op byte) error {
	switch immediates[op] {
	case immNone:
	case immU32:
		r.u32()
	case immU32x2:
		r.u32()
		r.u32()
	case immMemarg:
		r.memarg()
	case immLEB:
		r.leb()
	case immF32:
		r.skip(4)
	case immF64:
		r.skip(8)
	case immSelect:
		r.skip(int(r.u32()))
	case immFC:
		return r.skipFC()
	case immFD:
		return r.skipSIMD()
	case immFE:
		if r.u32() == 0x03 { // atomic.fence
			r.byte()
		} else {
			r.memarg()
		}
	default:
		return fmt.Errorf("unknown opcode %#x at offset %d", op, r.off-1)
	}
	return nil
}

func (r *reader) skipFC() error {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub <= 17:
		r.u32()
	default:
		return fmt.Errorf("unknown opcode 0xfc %d at offset %d", sub, r.off)
	}
	return nil
}

func (r *reader) skipSIMD() error {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 0x113:
		// no immediates
	default:
		return fmt.Errorf("unknown opcode 0xfd %d at offset %d", sub, r.off)
	}
	return nil
}
