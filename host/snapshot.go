package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Snapshots: the state of a guest right after its _initialize, so that a
// call can start from it without starting the guest again, and an instance
// can be put back into exactly that state after a call (the wizer idea).
//
// A core module's whole state is its linear memory, its globals and its
// tables. Memory is readable and writable through wazero's API; globals
// are only if exported, so Load rewrites the binary to export every
// mutable global it defines (exportGlobals); tables are left alone, since
// Go's code never changes them (an instance whose table could change would
// need table.set or table.grow, which Go does not emit, and which
// snapshotting refuses: see hasTableWrites).

// globalExportPrefix names the exports exportGlobals adds. A guest that
// already uses the prefix is not rewritten (no snapshots for it).
const globalExportPrefix = "wasmhost.global."

// snapshotChunk is the granularity at which a snapshot stores memory: all
// zero chunks are not stored.
const snapshotChunk = 64 << 10

// snapshot is a guest's state after _initialize.
type snapshot struct {
	size    uint32    // bytes of linear memory
	chunks  [][]byte  // size/snapshotChunk entries; nil means all zero
	globals []string  // exported names of the mutable globals
	values  []uint64  // their values, in the same order
	clock   int64     // the guest's monotonic clock when captured
	image   *memImage // the memory as a memfd to map copy-on-write, or nil
}

// capture reads inst's memory and mutable globals; with cow, it also makes
// the memory image that instances map copy-on-write.
func capture(inst *instance, globals []string, cow bool) (*snapshot, error) {
	mem := inst.mod.Memory()
	if mem == nil {
		return nil, errors.New("the guest has no memory")
	}
	view, ok := mem.Read(0, mem.Size())
	if !ok {
		return nil, errors.New("cannot read guest memory")
	}
	s := &snapshot{size: mem.Size(), globals: globals, values: make([]uint64, len(globals)), clock: inst.monoNow()}
	for off := 0; off < len(view); off += snapshotChunk {
		c := view[off:min(off+snapshotChunk, len(view))]
		if !allZero(c) {
			s.chunks = append(s.chunks, append([]byte(nil), c...))
		} else {
			s.chunks = append(s.chunks, nil)
		}
	}
	if cow {
		if im, err := newMemImage(view); err == nil {
			s.image = im
		}
	}
	for i, name := range globals {
		g := inst.mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("global export %s missing", name)
		}
		s.values[i] = g.Get()
	}
	return s, nil
}

