package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/worker"
)

func serveCommand() *cobra.Command {
	var (
		rf         runtimeFlags
		sf         storeFlags
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
Stdout carries JSON-RPC only; logs go to stderr.

Tasks live in an embedded store by default, and die with the process. With
--redis they live in Redis, shared with other front ends and with "wasmhost
worker" processes: tasks outlive a restart of this process (a client that
comes back finds them with tasks/get and tasks/result), and --workers 0
makes this process a front end only, leaving the guests to the workers.`,
		Example: `  # serve the example plugins (what an MCP client runs)
  wasmhost serve --plugins ./plugins

  # in a desktop client's config
  {"mcpServers": {"wasmhost": {"command": "wasmhost", "args": ["serve", "--plugins", "/path/to/plugins"]}}}

  # Streamable HTTP at http://127.0.0.1:8080/mcp instead of stdio
  wasmhost serve --http 127.0.0.1:8080

  # tasks in Redis; guests run here and in any "wasmhost worker"
  wasmhost serve --redis redis://127.0.0.1:6379

  # a front end only: guests run in "wasmhost worker" processes
  wasmhost serve --redis redis://127.0.0.1:6379 --workers 0 --http 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), &rf, &sf, &hf, pluginsDir, workers)
		},
	}
	rf.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&pluginsDir, "plugins", "plugins", "directory of plugins to serve")
	cmd.Flags().IntVar(&workers, "workers", 8, "guests this process runs at once (a guest waiting for the user frees its place); 0 runs none, for a front end whose calls run in \"wasmhost worker\" processes (needs --redis)")
	hf.register(cmd)
	return cmd
}

// catalogReadyWait bounds how long requests reading the catalog wait for
// the plugins present at start to load (initialize never waits).
const catalogReadyWait = 15 * time.Second

func serve(ctx context.Context, rf *runtimeFlags, sf *storeFlags, hf *httpFlags, pluginsDir string, workers int) error {
	logger := rf.logger()
	stop, err := startCPUProfile()
	if err != nil {
		return err
	}
	defer stop()
	if err := checkPluginsDir(pluginsDir); err != nil {
		return err
	}
	if _, err := rf.grants(); err != nil {
		return err
	}
	switch {
	case workers < 0:
		return fmt.Errorf("--workers %d: want 0 or more", workers)
	case rf.evictAfter <= 0:
		return fmt.Errorf("--evict-after %s: must be positive (e.g. 30s)", rf.evictAfter)
	case workers == 0 && sf.url() == "":
		return errors.New("--workers 0 runs no tool calls here, and with the embedded store no other process can: pass --redis URL and start \"wasmhost worker\" processes, or give --workers 1 or more")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The store first: an unreachable Redis fails before plugins load.
	store, shared, err := sf.open(ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
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
		// Answer initialize at once and serve plugins as they load (the
		// client hears tools/list_changed for each): a slow build or a
		// big module never holds back the start.
		Background: true,
		OnChange: func() {
			mu.Lock()
			defer mu.Unlock()
			if srv != nil {
				srv.CatalogChanged()
			}
		},
	})
	if err != nil {
		return err
	}
	defer catalog.Close()
	logger.Info("serving plugins as they load", "dir", pluginsDir)

	opts := mcpserver.Options{Catalog: catalog, Store: store, Logger: logger.Named("mcp"), Version: version,
		// Lists and calls wait a little for a warm start to finish loading,
		// never past a client's usual timeouts; then list_changed tells the
		// client about what comes later.
		Ready: catalog.Loaded(), ReadyWait: catalogReadyWait, RunBudget: rf.runBudget}
	if shared != nil {
		// A requestState sealed here must open in any front end of the
		// same store.
		if opts.StateKey, err = shared.SharedKey(ctx, stateKeyName); err != nil {
			return err
		}
	}
	mu.Lock()
	srv, err = mcpserver.New(opts)
	mu.Unlock()
	if err != nil {
		return err
	}
	defer srv.Close()

	var wg sync.WaitGroup
	if workers > 0 {
		worker.ReserveProcs(workers)
		w := worker.New(rf.workerOptions(worker.Options{Store: store, Tools: catalog, Concurrency: workers, Logger: logger.Named("worker")}))
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				logger.Error("worker stopped", "error", err)
			}
		})
	} else {
		logger.Info("front end only (--workers 0): tool calls run in wasmhost worker processes")
	}
	defer wg.Wait()
	defer cancel()
	if hf.addr != "" {
		var events mcp.EventStore // nil: in memory, for this process's clients
		var sessions mcpserver.SessionStore
		if shared != nil {
			// A client resumes its session and streams from any front
			// end of the store.
			events, sessions = shared.EventStore(tasks.StreamRetention{}), shared
		}
		return hf.serve(ctx, srv, events, sessions, logger)
	}
	return srv.ServeStdio(ctx, os.Stdin, os.Stdout)
}

// startCPUProfile writes a pprof CPU profile of this process until stop
// is called, to the file $WASMHOST_CPUPROFILE names ("%p" there becomes
// the process id, for a front end and its workers), if set. For
// docs/performance.md.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv("WASMHOST_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("WASMHOST_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("WASMHOST_CPUPROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
