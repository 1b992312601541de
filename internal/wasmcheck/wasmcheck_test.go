package wasmcheck_test

import (
	"errors"
	"testing"

	"github.com/wasmhost/wasmhost/internal/wasmcheck"
	"github.com/wasmhost/wasmhost/testdata/hostile"
)

func plugin() hostile.Plugin {
	return hostile.Plugin{Describe: hostile.Tool("t"), Result: hostile.Text("ok")}
}

func TestCheck(t *testing.T) {
	// (table.grow 0 (ref.null func) (i32.const 1)) drop, then the result.
	grow := []byte{0xd0, hostile.FuncRef}
	grow = hostile.I32Const(grow, 1)
	grow = append(grow, 0xfc, 15, 0x00, 0x1a)
	grow = hostile.Packed(grow, 0, 0)

	brTable := hostile.I32Const(nil, 0)
	brTable = append(brTable, 0x0e)
	brTable = hostile.U32(brTable, 40_000)
	for range 40_001 {
		brTable = append(brTable, 0x00)
	}
	brTable = hostile.Packed(append([]byte{0x02, 0x40}, append(brTable, 0x0b)...), 0, 0)

	cases := []struct {
		name    string
		mod     func(p *hostile.Plugin)
		refused bool // else accepted
	}{
		{"a working plugin", func(p *hostile.Plugin) {}, false},
		{"no memory", func(p *hostile.Plugin) { p.NoMemory = true }, true},
		{"memory not exported", func(p *hostile.Plugin) { p.UnexportedMemory = true }, true},
		{"an unbounded table, never grown", func(p *hostile.Plugin) { p.Tables = []hostile.Limits{{Min: 10, Max: -1}} }, false},
		{"a huge table", func(p *hostile.Plugin) { p.Tables = []hostile.Limits{{Min: 1 << 27, Max: -1}} }, true},
		{"a huge maximum", func(p *hostile.Plugin) { p.Tables = []hostile.Limits{{Min: 1, Max: 1 << 30}} }, true},
		{"too many tables", func(p *hostile.Plugin) {
			one := hostile.Limits{Min: 1, Max: 1}
			p.Tables = []hostile.Limits{one, one, one, one, one}
		}, true},
		{"growing an unbounded table", func(p *hostile.Plugin) {
			p.Tables = []hostile.Limits{{Min: 1, Max: -1}}
			p.Call = grow
		}, true},
		{"growing a bounded table", func(p *hostile.Plugin) {
			p.Tables = []hostile.Limits{{Min: 1, Max: 100}}
			p.Call = grow
		}, false},
		{"deep nesting", func(p *hostile.Plugin) { p.Init = hostile.Nested(200_000) }, true},
		{"nesting Go would emit", func(p *hostile.Plugin) { p.Init = hostile.Nested(1000) }, false},
		{"a br_table bomb", func(p *hostile.Plugin) { p.Call = brTable }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plugin()
			tc.mod(&p)
			_, err := wasmcheck.Check(p.Bytes(), wasmcheck.Limits{})
			if tc.refused != errors.Is(err, wasmcheck.ErrRefused) {
				t.Fatalf("refused = %v, want %v: %v", !tc.refused, tc.refused, err)
			}
			if !tc.refused && err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckMalformed(t *testing.T) {
	good := plugin().Bytes()
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"empty", nil},
		{"not wasm", []byte("#!/bin/sh\necho hi\n")},
		{"component", []byte("\x00asm\x0d\x00\x01\x00")},
		{"section past the end", append([]byte("\x00asm\x01\x00\x00\x00\x01"), 0xff, 0xff, 0x03)},
		{"overlong integer", append([]byte("\x00asm\x01\x00\x00\x00\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"unknown opcode", func() []byte {
			p := plugin()
			p.Init = []byte{0xff}
			return p.Bytes()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wasmcheck.Check(tc.bin, wasmcheck.Limits{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Every prefix of a good module is malformed, and reading it must not panic.
	for i := range good {
		wasmcheck.Check(good[:i], wasmcheck.Limits{})
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(plugin().Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		wasmcheck.Check(b, wasmcheck.Limits{MaxNesting: 8, MaxBrTable: 8})
	})
}
