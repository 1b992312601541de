package mcpserver_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
)

// TestPluginDirectoryChangesReachTheClient: a plugin added to the watched
// directory becomes a tool and the client is told; one removed goes away.
func TestPluginDirectoryChangesReachTheClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	copyPlugin(t, "greet", dir)
	cache := filepath.Join(os.TempDir(), "wasmhost-test-cache")
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
	rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(cache, "compile"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())

	var mu sync.Mutex
	var srv *mcpserver.Server
	cat, err := host.OpenCatalog(ctx, rt, dir, host.CatalogOptions{
		Logger: logger,
		OnChange: func() {
			mu.Lock()
			defer mu.Unlock()
			if srv != nil {
				srv.ToolsChanged()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	mu.Lock()
	srv, err = mcpserver.New(mcpserver.Options{Catalog: cat, Store: tasks.NewMemory(), Logger: logger})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	go func() { _ = srv.ServeStdio(ctx, serverR, serverW); serverW.Close() }()
	defer clientW.Close()
	c := newWireClient(t, clientR, clientW)
	c.initialize("2025-11-25", nil)

	listChanged := func(m message) bool { return m.Method == "notifications/tools/list_changed" }
	tools := func() map[string]bool {
		var list struct {
			Tools []struct{ Name string } `json:"tools"`
		}
		c.result("tools/list", map[string]any{}, &list)
		names := map[string]bool{}
		for _, tool := range list.Tools {
			names[tool.Name] = true
		}
		return names
	}
	if got := tools(); !got["greet"] || got["confirm_delete"] {
		t.Fatalf("tools at start: %v", got)
	}

	copyPlugin(t, "confirm", dir)
	c.waitNotification(listChanged)
	if got := tools(); !got["confirm_delete"] || !got["multi_input"] {
		t.Errorf("after adding plugins/confirm: %v", got)
	}

	if err := os.Remove(filepath.Join(dir, "greet.wasm")); err != nil {
		t.Fatal(err)
	}
	c.waitNotification(listChanged)
	if got := tools(); got["greet"] {
		t.Errorf("after removing plugins/greet: %v", got)
	}
}

// copyPlugin drops plugin name, built from ../plugins, into dir as
// name.wasm: written aside and renamed in, as one deploys a plugin.
func copyPlugin(t *testing.T, name, dir string) {
	t.Helper()
	b := &gobuild.Builder{CacheDir: filepath.Join(os.TempDir(), "wasmhost-test-cache", "build")}
	wasm, _, err := b.Build(context.Background(), filepath.Join("..", "plugins", name))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(stage, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(stage, filepath.Join(dir, name+".wasm")); err != nil {
		t.Fatal(err)
	}
}
