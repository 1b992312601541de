package mcpserver_test

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
)

// TestCatalogReadyWait checks that, while the catalog is still loading,
// initialize and ping are answered at once, while tools/list and a call of
// a tool not (yet) there wait for Ready. (A call of a loaded tool passes
// at once; it needs a worker, which this server has not.)
func TestCatalogReadyWait(t *testing.T) {
	cat := sharedCatalog(t)
	ready := make(chan struct{})
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn, Name: t.Name()})
	srv, err := mcpserver.New(mcpserver.Options{Catalog: cat, Store: tasks.NewMemory(), Logger: logger,
		Ready: ready, ReadyWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	wg.Go(func() {
		_ = srv.ServeStdio(ctx, serverR, serverW)
		serverW.Close()
	})
	t.Cleanup(func() {
		clientW.Close()
		cancel()
		wg.Wait()
		srv.Close()
	})
	c := newWireClient(t, clientR, clientW)
	c.initialize("2025-11-25", nil)
	list := c.send("tools/list", map[string]any{})
	unknown := c.send("tools/call", map[string]any{"name": "still_loading", "arguments": map[string]any{}})
	c.call("ping", map[string]any{})
	for what, ch := range map[string]<-chan message{"tools/list": list, "a call of an unknown tool": unknown} {
		select {
		case m := <-ch:
			t.Fatalf("%s answered before the catalog was ready: %+v", what, m)
		default:
		}
	}
	close(ready)
	c.await(list, "tools/list after Ready")
	if m := c.await(unknown, "the unknown tool's call after Ready"); m.Error == nil {
		t.Errorf("a call of a tool no plugin offers succeeded: %+v", m)
	}
}
