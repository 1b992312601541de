// Package wasmcheck reads a WebAssembly module's sections before anything
// compiles it, and refuses modules whose compilation or instantiation would
// cost the host more than a plugin may: no linear memory, tables beyond a
// small bound, too many functions or locals, function bodies nested or
// branching beyond what any compiler emits. It decodes every instruction
// once, in time and memory linear in the module's size, and allocates
// nothing per instruction.
//
// With the same instruction decoder, AddInterrupt instruments a module it
// accepted so that the host can stop it: a global every loop reads.
//
// It owns only this structural check and rewrite of core modules (binary
// version 1). It knows nothing of wazero, of the wasmhost ABI's exports and
// imports, or of where the bytes came from; the host checks those.
package wasmcheck

import (
	"errors"
	"fmt"
)

// Limits bound a module. The zero value means every default; the defaults
// are far above what Go's wasm backend emits for large programs and far
// below what makes a compiler take minutes or gigabytes.
type Limits struct {
	// MaxFunctions caps functions defined plus imported. 0 means 100 000.
	MaxFunctions int
	// MaxBodySize caps one function body in bytes. 0 means 1 MiB.
	MaxBodySize int
	// MaxLocals caps the locals one function declares. 0 means 50 000.
	MaxLocals int
	// MaxNesting caps how deep blocks, loops and ifs nest in one function.
	// 0 means 4096.
	MaxNesting int
	// MaxBrTable caps br_table targets in one function, summed. 0 means
	// 1 << 15.
	MaxBrTable int
	// MaxTables caps tables defined; imported tables are refused. 0 means 4.
	MaxTables int
	// MaxTableSize caps a table's entries: its minimum and any maximum it
	// declares. A module that grows a table (table.grow) must declare a
	// maximum for every table, so that growing cannot take the host's
	// memory. 0 means 1 << 20 (8 MiB of host memory per table).
	MaxTableSize uint32
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxFunctions, 100_000)
	def(&l.MaxBodySize, 1<<20)
	def(&l.MaxLocals, 50_000)
	def(&l.MaxNesting, 4096)
	def(&l.MaxBrTable, 1<<15)
	def(&l.MaxTables, 4)
	if l.MaxTableSize == 0 {
		l.MaxTableSize = 1 << 20
	}
	return l
}

// ErrRefused is wrapped by every error Check returns for a module it reads
// and refuses; other errors mean the bytes are not a well-formed module.
var ErrRefused = errors.New("module refused")

// ErrNoMemory is wrapped (with ErrRefused) by the error for a module that
// defines or exports no linear memory.
var ErrNoMemory = errors.New("no exported linear memory")

// Stats is what Check measured, for messages and for tuning the limits.
type Stats struct {
	Functions, MaxNesting, MaxBrTable, MaxLocals, MaxBodySize int
	Tables                                                    int
	MaxTableSize                                              uint32
	Memories                                                  int
	MemoryExported                                            bool
	// UnboundedTables counts tables without a declared maximum;
	// GrowsTables reports a table.grow instruction.
	UnboundedTables int
	GrowsTables     bool
	// FuncExports are the names of the exported functions.
	FuncExports map[string]bool
}

const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secTable    = 4
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
)

// Check reads the module in bin and returns its stats, or an error saying
// what is wrong or over which limit. A module without a linear memory it
// defines and exports is refused: the host passes every message through it.
func Check(bin []byte, lim Limits) (Stats, error) {
	lim = lim.withDefaults()
	var st Stats
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return st, errors.New("not a WebAssembly module")
	}
	if string(bin[4:8]) != "\x01\x00\x00\x00" {
		return st, errors.New("not a core WebAssembly module of binary version 1")
	}
	secs, err := sections(bin)
	if err != nil {
		return st, err
	}
	for _, s := range secs {
		sec := s.reader(bin)
		switch s.id {
		case secImport:
			err = checkImports(sec, lim, &st)
		case secFunction:
			n := int(sec.u32())
			st.Functions += n
			if sec.err == nil && st.Functions > lim.MaxFunctions {
				err = refused("%d functions, over the limit of %d", st.Functions, lim.MaxFunctions)
			}
		case secTable:
			err = checkTables(sec, lim, &st)
		case secMemory:
			st.Memories += int(sec.u32())
		case secExport:
			err = checkExports(sec, &st)
		case secCode:
			err = checkCode(sec, lim, &st)
		}
		if err == nil {
			err = sec.err
		}
		if err != nil {
			return st, err
		}
	}
	if st.GrowsTables && st.UnboundedTables > 0 {
		return st, refused("grows a table that declares no maximum size, so it could grow without bound; declare a maximum of at most %d entries", lim.MaxTableSize)
	}
	if st.Memories == 0 {
		return st, fmt.Errorf("%w: %w: defines no linear memory; a plugin passes every message through its memory", ErrRefused, ErrNoMemory)
	}
	if !st.MemoryExported {
		return st, fmt.Errorf("%w: %w: does not export its linear memory", ErrRefused, ErrNoMemory)
	}
	return st, nil
}

