// Command wasmhost serves a directory of WebAssembly tool plugins over the
// Model Context Protocol. The data flow, from here down: this CLI → the MCP
// front end (mcpserver) → tasks ↔ the elicit relay → host (wazero) → abi ←
// the guest SDK.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/grants"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
	"github.com/wasmhost/wasmhost/internal/logsink"
	"github.com/wasmhost/wasmhost/worker"
)

// shutdownGrace is how long the process may take to end after SIGTERM or
// Ctrl-C: calls in flight get that long to finish, then it exits anyway.
// A second signal exits at once.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	exited := make(chan struct{})
	go exitAfterGrace(ctx, exited, shutdownGrace, func(code int) {
		stderrSink().Close(time.Second)
		os.Exit(code)
	})
	err := rootCommand().ExecuteContext(ctx)
	close(exited)
	stop()
	stderrSink().Close(2 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmhost:", err)
		os.Exit(1)
	}
}

// exitAfterGrace calls exit once ctx is done (a signal came) and the
// command has not returned within grace, or at once on a second signal: a
// guest or a validation that ignores cancellation must not keep the
// process alive.
func exitAfterGrace(ctx context.Context, exited <-chan struct{}, grace time.Duration, exit func(code int)) {
	select {
	case <-ctx.Done():
	case <-exited:
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-again:
		fmt.Fprintln(os.Stderr, "wasmhost: second signal; exiting now")
		exit(130)
	case <-t.C:
		fmt.Fprintf(os.Stderr, "wasmhost: still shutting down after %v; exiting now\n", grace)
		exit(1)
	}
}

