// Package hostile emits the hostile WebAssembly modules of the test corpus
// as bytes at test time, so that no binary is committed and every fixture
// reads as what it does. [Module] writes any core module from its parts;
// [Plugin] writes a minimal ABI v1 plugin by hand (no SDK, no Go runtime)
// whose every part a test can break: no memory, a lying result, a looping
// initialiser, a growing table.
//
// It is test support only: production code must not import it.
package hostile

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Value types and export kinds of the binary format.
const (
	I32     = 0x7f
	I64     = 0x7e
	FuncRef = 0x70

	KindFunc   = 0x00
	KindTable  = 0x01
	KindMemory = 0x02
)

// FuncType is a function signature.
type FuncType struct{ Params, Results []byte }

// Import is an imported function.
type Import struct {
	Module, Name string
	Type         uint32
}

// Func is a defined function: its type index, its locals (count of i32s)
// and its instructions (without the final end).
type Func struct {
	Type   uint32
	Locals uint32
	Body   []byte
}

// Limits is a table's or memory's size; Max < 0 means none declared.
type Limits struct {
	Min uint32
	Max int64
}

// Export names a function, table or memory.
type Export struct {
	Name  string
	Kind  byte
	Index uint32
}

// Data is an active data segment of memory 0.
type Data struct {
	Offset uint32
	Bytes  []byte
}

// Module is a core module to encode. Globals are mutable i32s with the
// given initial values.
type Module struct {
	Types    []FuncType
	Imports  []Import
	Funcs    []Func
	Tables   []Limits
	Memories []Limits
	Globals  []int32
	Exports  []Export
	Data     []Data
}

// Bytes encodes m.
func (m *Module) Bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, body []byte) {
		out = append(out, id)
		out = U32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if len(m.Types) > 0 {
		b := U32(nil, uint32(len(m.Types)))
		for _, t := range m.Types {
			b = append(b, 0x60)
			b = vec(b, t.Params)
			b = vec(b, t.Results)
		}
		sec(1, b)
	}
	if len(m.Imports) > 0 {
		b := U32(nil, uint32(len(m.Imports)))
		for _, im := range m.Imports {
			b = vec(b, []byte(im.Module))
			b = vec(b, []byte(im.Name))
			b = append(b, KindFunc)
			b = U32(b, im.Type)
		}
		sec(2, b)
	}
	if len(m.Funcs) > 0 {
		b := U32(nil, uint32(len(m.Funcs)))
		for _, f := range m.Funcs {
			b = U32(b, f.Type)
		}
		sec(3, b)
	}
	if len(m.Tables) > 0 {
		b := U32(nil, uint32(len(m.Tables)))
		for _, t := range m.Tables {
			b = append(b, FuncRef)
			b = limits(b, t)
		}
		sec(4, b)
	}
	if len(m.Memories) > 0 {
		b := U32(nil, uint32(len(m.Memories)))
		for _, l := range m.Memories {
			b = limits(b, l)
		}
		sec(5, b)
	}
	if len(m.Globals) > 0 {
		b := U32(nil, uint32(len(m.Globals)))
		for _, g := range m.Globals {
			b = append(b, I32, 0x01)
			b = append(I32Const(b, g), 0x0b)
		}
		sec(6, b)
	}
	if len(m.Exports) > 0 {
		b := U32(nil, uint32(len(m.Exports)))
		for _, e := range m.Exports {
			b = vec(b, []byte(e.Name))
			b = append(b, e.Kind)
			b = U32(b, e.Index)
		}
		sec(7, b)
	}
	if len(m.Funcs) > 0 {
		b := U32(nil, uint32(len(m.Funcs)))
		for _, f := range m.Funcs {
			var body []byte
			if f.Locals > 0 {
				body = U32(U32(body, 1), f.Locals)
				body = append(body, I32)
			} else {
				body = U32(body, 0)
			}
			body = append(body, f.Body...)
			body = append(body, 0x0b)
			b = vec(b, body)
		}
		sec(10, b)
	}
	if len(m.Data) > 0 {
		b := U32(nil, uint32(len(m.Data)))
		for _, d := range m.Data {
			b = append(b, 0x00)
			b = append(I32Const(b, int32(d.Offset)), 0x0b)
			b = vec(b, d.Bytes)
		}
		sec(11, b)
	}
	return out
}

func limits(b []byte, l Limits) []byte {
	if l.Max < 0 {
		return U32(append(b, 0x00), l.Min)
	}
	return U32(U32(append(b, 0x01), l.Min), uint32(l.Max))
}

