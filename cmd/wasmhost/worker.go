package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/worker"
)

// Environment variables that stand in for the store flags, so that a
// desktop client's config or a service unit need not repeat a URL (which
// may carry a password) on the command line.
const (
	envRedisURL    = "WASMHOST_REDIS_URL"
	envRedisPrefix = "WASMHOST_REDIS_PREFIX"
)

// stateKeyName names the shared secret that seals requestState
// (tasks.Redis.SharedKey).
const stateKeyName = "request-state"

// storeFlags choose the task store: the embedded one, or Redis shared by
// front ends and workers.
type storeFlags struct {
	redisURL  string
	prefix    string
	claimIdle time.Duration
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.redisURL, "redis", "", "share tasks through Redis at URL (redis://[user:password@]host:port[/db], rediss:// for TLS) with other front ends and workers; default $"+envRedisURL+", else the embedded store (this process only)")
	cmd.Flags().StringVar(&f.prefix, "redis-prefix", "", "start every Redis key with this; processes share tasks only with the same prefix (default $"+envRedisPrefix+", else \"wasmhost\")")
	cmd.Flags().DurationVar(&f.claimIdle, "claim-idle", 30*time.Second, "with --redis: how long a task may go without a heartbeat from its worker process before another worker takes it over (it then resumes it by replay)")
}

// url is the Redis URL from the flag or the environment; "" for the
// embedded store.
func (f *storeFlags) url() string {
	if f.redisURL != "" {
		return f.redisURL
	}
	return os.Getenv(envRedisURL)
}

// open returns the store, and the Redis store itself when it is one.
func (f *storeFlags) open(ctx context.Context, logger hclog.Logger) (tasks.Store, *tasks.Redis, error) {
	if f.claimIdle <= 0 {
		return nil, nil, fmt.Errorf("--claim-idle %s: must be positive (e.g. 30s)", f.claimIdle)
	}
	u := f.url()
	if u == "" {
		return tasks.NewMemory(), nil, nil
	}
	prefix := f.prefix
	if prefix == "" {
		prefix = os.Getenv(envRedisPrefix)
	}
	// go-redis logs dial failures on its own; our errors say it better.
	redis.SetLogger(redisLogger{logger.Named("go-redis")})
	// An idle worker looks for abandoned work once per Block: keep that
	// well under the claim time, so that a dead worker's tasks move soon
	// after it.
	block := min(5*time.Second, max(f.claimIdle/4, time.Second))
	r, err := tasks.NewRedis(ctx, tasks.RedisOptions{URL: u, Prefix: prefix, ClaimIdle: f.claimIdle, Block: block})
	if err != nil {
		return nil, nil, err
	}
	logger.Info("task store: Redis", "prefix", cmp.Or(prefix, "wasmhost"), "claim-idle", f.claimIdle)
	return r, r, nil
}

// redisLogger sends go-redis's own log lines to the debug log.
type redisLogger struct{ l hclog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...))
}

func workerCommand() *cobra.Command {
	var (
		rf         runtimeFlags
		sf         storeFlags
		pluginsDir string
		workers    int
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run tool calls queued in Redis by wasmhost serve front ends",
		Long: `Run the tool calls that front ends ("wasmhost serve --redis URL") queue in
a shared Redis: take them from the queue, run each guest in its own sandbox,
and record what it asks and returns in Redis, where the front end holding
the client's session picks it up. Start as many workers as you like, on any
machine that reaches Redis; each needs the same plugins as the front ends.

Every task keeps a journal in Redis of what its guest learnt from the host
(answers, clock, random bytes, capability results), so any worker can resume
it by replaying the guest to where it was. A guest waiting for a person is
evicted after --evict-after and resumed once answered. A worker that stops
(SIGTERM, Ctrl-C) stops its guests and hands their tasks back. A worker that
dies (kill -9, a crash, a lost machine) leaves its tasks to the others: after
--claim-idle without its heartbeat, another worker takes each one over and
resumes it. A side effect that was started and not journalled is never
repeated unless the tool is declared idempotent (annotations.idempotentHint):
the task fails instead, saying which call. See docs/redis.md.`,
		Example: `  # a front end that runs no guests, and two workers, all on one machine
  wasmhost serve  --redis redis://127.0.0.1:6379 --workers 0 --http 127.0.0.1:8080
  wasmhost worker --redis redis://127.0.0.1:6379 --plugins ./plugins
  wasmhost worker --redis redis://127.0.0.1:6379 --plugins ./plugins

  # the URL from the environment; 32 calls at a time
  WASMHOST_REDIS_URL=redis://redis.internal:6379/2 wasmhost worker --plugins /srv/plugins --workers 32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), &rf, &sf, pluginsDir, workers)
		},
	}
	rf.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&pluginsDir, "plugins", "plugins", "directory of plugins to run (the same as the front ends')")
	cmd.Flags().IntVar(&workers, "workers", 8, "guests that may run at once (a guest waiting for the user frees its place)")
	return cmd
}

func runWorker(ctx context.Context, rf *runtimeFlags, sf *storeFlags, pluginsDir string, workers int) error {
	if sf.url() == "" {
		return errors.New("wasmhost worker takes its work from Redis: pass --redis URL or set " + envRedisURL + " (the same as the front ends')")
	}
	if workers < 1 {
		return fmt.Errorf("--workers %d: a worker runs at least one call at a time", workers)
	}
	if rf.evictAfter <= 0 {
		return fmt.Errorf("--evict-after %s: must be positive (e.g. 30s)", rf.evictAfter)
	}
	logger := rf.logger()
	stop, err := startCPUProfile()
	if err != nil {
		return err
	}
	defer stop()
	if err := checkPluginsDir(pluginsDir); err != nil {
		return err
	}
	// A mistake in the grants file is the operator's to fix before anything
	// connects anywhere.
	if _, err := rf.grants(); err != nil {
		return err
	}
	// The store first: an unreachable Redis fails before plugins load.
	store, _, err := sf.open(ctx, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	rt, builder, err := rf.runtime(ctx, logger)
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	catalog, err := host.OpenCatalog(ctx, rt, pluginsDir, host.CatalogOptions{Logger: logger.Named("plugins"), Builder: builder})
	if err != nil {
		return err
	}
	defer catalog.Close()

	logger.Info("worker taking tool calls from the queue", "plugins", pluginsDir, "tools", len(catalog.Tools()), "workers", workers)
	worker.ReserveProcs(workers)
	w := worker.New(rf.workerOptions(worker.Options{Store: store, Tools: catalog, Concurrency: workers, Logger: logger.Named("worker")}))
	if err := w.Run(ctx); err != nil {
		return err
	}
	logger.Info("worker stopped")
	return nil
}

func checkPluginsDir(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("plugins directory %q not found: pass --plugins DIR (a directory of .wasm files or Go plugin sources)", dir)
	}
	return nil
}
