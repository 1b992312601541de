package host

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestExportGlobals checks the load-time rewrite: the result compiles,
// exports every mutable global it names, and keeps the original exports;
// input it does not understand is left alone with errNoRewrite.
func TestExportGlobals(t *testing.T) {
	bin, err := os.ReadFile(guest(t, "echo"))
	if err != nil {
		t.Fatal(err)
	}
	out, names, err := exportGlobals(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no mutable globals found in a Go module (it has SP and others)")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	orig, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatalf("rewritten module does not compile: %v", err)
	}
	for name := range orig.ExportedFunctions() {
		if mod.ExportedFunctions()[name] == nil {
			t.Errorf("export %s lost", name)
		}
	}
	// Through Load, which applies the same rewrite: every name is a
	// mutable global of the instance.
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	inst, err := p.instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.close()
	for _, name := range names {
		if _, ok := inst.mod.ExportedGlobal(name).(api.MutableGlobal); !ok {
			t.Errorf("global export %s missing or immutable", name)
		}
	}
	if _, _, err := exportGlobals(out); !errors.Is(err, errNoRewrite) {
		t.Errorf("rewriting twice: %v, want errNoRewrite (the prefix is taken)", err)
	}
	for _, bad := range [][]byte{nil, wasmMagic, append(append([]byte{}, wasmMagic...), 7, 0x80)} {
		if _, _, err := exportGlobals(bad); !errors.Is(err, errNoRewrite) {
			t.Errorf("exportGlobals(%x) = %v, want errNoRewrite", bad, err)
		}
	}
}