// section is one section of a module: its id, where it starts (at its
// id), where its payload starts and where it ends.
type section struct {
	id               byte
	start, body, end int
}

// reader reads the section's payload.
func (s section) reader(bin []byte) *reader { return &reader{b: bin[:s.end], off: s.body} }

// sections splits a module, past its 8-byte header, into its sections.
func sections(bin []byte) ([]section, error) {
	var out []section
	r := &reader{b: bin, off: 8}
	for !r.done() {
		start := r.off
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, r.err
		}
		if int(size) > len(r.b)-r.off {
			return nil, fmt.Errorf("section %d at offset %d runs past the end of the module", id, r.off)
		}
		out = append(out, section{id: id, start: start, body: r.off, end: r.off + int(size)})
		r.off += int(size)
	}
	return out, nil
}

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
}

func checkImports(r *reader, lim Limits, st *Stats) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod, name := r.name(), r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
			st.Functions++
			if st.Functions > lim.MaxFunctions {
				return refused("%d functions, over the limit of %d", st.Functions, lim.MaxFunctions)
			}
		case 0x01:
			return refused("imports table %s.%s; a plugin must define its own tables", mod, name)
		case 0x02:
			return refused("imports memory %s.%s; a plugin must define its own memory", mod, name)
		case 0x03: // global
			r.byte()
			r.byte()
		default:
			return fmt.Errorf("import %d has unknown kind %#x", i, kind)
		}
	}
	return nil
}

func checkTables(r *reader, lim Limits, st *Stats) error {
	n := int(r.u32())
	st.Tables += n
	if st.Tables > lim.MaxTables {
		return refused("%d tables, over the limit of %d", st.Tables, lim.MaxTables)
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.byte() // reftype
		flags := r.byte()
		lo := r.u32()
		size := lo
		if flags&1 == 0 {
			st.UnboundedTables++
		} else {
			size = max(lo, r.u32())
		}
		st.MaxTableSize = max(st.MaxTableSize, size)
		if size > lim.MaxTableSize {
			return refused("table %d may hold %d entries, over the limit of %d", i, size, lim.MaxTableSize)
		}
	}
	return nil
}

func checkExports(r *reader, st *Stats) error {
	n := r.u32()
	st.FuncExports = make(map[string]bool)
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.rawName()
		kind := r.byte()
		r.u32()
		switch kind {
		case 0x00:
			st.FuncExports[name] = true
		case 0x02:
			st.MemoryExported = true
		}
	}
	return nil
}

func checkCode(r *reader, lim Limits, st *Stats) error {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		if r.err != nil {
			break
		}
		if size > len(r.b)-r.off {
			return fmt.Errorf("function body %d runs past the end of its section", i)
		}
		st.MaxBodySize = max(st.MaxBodySize, size)
		if size > lim.MaxBodySize {
			return refused("function body %d is %d bytes, over the limit of %d", i, size, lim.MaxBodySize)
		}
		body := &reader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		if err := checkBody(body, lim, st); err != nil {
			return fmt.Errorf("function body %d: %w", i, err)
		}
	}
	return nil
}

func checkBody(r *reader, lim Limits, st *Stats) error {
	groups := r.u32()
	locals := 0
	for g := uint32(0); g < groups && r.err == nil; g++ {
		locals += int(r.u32())
		r.byte()
		if locals > lim.MaxLocals || locals < 0 {
			return refused("declares more than %d locals", lim.MaxLocals)
		}
	}
	st.MaxLocals = max(st.MaxLocals, locals)
	depth, brTable := 1, 0 // the body itself is a block
	for !r.done() && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block loop if try
			r.blockType()
			depth++
			st.MaxNesting = max(st.MaxNesting, depth)
			if depth > lim.MaxNesting {
				return refused("blocks nest %d deep, over the limit of %d", depth, lim.MaxNesting)
			}
		case op == 0x0B: // end
			depth--
		case op == 0x0E: // br_table
			n := r.u32()
			brTable += int(n) + 1
			st.MaxBrTable = max(st.MaxBrTable, brTable)
			if brTable > lim.MaxBrTable {
				return refused("br_table targets sum to %d, over the limit of %d", brTable, lim.MaxBrTable)
			}
			for j := uint32(0); j <= n && r.err == nil; j++ {
				r.u32()
			}
		case op == 0xFC && r.off < len(r.b) && r.b[r.off] == 15: // table.grow
			st.GrowsTables = true
			r.skipFC()
		default:
			if err := r.skipImmediates(op); err != nil {
				return err
			}
		}
	}
	if r.err == nil && depth != 0 {
		return errors.New("blocks do not balance")
	}
	return r.err
}
