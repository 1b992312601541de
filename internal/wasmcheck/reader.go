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

// skipImmediates skips the immediates of every instruction other than the
// structured ones Check counts, and refuses opcodes it does not know: a
// module it cannot read is not one it can vouch for.
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0F, op == 0x19, op == 0x1A, op == 0x1B, op == 0xD1,
		op >= 0x45 && op <= 0xC4:
		// no immediates
	case op == 0x07, op == 0x08, op == 0x09, op == 0x18, op == 0x0C, op == 0x0D, op == 0x10, op == 0x12,
		op >= 0x20 && op <= 0x26, op == 0xD2:
		r.u32()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1C: // select t*
		r.skip(int(r.u32()))
	case op >= 0x28 && op <= 0x3E:
		r.memarg()
	case op == 0x3F, op == 0x40:
		r.u32()
	case op == 0x41, op == 0x42:
		r.leb()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xD0:
		r.leb()
	case op == 0xFC:
		return r.skipFC()
	case op == 0xFD:
		return r.skipSIMD()
	case op == 0xFE:
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
