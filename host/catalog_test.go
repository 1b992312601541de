package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// sourcePlugin is a self-contained plugin module (its own go.mod, no
// imports) for the catalog to build from source.
const sourcePlugin = `package main

import "unsafe"

var keep [][]byte

//go:wasmexport wasmhost_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport wasmhost_alloc
func alloc(n uint32) uint32 {
	b := make([]byte, n+1)
	keep = append(keep, b)
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func pack(s string) uint64 {
	b := []byte(s)
	keep = append(keep, b)
	return uint64(uintptr(unsafe.Pointer(&b[0])))<<32 | uint64(len(b))
}

//go:wasmexport wasmhost_describe
func describe() uint64 {
	return pack(` + "`" + `{"tools":[{"name":"TOOL","inputSchema":{"type":"object"}}]}` + "`" + `)
}

//go:wasmexport wasmhost_call
func call(namePtr, nameLen, argsPtr, argsLen uint32) uint64 {
	return pack(` + "`" + `{"content":[{"type":"text","text":"built from source"}]}` + "`" + `)
}

func main() {}
`

func writeSourcePlugin(t *testing.T, dir, tool string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/srcplugin\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.Replace(sourcePlugin, "TOOL", tool, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyFile installs a plugin the way a deploy script should: write aside,
// then rename into place.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(to), ".tmp-"+filepath.Base(to))
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

type catalogFixture struct {
	t       *testing.T
	dir     string
	cat     *Catalog
	changes chan struct{}
}

func openCatalog(t *testing.T, dir string, withBuilder bool) *catalogFixture {
	return openCatalogWith(t, dir, withBuilder, CatalogOptions{})
}

func openCatalogWith(t *testing.T, dir string, withBuilder bool, opts CatalogOptions) *catalogFixture {
	t.Helper()
	r, logs := newRuntime(t, Options{})
	f := &catalogFixture{t: t, dir: dir, changes: make(chan struct{}, 64)}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	opts.OnChange = func() {
		select {
		case f.changes <- struct{}{}:
		default: // waitFor re-checks its condition anyway
		}
	}
	if withBuilder {
		opts.Builder = guestBuilder
	}
	if opts.ModulesDir == "" {
		opts.ModulesDir = t.TempDir()
	}
	cat, err := OpenCatalog(context.Background(), r, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	f.cat = cat
	return f
}

// waitFor returns once cond holds, checking after every change notice.
func (f *catalogFixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case <-f.changes:
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s; tools %v; problems %v", what, f.toolNames(), f.cat.Problems())
		}
	}
}

func (f *catalogFixture) toolNames() []string {
	var out []string
	for _, te := range f.cat.Tools() {
		out = append(out, te.Tool.Name+"@"+filepath.Base(te.Plugin.Path()))
	}
	return out
}

func (f *catalogFixture) problem(file, reason string) bool {
	for _, p := range f.cat.Problems() {
		if filepath.Base(p.File) == file && strings.Contains(p.Reason, reason) {
			return true
		}
	}
	return false
}

func (f *catalogFixture) servedBy(tool, file string) bool {
	te, ok := f.cat.Lookup(tool)
	return ok && filepath.Base(te.Plugin.Path()) == file
}

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, guest(t, "echo"), filepath.Join(dir, "a.wasm"))
	copyFile(t, guest(t, "abiv2"), filepath.Join(dir, "old.wasm"))
	os.WriteFile(filepath.Join(dir, "junk.wasm"), []byte("not wasm"), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("ignored"), 0o644)
	os.Mkdir(filepath.Join(dir, "notaplugin"), 0o755)
	writeSourcePlugin(t, filepath.Join(dir, "src"), "from_source")
	f := openCatalog(t, dir, true)

	// Initial state: every good plugin, every problem.
	if !f.servedBy("echo", "a.wasm") || !f.servedBy("from_source", "src.wasm") {
		t.Fatalf("tools = %v", f.toolNames())
	}
	tools := f.cat.Tools()
	for i := 1; i < len(tools); i++ {
		if tools[i-1].Tool.Name >= tools[i].Tool.Name {
			t.Errorf("tools not sorted: %v", f.toolNames())
		}
	}
	if !f.problem("junk.wasm", "not a WebAssembly module") || !f.problem("old.wasm", "built for ABI v2") {
		t.Errorf("problems = %v", f.cat.Problems())
	}
	if n := len(f.cat.Problems()); n != 2 {
		t.Errorf("problems = %v, want 2", f.cat.Problems())
	}
	res, err := tools[0].Plugin.Call(context.Background(), tools[0].Tool.Name, nil, nil)
	if err != nil || len(res.Content) == 0 {
		t.Fatalf("call through the catalog: %v, %v", res, err)
	}

	t.Run("conflict: first name wins", func(t *testing.T) {
		copyFile(t, guest(t, "echo"), filepath.Join(dir, "b.wasm"))
		f.waitFor("b.wasm shadowed", func() bool {
			return f.problem("b.wasm", `tool "echo" is shadowed by the one in a.wasm`)
		})
		if !f.servedBy("echo", "a.wasm") {
			t.Errorf("echo served by the wrong plugin: %v", f.toolNames())
		}
	})

	t.Run("remove: the other plugin takes over", func(t *testing.T) {
		os.Remove(filepath.Join(dir, "a.wasm"))
		f.waitFor("b.wasm serving echo", func() bool { return f.servedBy("echo", "b.wasm") })
		if f.problem("b.wasm", "shadowed") {
			t.Errorf("b.wasm still reported shadowed: %v", f.cat.Problems())
		}
	})

	t.Run("replace: calls in flight finish on the old plugin", func(t *testing.T) {
		old, _ := f.cat.Lookup("elicit")
		entered, release := make(chan struct{}, 1), make(chan struct{})
		done := callAsync(context.Background(), old.Plugin, "elicit", `{"message":"?"}`, blockingEnv(entered, release))
		<-entered
		// Written in place, in two steps, as cp would: the debounce must
		// load it once, whole.
		bin, _ := os.ReadFile(guest(t, "hostile"))
		fh, err := os.OpenFile(filepath.Join(dir, "b.wasm"), os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fh.Write(bin[:len(bin)/2])
		fh.Write(bin[len(bin)/2:])
		fh.Close()
		f.waitFor("b.wasm replaced", func() bool {
			_, stillEcho := f.cat.Lookup("elicit")
			return !stillEcho && f.servedBy("statuses", "b.wasm")
		})
		close(release)
		if err := waitErr(t, done, 30*time.Second); err != nil {
			t.Errorf("call in flight on the replaced plugin: %v", err)
		}
		if _, err := old.Plugin.Call(context.Background(), "echo", nil, nil); err == nil {
			t.Error("the replaced plugin still takes new calls")
		}
	})

	t.Run("source edited: rebuilt", func(t *testing.T) {
		writeSourcePlugin(t, filepath.Join(dir, "src"), "renamed_tool")
		f.waitFor("renamed tool", func() bool {
			_, gone := f.cat.Lookup("from_source")
			return f.servedBy("renamed_tool", "src.wasm") && !gone
		})
	})

	t.Run("broken source: reported with compiler output", func(t *testing.T) {
		os.MkdirAll(filepath.Join(dir, "broken"), 0o755)
		os.WriteFile(filepath.Join(dir, "broken", "go.mod"), []byte("module example.com/broken\n\ngo 1.24\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "broken", "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
		f.waitFor("broken reported", func() bool { return f.problem("broken", "undefined: undefinedThing") })
		if !f.servedBy("renamed_tool", "src.wasm") {
			t.Errorf("a broken plugin disturbed the others: %v", f.toolNames())
		}
	})
}

func TestCatalogWithoutBuilder(t *testing.T) {
	dir := t.TempDir()
	writeSourcePlugin(t, filepath.Join(dir, "src"), "from_source")
	copyFile(t, guest(t, "echo"), filepath.Join(dir, "echo.wasm"))
	f := openCatalog(t, dir, false)
	if !f.problem("src", "no builder") {
		t.Errorf("problems = %v", f.cat.Problems())
	}
	if !f.servedBy("echo", "echo.wasm") {
		t.Errorf("tools = %v", f.toolNames())
	}
	if err := f.cat.Close(); err != nil {
		t.Fatal(err)
	}
	if len(f.cat.Tools()) != 0 {
		t.Error("tools served after Close")
	}
}

// TestCatalogBackground checks that a background catalog returns before
// loading, serves plugins as they arrive (OnChange for each) and says when
// the first scan is done; and that closing it mid-scan does not hang.
func TestCatalogBackground(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, guest(t, "echo"), filepath.Join(dir, "echo.wasm"))
	writeSourcePlugin(t, filepath.Join(dir, "src"), "from_source")
	f := openCatalogWith(t, dir, true, CatalogOptions{Background: true})
	f.waitFor("the echo tools and the source plugin's", func() bool {
		_, echo := f.cat.Lookup("echo")
		_, src := f.cat.Lookup("from_source")
		return echo && src
	})
	select {
	case <-f.cat.Loaded():
	case <-time.After(60 * time.Second):
		t.Fatal("Loaded not closed after every plugin was served")
	}
	if len(f.cat.Problems()) != 0 {
		t.Errorf("problems: %v", f.cat.Problems())
	}

	g := openCatalogWith(t, dir, true, CatalogOptions{Background: true})
	closed := make(chan error, 1)
	go func() { closed <- g.cat.Close() }()
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		t.Fatal("Close during the first scan did not return")
	}
}
