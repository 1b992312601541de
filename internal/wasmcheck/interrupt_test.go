package wasmcheck_test

import (
	"bytes"
	"testing"

	"github.com/wasmhost/wasmhost/internal/wasmcheck"
	"github.com/wasmhost/wasmhost/testdata/hostile"
)

func TestAddInterrupt(t *testing.T) {
	// The check AddInterrupt puts at the top of a loop, with the countdown
	// at global 2 (the hostile plugin defines one global, the interrupt is
	// 1) and the added function after all the module's own.
	p0 := plugin()
	st, err := wasmcheck.Check(p0.Bytes(), wasmcheck.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	visit := byte(st.Functions)
	check := []byte{0x23, 0x02, 0x41, 0x01, 0x6b, 0x24, 0x02, 0x23, 0x02, 0x45, 0x04, 0x40, 0x10, visit, 0x0b}
	for _, tc := range []struct {
		name  string
		mod   func(p *hostile.Plugin)
		loops int
	}{
		{"no loop", func(p *hostile.Plugin) {}, 0},
		{"a loop in a call", func(p *hostile.Plugin) { p.Call = hostile.Loop }, 1},
		{"loops in init and a call", func(p *hostile.Plugin) {
			p.Init = hostile.Loop
			p.Call = append(append([]byte{}, hostile.Loop...), hostile.Loop...)
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plugin()
			tc.mod(&p)
			out, err := wasmcheck.AddInterrupt(p.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			st, err := wasmcheck.Check(out, wasmcheck.Limits{})
			if err != nil {
				t.Fatalf("the instrumented module fails the check: %v", err)
			}
			if got := bytes.Count(out, append([]byte{0x03, 0x40}, check...)); got != tc.loops {
				t.Errorf("%d loops begin with the check, want %d", got, tc.loops)
			}
			if !st.FuncExports["wasmhost_call"] || !st.MemoryExported {
				t.Error("the instrumented module lost its exports")
			}
			if !bytes.Contains(out, []byte(wasmcheck.InterruptExport)) {
				t.Errorf("%s is not exported", wasmcheck.InterruptExport)
			}
		})
	}
}

func TestAddInterruptMalformed(t *testing.T) {
	good := plugin()
	good.Call = hostile.Loop
	bin := good.Bytes()
	// Every prefix is malformed: refused or not, never a panic.
	for i := range bin {
		wasmcheck.AddInterrupt(bin[:i])
	}
	bad := plugin()
	bad.Init = []byte{0xff}
	if _, err := wasmcheck.AddInterrupt(bad.Bytes()); err == nil {
		t.Error("a module with an unknown opcode was instrumented")
	}
}

// FuzzAddInterrupt: AddInterrupt never panics, and what it makes of a
// module Check accepts, Check accepts again (one more level of nesting
// allowed: the check is an if inside each loop). It may refuse a module
// Check let through (Check does not read every section; wazero's
// validation refuses those anyway).
func FuzzAddInterrupt(f *testing.F) {
	p := plugin()
	p.Call = hostile.Loop
	f.Add(p.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := wasmcheck.Limits{MaxNesting: 8, MaxBrTable: 8}
		out, err := wasmcheck.AddInterrupt(b)
		if _, cerr := wasmcheck.Check(b, lim); cerr != nil || err != nil {
			return
		}
		lim.MaxNesting++
		if _, err := wasmcheck.Check(out, lim); err != nil {
			t.Fatalf("instrumented module refused: %v", err)
		}
	})
}