func vec(b, items []byte) []byte { return append(U32(b, uint32(len(items))), items...) }

// U32 appends v as an unsigned LEB128.
func U32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// I32Const appends i32.const v.
func I32Const(b []byte, v int32) []byte { return sleb(append(b, 0x41), int64(v)) }

// I64Const appends i64.const v.
func I64Const(b []byte, v int64) []byte { return sleb(append(b, 0x42), v) }

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Instructions the corpus uses.
var (
	// Loop is an endless loop: loop br 0 end.
	Loop = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}
	// Unreachable traps.
	Unreachable = []byte{0x00}
	// LoopSometimes loops forever on every other run, at random: it asks
	// random_get (a [Plugin] with Random) for one byte at address 0 and
	// loops if its low bit is set. As an _initialize, it shows that a
	// start is deterministic: the host seeds the random stream a guest sees
	// before its first call from the module's digest, so one module loops
	// at every start or at none.
	LoopSometimes = append([]byte{
		0x41, 0x00, 0x41, 0x01, 0x10, 0x03, 0x1a, // random_get(0, 1); drop the errno
		0x41, 0x00, 0x2d, 0x00, 0x00, // i32.load8_u [0]
		0x41, 0x01, 0x71, // i32.and 1
		0x04, 0x40, // if
	}, append(slices.Clone(Loop), 0x0b)...)
)

// Repeat returns a loop running body n times (counting in local 4).
func Repeat(n int32, body []byte) []byte {
	b := append([]byte{0x03, 0x40}, body...)
	b = append(b, 0x20, 0x04)
	b = I32Const(b, 1)
	b = append(b, 0x6a, 0x22, 0x04)
	b = I32Const(b, n)
	return append(b, 0x49, 0x0d, 0x00, 0x0b)
}

// CallImport appends a call of import fn with the Message as (ptr, len),
// after the given leading i32 arguments; results are dropped.
func (p Plugin) CallImport(b []byte, fn uint32, results int, lead ...int32) []byte {
	for _, v := range lead {
		b = I32Const(b, v)
	}
	b = I32Const(b, int32(p.Layout().Message))
	b = I32Const(b, int32(len(p.Message)))
	b = U32(append(b, 0x10), fn)
	for range results {
		b = append(b, 0x1a)
	}
	return b
}

// Nested returns n blocks nested inside each other, empty.
func Nested(n int) []byte {
	b := make([]byte, 0, 3*n)
	for range n {
		b = append(b, 0x02, 0x40)
	}
	for range n {
		b = append(b, 0x0b)
	}
	return b
}

// Packed appends i64.const of abi.Pack(ptr, n).
func Packed(b []byte, ptr, n uint32) []byte {
	return I64Const(b, int64(uint64(ptr)<<32|uint64(n)))
}

// Layout is where a [Plugin] keeps its messages in memory, one after the
// other from 1 KiB, and where its allocator starts.
type Layout struct{ Describe, Message, Result, Heap uint32 }

// Layout places p's messages.
func (p Plugin) Layout() Layout {
	align := func(n uint32) uint32 { return (n + 7) &^ 7 }
	l := Layout{Describe: 1024}
	l.Message = align(l.Describe + uint32(len(p.Describe)))
	l.Result = align(l.Message + uint32(len(p.Message)))
	l.Heap = align(l.Result + uint32(len(p.Result)))
	return l
}

// Return appends i64.const of the packed (ptr, len) of p's Result.
func (p Plugin) Return(b []byte) []byte {
	return Packed(b, p.Layout().Result, uint32(len(p.Result)))
}

// Plugin is a hand-written ABI v1 plugin. Its zero value (with Describe and
// Result set) is a working one; each field breaks one thing.
type Plugin struct {
	// Version is what wasmhost_abi_version answers; 0 means 1.
	Version int32
	// Describe is the description JSON; Result the answer to every call.
	Describe, Result string
	// Init and Call replace the bodies of _initialize (type () -> ()) and
	// wasmhost_call (must leave an i64). Call may use locals 0..3 (the
	// arguments) and 4 (an i32 counter), and call the imports: function 0
	// is log (level, ptr, len), 1 progress (ptr, len), 2 elicit (ptr, len).
	Init, Call []byte
	// Message is placed in memory for Call to pass to an import.
	Message string
	// DescribeBody replaces wasmhost_describe's body (leaves an i64).
	DescribeBody []byte
	// NoMemory leaves the memory out; UnexportedMemory keeps it unexported.
	NoMemory, UnexportedMemory bool
	// Memory is the memory's size in pages; zero means what the messages
	// need and 1 MiB more, no max.
	Memory Limits
	// Tables are added as they are.
	Tables []Limits
	// LocalsBomb declares a billion locals in wasmhost_call.
	LocalsBomb bool
	// Random imports WASI random_get as function 3, after the wasmhost
	// imports (the defined functions move up by one), for bodies that
	// decide at random, such as [LoopSometimes].
	Random bool
	// Omit leaves these exports out; Rename exports one under another name.
	Omit   map[string]bool
	Rename map[string]string
}

