package wasmcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// InterruptExport names the global AddInterrupt adds: the host sets it to
// a non-zero value to stop the guest.
const InterruptExport = "wasmhost.interrupt"

// yieldEvery is i32.const 4096, as signed LEB128: how many loop
// iterations a guest runs between two visits to the host (see
// AddInterrupt).
var yieldEvery = []byte{0x41, 0x80, 0x20}

const secStart, secElem, secDataCount, secData = 8, 9, 12, 11

// AddInterrupt returns bin instrumented so that the host can stop it and
// the Go scheduler can take its thread back:
//
//   - a mutable i32 global, exported as InterruptExport, which the host
//     sets to stop the guest;
//   - a countdown global, which the top of every loop decrements; when it
//     reaches zero (every yieldEvery iterations), a function added at the
//     end of the module traps if the interrupt is set, and otherwise
//     calls memory.grow 0, which leaves the guest for the host and back.
//
// The visit matters as much as the trap: compiled guest code cannot be
// preempted, so a guest in a loop that never left it would hold its Go P
// (and the timers that would set the interrupt need one) for ever. A
// guest in no loop ends on its own: recursion without end overflows the
// stack.
//
// It stands in for wazero's WithCloseOnContextDone, which leaves for the
// host at every loop iteration: Go's wasm code enters a loop in every
// function, and ran two to five times slower with it. This check is a few
// global reads and writes and a branch, and the visit one in yieldEvery.
//
// bin must be a module Check accepted; AddInterrupt decodes every
// instruction as Check does and fails, leaving nothing half-done, on
// anything it cannot read.
func AddInterrupt(bin []byte) ([]byte, error) {
	if len(bin) < 8 {
		return nil, errors.New("not a WebAssembly module")
	}
	secs, err := sections(bin)
	if err != nil {
		return nil, err
	}
	var importedGlobals, definedGlobals, importedFuncs, definedFuncs, types uint32
	for _, s := range secs {
		sec := s.reader(bin)
		switch s.id {
		case secImport:
			n := sec.u32()
			for i := uint32(0); i < n && sec.err == nil; i++ {
				sec.rawName()
				sec.rawName()
				switch sec.byte() {
				case 0x00:
					sec.u32()
					importedFuncs++
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
		case secType:
			types = sec.u32()
		case secFunction:
			definedFuncs = sec.u32()
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, sec.err)
		}
	}
	interrupt, countdown := importedGlobals+definedGlobals, importedGlobals+definedGlobals+1
	visit := importedFuncs + definedFuncs // the function added at the end
	uleb := func(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }
	// At the top of every loop: countdown--; if countdown == 0 { visit() }.
	check := uleb([]byte{0x23}, countdown)
	check = append(check, 0x41, 0x01, 0x6b, 0x24)
	check = uleb(check, countdown)
	check = uleb(append(check, 0x23), countdown)
	check = uleb(append(check, 0x45, 0x04, 0x40, 0x10), visit)
	check = append(check, 0x0b)
	// visit: if interrupt { unreachable }; memory.grow 0; drop;
	// countdown = yieldEvery.
	visitBody := uleb([]byte{0x00, 0x23}, interrupt) // no locals
	visitBody = append(visitBody, 0x04, 0x40, 0x00, 0x0b, 0x41, 0x00, 0x40, 0x00, 0x1a)
	visitBody = append(visitBody, yieldEvery...)
	visitBody = uleb(append(visitBody, 0x24), countdown)
	visitBody = append(visitBody, 0x0b)

	// The new globals, export, type, function and code, each appended to
	// its section or, for a section the module lacks, inserted where the
	// section order puts it.
	newGlobals := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01}
	newGlobals = append(append(newGlobals, yieldEvery...), 0x0b)
	newExport := uleb(nil, uint32(len(InterruptExport)))
	newExport = append(newExport, InterruptExport...)
	newExport = uleb(append(newExport, 0x03), interrupt)
	newType := []byte{0x60, 0x00, 0x00} // () -> ()
	newFunc := uleb(nil, types)
	newCode := uleb(nil, uint32(len(visitBody)))
	newCode = append(newCode, visitBody...)

	out := make([]byte, 0, len(bin)+len(bin)/16+64)
	out = append(out, bin[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	appendEntries := func(s section, n uint32, entries []byte) []byte {
		sec := s.reader(bin)
		payload := uleb(nil, sec.u32()+n)
		payload = append(payload, bin[sec.off:s.end]...)
		return append(payload, entries...)
	}
	has := map[byte]bool{}
	for _, s := range secs {
		has[s.id] = true
	}
	if !has[secType] || !has[secFunction] || !has[secCode] {
		return nil, errors.New("no functions to instrument")
	}
	hasGlobal, hasExport := has[secGlobal], has[secExport]
	for _, s := range secs {
		after := func(ids ...byte) bool {
			for _, id := range ids {
				if s.id == id {
					return true
				}
			}
			return false
		}
		if !hasGlobal && after(secExport, secStart, secElem, secDataCount, secCode, secData) {
			emit(secGlobal, append([]byte{2}, newGlobals...))
			hasGlobal = true
		}
		if !hasExport && after(secStart, secElem, secDataCount, secCode, secData) {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
		switch s.id {
		case secType:
			emit(secType, appendEntries(s, 1, newType))
		case secFunction:
			emit(secFunction, appendEntries(s, 1, newFunc))
		case secGlobal:
			emit(secGlobal, appendEntries(s, 2, newGlobals))
		case secExport:
			emit(secExport, appendEntries(s, 1, newExport))
		case secCode:
			code, err := checkLoops(bin[s.body:s.end], check, newCode)
			if err != nil {
				return nil, err
			}
			emit(secCode, code)
		default:
			out = append(out, bin[s.start:s.end]...)
		}
	}
	return out, nil // the code section comes after both, so they were emitted
}

// checkLoops returns the code section payload with check put at the top
// of every loop of every function body, and extra (one more body) at the
// end.
func checkLoops(payload, check, extra []byte) ([]byte, error) {
	r := &reader{b: payload}
	n := r.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(payload)+len(payload)/16), uint64(n)+1)
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
	return append(out, extra...), nil
}
