package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/worker"
)

func serveCommand() *cobra.Command {
	var (
		rf         runtimeFlags
		pluginsDir string
		workers    int
		hf         httpFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the plugins in a directory over MCP on stdin/stdout",
		Long: `Serve every plugin in the plugins directory to one MCP client over stdio.

The directory may hold .wasm files and directories of Go source written with
the guest SDK (built on first use, then cached). It is watched: adding,
replacing or removing a plugin updates the tools and notifies the client.
Stdout carries JSON-RPC only; logs go to stderr.`,
		Example: `  # serve the example plugins (what an MCP client runs)
  wasmhost serve --plugins ./plugins

  # in a desktop client's config
  {"mcpServers": {"wasmhost": {"command": "wasmhost", "args": ["serve", "--plugins", "/path/to/plugins"]}}}

  # Streamable HTTP at http://127.0.0.1:8080/mcp instead of stdio
  wasmhost serve --http 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), &rf, &hf, pluginsDir, workers)
		},
	}
	rf.register(cmd)
	cmd.Flags().StringVar(&pluginsDir, "plugins", "plugins", "directory of plugins to serve")
	cmd.Flags().IntVar(&workers, "workers", 8, "tool calls that may run at once (a call waiting for the user holds one)")
	hf.register(cmd)
	return cmd
}

func serve(ctx context.Context, rf *runtimeFlags, hf *httpFlags, pluginsDir string, workers int) error {
	logger := rf.logger()
	if fi, err := os.Stat(pluginsDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("plugins directory %q not found: pass --plugins DIR (a directory of .wasm files or Go plugin sources)", pluginsDir)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt, builder, err := rf.runtime(ctx, logger)
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())

	var (
		mu  sync.Mutex
		srv *mcpserver.Server
	)
	catalog, err := host.OpenCatalog(ctx, rt, pluginsDir, host.CatalogOptions{
		Logger:  logger.Named("plugins"),
		Builder: builder,
		OnChange: func() {
			mu.Lock()
			defer mu.Unlock()
			if srv != nil {
				srv.ToolsChanged()
			}
		},
	})
	if err != nil {
		return err
	}
	defer catalog.Close()
	logger.Info("serving plugins", "dir", pluginsDir, "tools", len(catalog.Tools()), "problems", len(catalog.Problems()))

	store := tasks.NewMemory()
	defer store.Close()
	mu.Lock()
	srv, err = mcpserver.New(mcpserver.Options{Catalog: catalog, Store: store, Logger: logger.Named("mcp"), Version: version})
	mu.Unlock()
	if err != nil {
		return err
	}
	defer srv.Close()

	w := worker.New(worker.Options{Store: store, Tools: catalog, Concurrency: workers, Logger: logger.Named("worker")})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			logger.Error("worker stopped", "error", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	if hf.addr != "" {
		return hf.serve(ctx, srv, logger)
	}
	return srv.ServeStdio(ctx, os.Stdin, os.Stdout)
}