// bytes is the memory the snapshot holds on the host.
func (s *snapshot) bytes() int {
	n := 0
	for _, c := range s.chunks {
		n += len(c)
	}
	return n
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// restoreSlack is how far past the snapshot an instance's memory may have
// grown and still be restored. Memory cannot shrink, but a guest whose
// runtime was restored believes its memory ends where the snapshot's did
// (Go's sbrk grows from its own bookkeeping, not from memory.size), so the
// pages past it are unused until the runtime grows again: they are zeroed,
// so nothing of the last call survives there. Each reuse may grow a little
// more; past the slack the instance is closed and its memory given back.
const restoreSlack = 8 << 20

// restore puts inst back into the snapshot's state. It fails, leaving
// inst unusable, when inst's memory grew more than restoreSlack past the
// snapshot's.
func (s *snapshot) restore(inst *instance) error {
	mem := inst.mod.Memory()
	if mem == nil {
		return errors.New("the guest has no memory")
	}
	if size := mem.Size(); size < s.size {
		if _, ok := mem.Grow((s.size - size) / 65536); !ok {
			return errors.New("cannot grow guest memory to the snapshot's size")
		}
	} else if size > s.size+restoreSlack {
		return fmt.Errorf("guest memory grew to %d bytes, more than %d past the snapshot's %d", size, restoreSlack, s.size)
	} else if size > s.size {
		tail, ok := mem.Read(s.size, size-s.size)
		if !ok {
			return errors.New("cannot read guest memory")
		}
		clear(tail)
	}
	view, ok := mem.Read(0, s.size)
	if !ok {
		return errors.New("cannot read guest memory")
	}
	if inst.lm == nil || !inst.lm.revert() {
		s.copyInto(view)
	}
	return s.restoreGlobals(inst)
}

// copyInto writes the snapshot's memory over view.
func (s *snapshot) copyInto(view []byte) {
	for i, c := range s.chunks {
		dst := view[i*snapshotChunk : min((i+1)*snapshotChunk, len(view))]
		if c != nil {
			copy(dst, c)
		} else {
			clear(dst)
		}
	}
}

// restoreGlobals sets inst's mutable globals and clock to the snapshot's.
func (s *snapshot) restoreGlobals(inst *instance) error {
	if len(inst.globals) != len(s.globals) {
		inst.globals = inst.globals[:0]
		for _, name := range s.globals {
			g, ok := inst.mod.ExportedGlobal(name).(api.MutableGlobal)
			if !ok {
				return fmt.Errorf("global export %s missing or immutable", name)
			}
			inst.globals = append(inst.globals, g)
		}
	}
	for i, g := range inst.globals {
		g.Set(s.values[i])
	}
	inst.clockBase, inst.clockStart, inst.start = s.clock, time.Now(), nil
	return nil
}

// errNoRewrite says exportGlobals left a module as it was.
var errNoRewrite = errors.New("module not rewritten")

// exportGlobals returns bin with every mutable global it defines exported
// as globalExportPrefix+index, and those export names. It parses only
// what it must (section headers, imports, globals, exports) and returns
// errNoRewrite, wrapped, for anything it does not expect: the caller then
// loads bin unchanged, without snapshots.
func exportGlobals(bin []byte) ([]byte, []string, error) {
	fail := func(why string) ([]byte, []string, error) {
		return nil, nil, fmt.Errorf("%w: %s", errNoRewrite, why)
	}
	if len(bin) < 8 {
		return fail("too short")
	}
	type section struct {
		id         byte
		start, end int // the whole section, header included
		body       int // where its payload starts
	}
	var sections []section
	for off := 8; off < len(bin); {
		id := bin[off]
		size, n := uleb(bin[off+1:])
		if n == 0 || off+1+n+int(size) > len(bin) {
			return fail("bad section header")
		}
		body := off + 1 + n
		sections = append(sections, section{id: id, start: off, end: body + int(size), body: body})
		off = body + int(size)
	}
	var importedGlobals uint64
	var mutable []uint64 // indexes of the mutable globals defined here
	exportAt := -1
	for i, s := range sections {
		r := reader{b: bin[s.body:s.end]}
		switch s.id {
		case 2: // imports
			count := r.uleb()
			for range count {
				r.name()
				r.name()
				switch kind := r.byte(); kind {
				case 0: // func
					r.uleb()
				case 1: // table
					r.byte()
					r.limits()
				case 2: // memory
					r.limits()
				case 3: // global
					r.byte()
					r.byte()
					importedGlobals++
				default:
					r.err = fmt.Errorf("import kind %d", kind)
				}
			}
		case 6: // globals
			count := r.uleb()
			for j := range count {
				r.byte() // value type
				if r.byte() == 1 {
					mutable = append(mutable, importedGlobals+j)
				}
				r.constExpr()
			}
		case 7: // exports
			exportAt = i
			count := r.uleb()
			for range count {
				if name := r.name(); len(name) >= len(globalExportPrefix) && name[:len(globalExportPrefix)] == globalExportPrefix {
					return fail("the module already uses " + globalExportPrefix)
				}
				r.byte()
				r.uleb()
			}
		}
		if r.err != nil {
			return fail(fmt.Sprintf("section %d: %v", s.id, r.err))
		}
	}
	if exportAt < 0 {
		return fail("no export section")
	}
	s := sections[exportAt]
	r := reader{b: bin[s.body:s.end]}
	count := r.uleb()
	entries := r.b[r.off:]
	var payload []byte
	payload = binary.AppendUvarint(payload, count+uint64(len(mutable)))
	payload = append(payload, entries...)
	names := make([]string, 0, len(mutable))
	for _, idx := range mutable {
		name := globalExportPrefix + strconv.FormatUint(idx, 10)
		names = append(names, name)
		payload = binary.AppendUvarint(payload, uint64(len(name)))
		payload = append(payload, name...)
		payload = append(payload, 3) // global
		payload = binary.AppendUvarint(payload, idx)
	}
	out := make([]byte, 0, len(bin)+len(payload)-len(r.b)+8)
	out = append(out, bin[:s.start]...)
	out = append(out, 7)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	out = append(out, payload...)
	out = append(out, bin[s.end:]...)
	return out, names, nil
}

// uleb decodes an unsigned LEB128 (binary.Uvarint is the same encoding);
// n is 0 when b does not hold one.
func uleb(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0
	}
	return v, n
}

// reader reads the few WebAssembly binary forms exportGlobals needs. The
// first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.setErr()
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) setErr() {
	if r.err == nil {
		r.err = errors.New("truncated")
	}
}

func (r *reader) uleb() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := uleb(r.b[r.off:])
	if n == 0 {
		r.setErr()
		return 0
	}
	r.off += n
	return v
}

// sleb skips a signed LEB128.
func (r *reader) sleb() {
	for r.err == nil {
		if r.byte()&0x80 == 0 {
			return
		}
	}
}

func (r *reader) name() string {
	n := r.uleb()
	if r.err != nil || uint64(len(r.b)-r.off) < n {
		r.setErr()
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

func (r *reader) limits() {
	flags := r.byte()
	r.uleb()
	if flags&1 != 0 {
		r.uleb()
	}
}

// constExpr skips a constant expression up to its end opcode.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41, 0x42: // i32.const, i64.const
			r.sleb()
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.uleb()
		case 0xd0: // ref.null
			r.byte()
		default:
			r.err = fmt.Errorf("opcode %#x in a constant expression", op)
		}
	}
}

func (r *reader) skip(n int) {
	if r.err != nil || len(r.b)-r.off < n {
		r.setErr()
		return
	}
	r.off += n
}

// fromSnapshot starts an instance without running _initialize and puts it
// into the snapshot's state.
func (p *Plugin) fromSnapshot(ctx context.Context, s *snapshot) (*instance, error) {
	inst, err := p.newInstance(ctx, false)
	if err != nil {
		return nil, err
	}
	if err := s.restore(inst); err != nil {
		inst.close()
		return nil, err
	}
	return inst, nil
}
