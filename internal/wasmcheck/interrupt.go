package wasmcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// InterruptExport names the global AddInterrupt adds: the host sets it to
// a non-zero value to stop the guest.
const InterruptExport = "wasmhost.interrupt"

// interruptCheck is what AddInterrupt puts at the top of every loop:
// global.get K; if; unreachable; end (K goes between the first byte and
// the rest).
var interruptCheck = []byte{0x04, 0x40, 0x00, 0x0b}

const secStart, secElem, secDataCount, secData = 8, 9, 12, 11

// AddInterrupt returns bin with one more mutable i32 global, exported as
// InterruptExport, which every loop reads at the top of each iteration:
// once the host sets it, the guest traps at its next iteration, so a
// guest in any loop can be stopped. (A guest in no loop ends on its own:
// recursion without end overflows the stack.)
//
// It stands in for wazero's WithCloseOnContextDone, which does the same
// check as an indirect call at every loop header: Go's wasm code enters a
// loop in every function, and runs two to five times slower with it. This
// check is a global load and a branch.
//
// bin must be a module Check accepted; AddInterrupt decodes every
// instruction as Check does and fails, leaving nothing half-done, on
// anything it cannot read.
func AddInterrupt(bin []byte) ([]byte, error) {
	if len(bin) < 8 {
		return nil, errors.New("not a WebAssembly module")
	}
	type section struct {
		id         byte
		start, end int // the whole section, header included
		body       int // where its payload starts
	}
	var sections []section
	var importedGlobals, definedGlobals uint32
	r := &reader{b: bin, off: 8}
	for !r.done() {
		start := r.off
		id := r.byte()
		size := int(r.u32())
		if r.err != nil || size > len(bin)-r.off {
			return nil, fmt.Errorf("section at offset %d: bad header", start)
		}
		s := section{id: id, start: start, body: r.off, end: r.off + size}
		sections = append(sections, s)
		sec := &reader{b: bin[:s.end], off: s.body}
		switch id {
		case secImport:
			n := sec.u32()
			for i := uint32(0); i < n && sec.err == nil; i++ {
				sec.rawName()
				sec.rawName()
				switch sec.byte() {
				case 0x00:
					sec.u32()
				case 0x03:
					sec.byte()
					sec.byte()
					importedGlobals++
				default:
					return nil, fmt.Errorf("import %d: a kind Check refuses", i)
				}
			}
		case secGlobal:
			definedGlobals = sec.u32()
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, sec.err)
		}
		r.off = s.end
	}
	index := importedGlobals + definedGlobals
	check := append(binary.AppendUvarint([]byte{0x23}, uint64(index)), interruptCheck...)

	// The new global, export and code, each replacing its section or, for
	// the first two, inserted where the section order puts them.
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b} // mutable i32 = 0
	newExport := binary.AppendUvarint(nil, uint64(len(InterruptExport)))
	newExport = append(newExport, InterruptExport...)
	newExport = binary.AppendUvarint(append(newExport, 0x03), uint64(index))

	out := make([]byte, 0, len(bin)+len(bin)/16+64)
	out = append(out, bin[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	appendEntry := func(s section, entry []byte) []byte {
		sec := &reader{b: bin[:s.end], off: s.body}
		n := sec.u32()
		payload := binary.AppendUvarint(nil, uint64(n)+1)
		payload = append(payload, bin[sec.off:s.end]...)
		return append(payload, entry...)
	}
	hasGlobal, hasExport := false, false
	for _, s := range sections {
		switch s.id {
		case secGlobal:
			hasGlobal = true
		case secExport:
			hasExport = true
		}
	}
	for _, s := range sections {
		after := func(ids ...byte) bool {
			for _, id := range ids {
				if s.id == id {
					return true
				}
			}
			return false
		}
		if !hasGlobal && after(secExport, secStart, secElem, secDataCount, secCode, secData) {
			emit(secGlobal, append([]byte{1}, newGlobal...))
			hasGlobal = true
		}
		if !hasExport && after(secStart, secElem, secDataCount, secCode, secData) {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
		switch s.id {
		case secGlobal:
			emit(secGlobal, appendEntry(s, newGlobal))
		case secExport:
			emit(secExport, appendEntry(s, newExport))
		case secCode:
			code, err := checkLoops(bin[s.body:s.end], check)
			if err != nil {
				return nil, err
			}
			emit(secCode, code)
		default:
			out = append(out, bin[s.start:s.end]...)
		}
	}
	if !hasGlobal {
		emit(secGlobal, append([]byte{1}, newGlobal...))
	}
	if !hasExport {
		emit(secExport, append([]byte{1}, newExport...))
	}
	return out, nil
}

// checkLoops returns the code section payload with check put at the top
// of every loop of every function body.
func checkLoops(payload, check []byte) ([]byte, error) {
	r := &reader{b: payload}
	n := r.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(payload)+len(payload)/16), uint64(n))
	var body []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		if r.err != nil || size > len(payload)-r.off {
			return nil, fmt.Errorf("function body %d runs past the end of its section", i)
		}
		b := &reader{b: payload[:r.off+size], off: r.off}
		r.off += size
		body = body[:0]
		last := b.off
		groups := b.u32()
		for g := uint32(0); g < groups && b.err == nil; g++ {
			b.u32()
			b.byte()
		}
		for !b.done() {
			switch op := b.byte(); op {
			case 0x02, 0x04, 0x06: // block if try
				b.blockType()
			case 0x0B: // end
			case 0x03: // loop
				b.blockType()
				body = append(body, b.b[last:b.off]...)
				body = append(body, check...)
				last = b.off
			case 0x0E: // br_table
				targets := b.u32()
				for j := uint32(0); j <= targets && b.err == nil; j++ {
					b.u32()
				}
			default:
				if err := b.skipImmediates(op); err != nil {
					return nil, fmt.Errorf("function body %d: %w", i, err)
				}
			}
		}
		if b.err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, b.err)
		}
		body = append(body, b.b[last:b.off]...)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}
