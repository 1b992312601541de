package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(bin)
}

// A module loaded once is listed on the next start from its kept
// description, and compiles and starts on its first call.
func TestCatalogListsUnchangedPluginsBeforeStarting(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	copyFile(t, guest(t, "echo"), filepath.Join(dir, "echo.wasm"))
	open := func() *Catalog {
		r, _ := newRuntime(t, Options{CacheDir: cache})
		cat, err := OpenCatalog(context.Background(), r, dir, CatalogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cat.Close() })
		return cat
	}
	first := open()
	loaded, ok := first.Lookup("echo")
	if !ok || !loaded.Plugin.hasStarted() {
		t.Fatalf("first start: echo served %v, started %v", ok, ok && loaded.Plugin.hasStarted())
	}
	loadedTools := len(first.Tools())
	first.Close()

	second := open()
	listed, ok := second.Lookup("echo")
	if !ok {
		t.Fatalf("second start: tools %v", second.Tools())
	}
	if listed.Plugin.hasStarted() {
		t.Error("an unchanged plugin was compiled and started before its first call")
	}
	if len(second.Tools()) != loadedTools {
		t.Errorf("listed %d tools, loaded %d", len(second.Tools()), loadedTools)
	}
	if string(listed.Tool.InputSchema) != string(loaded.Tool.InputSchema) || listed.Tool.Description != loaded.Tool.Description {
		t.Errorf("listed %+v, loaded %+v", listed.Tool, loaded.Tool)
	}
	res, err := listed.Plugin.Call(context.Background(), "echo", []byte(`{"text":"hi"}`), nil)
	if err != nil || res.IsError {
		t.Fatalf("first call of a listed plugin: %v %+v", err, res)
	}
	if !listed.Plugin.hasStarted() {
		t.Error("not started after its first call")
	}
}

// A listed plugin whose module fails to start (here: a description kept
// for a module that was never loaded) fails its call, loses its entry in
// the cache, and is loaded again by the catalog, which lists the problem.
func TestCatalogReloadsAListedPluginThatFailsToStart(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	old := filepath.Join(dir, "old.wasm")
	copyFile(t, guest(t, "abiv2"), old)
	r, _ := newRuntime(t, Options{CacheDir: cache})
	digest := fileDigest(t, old)
	r.descriptions.put(digest, []byte(`{"tools":[{"name":"ghost","inputSchema":{"type":"object"}}]}`))
	f := &catalogFixture{t: t, dir: dir, changes: make(chan struct{}, 64)}
	cat, err := OpenCatalog(context.Background(), r, dir, CatalogOptions{OnChange: func() {
		select {
		case f.changes <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	f.cat = cat
	ghost, ok := cat.Lookup("ghost")
	if !ok {
		t.Fatalf("the kept description was not listed: %v", f.toolNames())
	}
	if _, err := ghost.Plugin.Call(context.Background(), "ghost", nil, nil); !errors.Is(err, ErrIncompatibleABI) {
		t.Fatalf("call: %v; want the load error", err)
	}
	f.waitFor("the problem listed", func() bool {
		_, still := cat.Lookup("ghost")
		return !still && f.problem("old.wasm", "built for ABI v2")
	})
	if _, kept := r.descriptions.get(digest); kept {
		t.Error("the description of a module that fails to start is still kept")
	}
}

// A file replaced after its tools were listed is never run under the
// listed description: its start checks the file is the one listed.
func TestListedPluginRefusesAChangedFile(t *testing.T) {
	r, _ := newRuntime(t, Options{CacheDir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "p.wasm")
	copyFile(t, guest(t, "echo"), path)
	if _, err := r.Load(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	digest := fileDigest(t, path)
	copyFile(t, guest(t, "hostile"), path)
	p, ok, err := r.listed(path, "p.wasm", digest, nil)
	if !ok || err != nil {
		t.Fatalf("listed: %v %v", ok, err)
	}
	if _, err := p.Call(context.Background(), "echo", nil, nil); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("call: %v; want a refusal of the changed file", err)
	}
	if p.hasStarted() {
		t.Error("started from a changed file")
	}
}

// A digest kept by file identity is given back only for the same file,
// unchanged, and never for one written within the racy window.
func TestKnownDigestFollowsTheFile(t *testing.T) {
	r, _ := newRuntime(t, Options{CacheDir: t.TempDir()})
	c := r.descriptions
	path := filepath.Join(t.TempDir(), "m.wasm")
	remember := func(content string) [32]byte {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(content))
		c.rememberDigest(path, fi, fi, digest)
		return digest
	}
	remember("one")
	if _, ok := c.knownDigest(path); ok {
		t.Error("the digest of a file written just now was kept")
	}

	c.racyWindow = 0
	one := remember("one")
	if got, ok := c.knownDigest(path); !ok || got != one {
		t.Fatalf("unchanged file: %x %v", got, ok)
	}
	// Rewritten in place within the same clock tick, only the size tells
	// (the racy window covers a rewrite of the same size).
	if err := os.WriteFile(path, []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.knownDigest(path); ok {
		t.Errorf("a rewritten file was given the old digest %x", got)
	}
	copyFile(t, path, path) // replaced by rename: a new inode
	if _, ok := c.knownDigest(path); ok {
		t.Error("a replaced file was given a digest")
	}
}