// Bytes encodes the plugin.
func (p Plugin) Bytes() []byte {
	version := p.Version
	if version == 0 {
		version = 1
	}
	lay := p.Layout()
	m := &Module{
		Types: []FuncType{
			{nil, []byte{I32}},                        // 0: abi version
			{[]byte{I32}, []byte{I32}},                // 1: alloc
			{nil, []byte{I64}},                        // 2: describe
			{[]byte{I32, I32, I32, I32}, []byte{I64}}, // 3: call
			{nil, nil},                                // 4: _initialize
			{[]byte{I32, I32, I32}, nil},              // 5: log import
			{[]byte{I32, I32}, nil},                   // 6: progress import
			{[]byte{I32, I32}, []byte{I32}},           // 7: elicit import
		},
		Imports: []Import{{"wasmhost", "log", 5}, {"wasmhost", "progress", 6}, {"wasmhost", "elicit", 7}},
		Globals: []int32{int32(lay.Heap)},
		Tables:  p.Tables,
		Data: []Data{
			{lay.Describe, []byte(p.Describe)},
			{lay.Result, []byte(p.Result)},
			{lay.Message, []byte(p.Message)},
		},
	}
	if p.Random {
		m.Imports = append(m.Imports, Import{"wasi_snapshot_preview1", "random_get", 7})
	}
	// alloc: bump allocator, 8-byte aligned.
	alloc := []byte{0x23, 0x00, 0x23, 0x00, 0x20, 0x00, 0x6a}
	alloc = I32Const(alloc, 7)
	alloc = append(alloc, 0x6a)
	alloc = I32Const(alloc, -8)
	alloc = append(alloc, 0x71, 0x24, 0x00)
	describe := p.DescribeBody
	if describe == nil {
		describe = Packed(nil, lay.Describe, uint32(len(p.Describe)))
	}
	call := p.Call
	if call == nil {
		call = p.Return(nil)
	}
	m.Funcs = []Func{
		{Type: 0, Body: I32Const(nil, version)},
		{Type: 1, Body: alloc},
		{Type: 2, Body: describe},
		{Type: 3, Locals: map[bool]uint32{false: 1, true: 1 << 30}[p.LocalsBomb], Body: call},
		{Type: 4, Body: p.Init},
	}
	names := []string{"wasmhost_abi_version", "wasmhost_alloc", "wasmhost_describe", "wasmhost_call", "_initialize"}
	for i, name := range names {
		if p.Omit[name] {
			continue
		}
		if to, ok := p.Rename[name]; ok {
			name = to
		}
		m.Exports = append(m.Exports, Export{name, KindFunc, uint32(i + len(m.Imports))})
	}
	if !p.NoMemory {
		mem := p.Memory
		if mem == (Limits{}) {
			mem = Limits{Min: lay.Heap>>16 + 17, Max: -1}
		}
		m.Memories = []Limits{mem}
		if !p.UnexportedMemory {
			m.Exports = append(m.Exports, Export{"memory", KindMemory, 0})
		}
	} else {
		m.Data = nil
	}
	return m.Bytes()
}

// Spinner is a plugin whose one tool, "spin", loops for ever (loop br 0,
// no calls): only the host can end it.
func Spinner() Plugin {
	p := Plugin{Describe: Tool("spin"), Result: Text("unreachable")}
	p.Call = p.Return(Loop)
	return p
}

// Tool is a description with one tool of that name.
func Tool(name string) string {
	return fmt.Sprintf(`{"tools":[{"name":%q,"inputSchema":{"type":"object"}}]}`, name)
}

// Text is a call result of one text block.
func Text(s string) string {
	return fmt.Sprintf(`{"content":[{"type":"text","text":%q}]}`, s)
}

// LE32 is v in little-endian, for data segments.
func LE32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
