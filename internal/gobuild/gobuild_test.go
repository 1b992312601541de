package gobuild

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/sdk/guest/fielddocs"
)

// A minimal reactor: enough for the go command, nothing for wasmhost.
const mainSrc = `package main

import "example.com/m/lib"

//go:wasmexport answer
func answer() int32 { return lib.Answer + GENERATED }

func main() {}
`

const genDecl = "\nconst GENERATED = 0\n"

// module writes a small module with a main package and a library package
// into a new temp dir and returns the main package's dir.
func module(t *testing.T, answer string, withGenerated bool) string {
	t.Helper()
	root := t.TempDir()
	src := mainSrc
	if withGenerated {
		src += genDecl
	}
	write(t, filepath.Join(root, "go.mod"), "module example.com/m\n\ngo 1.24\n")
	write(t, filepath.Join(root, "lib", "lib.go"), "package lib\n\nconst Answer = "+answer+"\n")
	write(t, filepath.Join(root, "plug", "main.go"), src)
	return filepath.Join(root, "plug")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newBuilder(t *testing.T) (*Builder, *strings.Builder) {
	logs := &strings.Builder{}
	var mu sync.Mutex
	return &Builder{
		CacheDir: t.TempDir(),
		Logger: hclog.New(&hclog.LoggerOptions{JSONFormat: true, Output: writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		})}),
	}, logs
}

// logged reports whether the JSON log holds an entry at level with every
// one of the attributes: what it says, not how it words it.
func logged(t *testing.T, logs *strings.Builder, level string, attrs ...string) bool {
	t.Helper()
next:
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if e["@level"] != level {
			continue
		}
		for _, a := range attrs {
			if _, ok := e[a]; !ok {
				continue next
			}
		}
		return true
	}
	return false
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestBuildCaches(t *testing.T) {
	b, logs := newBuilder(t)
	dir := module(t, "42", true)
	ctx := context.Background()

	first, cached, err := b.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cached || filepath.Base(first) != "plug.wasm" {
		t.Errorf("first build: %s cached=%v", first, cached)
	}
	if bin, _ := os.ReadFile(first); !strings.HasPrefix(string(bin), "\x00asm") {
		t.Fatalf("%s is not wasm", first)
	}
	if !logged(t, logs, "info", "dir", "wasm", "took") {
		t.Errorf("log does not say what was built and how long it took:\n%s", logs)
	}

	again, cached, err := b.Build(ctx, dir)
	if err != nil || !cached || again != first {
		t.Errorf("second build: %s cached=%v err=%v; want %s from the cache", again, cached, err, first)
	}

	// The same source elsewhere is the same build: paths are not keyed.
	moved, cached, err := b.Build(ctx, module(t, "42", true))
	if err != nil || !cached || moved != first {
		t.Errorf("copied source: %s cached=%v err=%v; want %s", moved, cached, err, first)
	}

	// A change in another package of the module is a new build.
	changed, cached, err := b.Build(ctx, module(t, "43", true))
	if err != nil || cached || changed == first {
		t.Errorf("changed dependency: %s cached=%v err=%v; want a new build", changed, cached, err)
	}
}

func TestBuildConcurrent(t *testing.T) {
	b, logs := newBuilder(t)
	dir := module(t, "7", true)
	var wg sync.WaitGroup
	paths := make([]string, 4)
	built := make([]bool, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, cached, err := b.Build(context.Background(), dir)
			if err != nil {
				t.Error(err)
			}
			paths[i], built[i] = p, !cached
		}()
	}
	wg.Wait()
	n := 0
	for i := range paths {
		if paths[i] != paths[0] {
			t.Errorf("paths differ: %q", paths)
		}
		if built[i] {
			n++
		}
	}
	if n != 1 || strings.Count(logs.String(), "built plugin from source") != 1 {
		t.Errorf("%d callers report building, log:\n%s", n, logs)
	}
	leftovers, _ := filepath.Glob(filepath.Join(b.CacheDir, "*", ".build-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestBuildError(t *testing.T) {
	b, _ := newBuilder(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/bad\n\ngo 1.24\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { nope() }\n")
	_, _, err := b.Build(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "undefined: nope") || !strings.Contains(err.Error(), "gobuild: build "+dir) {
		t.Errorf("err = %v; want the compiler's message", err)
	}
	if _, _, err := b.Build(context.Background(), filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing directory")
	}
}

// sdkModule writes a module whose plugin imports a stand-in for the guest
// SDK (its own go.mod replaces wasmhost with a local stub), and returns the
// plugin's dir.
func sdkModule(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module example.com/p\n\ngo 1.24\n\n"+
		"require github.com/wasmhost/wasmhost v0.0.0\n\nreplace github.com/wasmhost/wasmhost => ./sdk\n")
	write(t, filepath.Join(root, "sdk", "go.mod"), "module github.com/wasmhost/wasmhost\n\ngo 1.24\n")
	write(t, filepath.Join(root, "sdk", "sdk", "guest", "guest.go"), "package guest\n\nvar Docs map[string]string\n")
	write(t, filepath.Join(root, "plug", "main.go"), `package main

import "github.com/wasmhost/wasmhost/sdk/guest"

//go:wasmexport answer
func answer() int32 { return int32(len(guest.Docs)) + GENERATED }

func main() {}
`)
	return filepath.Join(root, "plug")
}

// TestOverlay checks that generated field docs reach the compiler through
// -overlay without touching the source directory, and count in the key.
func TestOverlay(t *testing.T) {
	b, logs := newBuilder(t)
	dir := sdkModule(t) // GENERATED comes only from the generator
	gen := genDecl
	generateFieldDocs = func(string) (string, []byte, error) {
		return "zz_fielddocs.go", []byte("package main\n" + gen), nil
	}
	defer func() { generateFieldDocs = fielddocs.Generate }()

	first, _, err := b.Build(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "zz_fielddocs.go")); !os.IsNotExist(err) {
		t.Errorf("generated file written into the source directory")
	}
	gen = "\nconst GENERATED = 1\n"
	second, cached, err := b.Build(context.Background(), dir)
	if err != nil || cached || second == first {
		t.Errorf("changed generated file: %s cached=%v err=%v; want a new build", second, cached, err)
	}

	// A generated file that does not compile costs the descriptions only.
	gen = "\nconst GENERATED = 2\nvar _ = guest.RegisterFieldDocs\n"
	if _, _, err := b.Build(context.Background(), dir); err == nil {
		t.Fatal("built although GENERATED is only in the broken generated file")
	}
	if !logged(t, logs, "warn", "dir", "error") {
		t.Errorf("no fallback build logged:\n%s", logs)
	}

	// Packages that do not import the SDK get no generated file.
	if importsSDK(module(t, "1", true)) || !importsSDK(dir) {
		t.Error("importsSDK is wrong")
	}
}

