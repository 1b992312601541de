package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPinned: after its plugin file changed, a task's module is still
// served by digest, from the kept copy, until the copy is gone.
func TestPinned(t *testing.T) {
	ctx := context.Background()
	dir, modules := t.TempDir(), t.TempDir()
	writeRaw(t, dir, "greet.wasm", "greet", "v1")
	f := openCatalogWith(t, dir, false, CatalogOptions{ModulesDir: modules})
	first, ok := f.cat.Lookup("greet")
	if !ok {
		t.Fatal("greet not served")
	}
	v1 := first.Plugin.Digest()
	if p, err := f.cat.Pinned("greet", v1); err != nil || p != first.Plugin {
		t.Fatalf("Pinned of the current module: %v, %v", p, err)
	}

	writeRaw(t, dir, "greet.wasm", "greet", "v2")
	f.waitFor("v2 served", func() bool {
		e, ok := f.cat.Lookup("greet")
		return ok && e.Plugin.Digest() != v1
	})
	old, err := f.cat.Pinned("greet", v1)
	if err != nil {
		t.Fatal(err)
	}
	if old.Digest() != v1 || filepath.Base(old.name) != "greet.wasm" {
		t.Errorf("pinned plugin %s as %s, want %s as greet.wasm", old.Digest(), old.name, v1)
	}
	if got := resultText(t)(old.Call(ctx, "greet", nil, nil)); got != "v1" {
		t.Errorf("pinned module answered %q", got)
	}
	if again, _ := f.cat.Pinned("greet", v1); again != old {
		t.Errorf("a second Pinned loaded the module again")
	}

	_, err = f.cat.Pinned("greet", "sha256:"+strings.Repeat("0", 64))
	if !errors.Is(err, ErrModuleGone) {
		t.Errorf("unknown digest: %v, want ErrModuleGone", err)
	}
	// A catalog that never loaded v1, its copy deleted: gone, clearly.
	entries, _ := os.ReadDir(modules)
	for _, e := range entries {
		os.Remove(filepath.Join(modules, e.Name()))
	}
	g := openCatalogWith(t, dir, false, CatalogOptions{ModulesDir: modules})
	if _, err := g.cat.Pinned("greet", v1); !errors.Is(err, ErrModuleGone) || !strings.Contains(err.Error(), "no longer kept") {
		t.Errorf("deleted copy: %v, want ErrModuleGone saying it is no longer kept", err)
	}
}