// stderrSink is the process's log output: stderr behind a bounded buffer,
// so that a log line (a guest's included) never blocks its writer when
// whoever reads our stderr stops reading. It drops and counts instead.
var stderrSink = sync.OnceValue(func() *logsink.Writer { return logsink.New(os.Stderr, 0) })

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "wasmhost",
		Short: "Serve WebAssembly tool plugins to AI applications over MCP",
		Long: `wasmhost turns a directory of WebAssembly tool plugins into an MCP server.

Drop .wasm plugins (or directories of Go source written with the guest SDK,
built on demand) into a folder and point your MCP client at "wasmhost serve".
Tools run in a fresh wazero sandbox per call, as background tasks when the
client asks for one, and can ask the user questions while they run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), workerCommand(), buildCommand(), newCommand(), callCommand(), inspectCommand(), versionCommand())
	return root
}

// runtimeFlags are the sandbox settings every command that runs guests
// shares.
type runtimeFlags struct {
	cacheDir    string
	memoryMiB   uint32
	callTimeout time.Duration
	runBudget   time.Duration
	logLevel    string
	grantsFile  string

	policy *grants.Policy // loaded once, by grants

	// buildNetwork lets source plugin builds download modules.
	buildNetwork bool
	// suspendedMiB budgets the memory of guests waiting for a person, and
	// evictAfter how long one is kept; perPlugin caps one plugin's running
	// guests.
	suspendedMiB uint32
	evictAfter   time.Duration
	perPlugin    int
	budgetMiB    int
	fresh        bool
	cow          bool
}

func (f *runtimeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cacheDir, "cache-dir", "", "directory for compiled and built plugins (default: the user cache dir, e.g. ~/.cache/wasmhost)")
	cmd.Flags().Uint32Var(&f.memoryMiB, "memory-limit", 256, "memory cap per tool call, in MiB")
	cmd.Flags().DurationVar(&f.callTimeout, "call-timeout", 30*time.Minute, "wall-clock limit per tool call, including time spent waiting for the user")
	cmd.Flags().DurationVar(&f.runBudget, "run-budget", host.DefaultRunBudget, "run time per tool call, not counting time spent waiting for the user's answers")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "log level on stderr: trace, debug, info, warn or error")
	cmd.Flags().StringVar(&f.grantsFile, "grants", os.Getenv("WASMHOST_GRANTS"),
		"the operator's grants file: which hosts, directories, config and secrets each plugin may use (docs/security.md); without it nothing is granted (env WASMHOST_GRANTS)")
	cmd.Flags().Uint32Var(&f.suspendedMiB, "suspended-memory", 8192, "memory, in MiB, that guests waiting for a person's answer may hold between them, counting each at its --memory-limit; past it the one waiting longest is evicted (closed, and resumed by replay once answered)")
	cmd.Flags().DurationVar(&f.evictAfter, "evict-after", worker.DefaultEvictAfter, "how long a guest waiting for a person's answer stays in memory; then it is evicted: closed, its task kept in the store, and resumed by replay on any worker once answered")
	cmd.Flags().IntVar(&f.perPlugin, "per-plugin", 0, "guests of one plugin that may run at once, so that one plugin cannot take every slot (default: half of --workers)")
	cmd.Flags().BoolVar(&f.buildNetwork, "build-network", false, "let builds of Go source plugins download modules through GOPROXY (default: only the module cache and vendor directories)")
	cmd.Flags().IntVar(&f.budgetMiB, "memory-budget", 0, "memory of all guests together, in MiB; past it new calls are refused (0: half the machine's memory; -1: no budget)")
	cmd.Flags().BoolVar(&f.cow, "cow-snapshots", false, "map the post-initialisation snapshot copy-on-write under each instance: less memory per waiting guest, slower calls (see docs/performance.md)")
	cmd.Flags().BoolVar(&f.fresh, "fresh-instances", false, "start every call in a newly initialised instance instead of one restored to the post-initialisation snapshot (slower; see docs/performance.md)")
}

// grants loads the grants file, if one was given.
func (f *runtimeFlags) grants() (*grants.Policy, error) {
	if f.grantsFile == "" || f.policy != nil {
		return f.policy, nil
	}
	p, err := grants.Load(f.grantsFile)
	f.policy = p
	return p, err
}

func (f *runtimeFlags) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "wasmhost",
		Level:  hclog.LevelFromString(f.logLevel),
		Output: stderrSink(), // stdout is the JSON-RPC channel of serve
	})
}

// workerOptions are the worker settings the flags decide.
func (f *runtimeFlags) workerOptions(o worker.Options) worker.Options {
	o.MaxSuspended = max(1, int(f.suspendedMiB/max(f.memoryMiB, 1)))
	o.EvictAfter = f.evictAfter
	o.PerPlugin = f.perPlugin
	return o
}

// cacheRoot is where compiled modules and plugin builds are kept.
func (f *runtimeFlags) cacheRoot() (string, error) {
	if f.cacheDir != "" {
		return f.cacheDir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (%w): pass --cache-dir", err)
	}
	return filepath.Join(dir, "wasmhost"), nil
}

func (f *runtimeFlags) runtime(ctx context.Context, logger hclog.Logger) (*host.Runtime, *gobuild.Builder, error) {
	root, err := f.cacheRoot()
	if err != nil {
		return nil, nil, err
	}
	policy, err := f.grants()
	if err != nil {
		return nil, nil, err
	}
	if policy != nil {
		logger.Info("capability grants", "file", policy.File(), "ask", policy.Ask(), "remembered", policy.RememberFile())
	}
	rt, err := host.New(ctx, host.Options{
		CacheDir:             filepath.Join(root, "compile"),
		MemoryLimitMiB:       f.memoryMiB,
		CallTimeout:          f.callTimeout,
		MemoryBudgetMiB:      f.budgetMiB,
		FreshInstances:       f.fresh,
		CopyOnWriteSnapshots: f.cow,
		RunBudget:            f.runBudget,
		Logger:               logger.Named("host"),
		Grants:               policy,
	})
	if err != nil {
		return nil, nil, err
	}
	return rt, &gobuild.Builder{CacheDir: filepath.Join(root, "build"), Logger: logger.Named("build"), AllowNetwork: f.buildNetwork}, nil
}

// loadPlugin loads a .wasm file, or builds and loads a Go plugin directory.
func loadPlugin(ctx context.Context, rt *host.Runtime, b *gobuild.Builder, path string) (*host.Plugin, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		wasm, _, err := b.Build(ctx, path)
		if err != nil {
			return nil, err
		}
		path = wasm
	}
	return rt.Load(ctx, path)
}