// TestFieldDocsReachTheBinary builds a real SDK plugin of this repository
// and checks that a doc comment fielddocs finds ends up in the .wasm.
func TestFieldDocsReachTheBinary(t *testing.T) {
	dir := filepath.Join("..", "..", "plugins", "greet")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("plugins/greet not present")
	}
	_, src, err := fielddocs.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"main\.[A-Za-z]+\.[A-Za-z]+": "([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Skip("plugins/greet has no field docs")
	}
	b, _ := newBuilder(t)
	wasm, _, err := b.Build(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := os.ReadFile(wasm)
	if !bytes.Contains(bin, m[1]) {
		t.Errorf("%s does not contain the field doc %q", wasm, m[1])
	}
}

// goSpy returns a go command that appends its arguments to a log before
// running the real one, and a function reading what ran.
func goSpy(t *testing.T) (goCmd string, ran func() []string) {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "ran")
	goCmd = filepath.Join(dir, "go")
	write(t, goCmd, "#!/bin/sh\necho \"$1\" >> "+logFile+"\nexec "+real+" \"$@\"\n")
	if err := os.Chmod(goCmd, 0o755); err != nil {
		t.Fatal(err)
	}
	return goCmd, func() []string {
		b, _ := os.ReadFile(logFile)
		os.Remove(logFile)
		return strings.Fields(string(b))
	}
}

func TestUnchangedSourceNeedsNoGoCommand(t *testing.T) {
	goCmd, ran := goSpy(t)
	cache := t.TempDir()
	dir := module(t, "42", true)
	ctx := context.Background()
	build := func() (string, bool) {
		t.Helper()
		// A new Builder: what a restarted server has.
		out, cached, err := (&Builder{CacheDir: cache, GoCmd: goCmd}).Build(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		return out, cached
	}
	first, _ := build()
	if got := ran(); !slices.Contains(got, "list") || !slices.Contains(got, "build") {
		t.Fatalf("first build ran %q; want go list and go build", got)
	}
	if again, cached := build(); !cached || again != first {
		t.Errorf("unchanged: %s cached=%v; want %s", again, cached, first)
	}
	if got := ran(); len(got) != 0 {
		t.Errorf("an unchanged plugin ran the go command: %q", got)
	}

	lib := filepath.Join(filepath.Dir(dir), "lib")
	for _, change := range []struct {
		name string
		do   func()
	}{
		{"a dependency's source", func() { write(t, filepath.Join(lib, "lib.go"), "package lib\n\nconst Answer = 43\n") }},
		{"a file added to a dependency", func() { write(t, filepath.Join(lib, "more.go"), "package lib\n\nconst More = 1\n") }},
		{"go.mod", func() { write(t, filepath.Join(filepath.Dir(dir), "go.mod"), "module example.com/m\n\ngo 1.25\n") }},
		{"a go.mod in the plugin", func() { write(t, filepath.Join(dir, "go.mod"), "module example.com/p\n\ngo 1.24\n") }},
	} {
		change.do()
		out, _ := func() (string, bool) {
			out, cached, err := (&Builder{CacheDir: cache, GoCmd: goCmd}).Build(ctx, dir)
			if err != nil && change.name != "a go.mod in the plugin" {
				t.Fatalf("after changing %s: %v", change.name, err)
			}
			return out, cached
		}()
		if got := ran(); !slices.Contains(got, "list") {
			t.Errorf("after changing %s the key was not recomputed (ran %q, built %s)", change.name, got, out)
		}
	}
}
