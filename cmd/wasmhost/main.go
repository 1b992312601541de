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
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmhost:", err)
		os.Exit(1)
	}
}

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
	logLevel    string
	budgetMiB   int
	fresh       bool
	cow         bool
}

func (f *runtimeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cacheDir, "cache-dir", "", "directory for compiled and built plugins (default: the user cache dir, e.g. ~/.cache/wasmhost)")
	cmd.Flags().Uint32Var(&f.memoryMiB, "memory-limit", 256, "memory cap per tool call, in MiB")
	cmd.Flags().DurationVar(&f.callTimeout, "call-timeout", 30*time.Minute, "wall-clock limit per tool call, including time spent waiting for the user")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "log level on stderr: trace, debug, info, warn or error")
	cmd.Flags().IntVar(&f.budgetMiB, "memory-budget", 0, "memory of all guests together, in MiB; past it new calls are refused (0: half the machine's memory; -1: no budget)")
	cmd.Flags().BoolVar(&f.cow, "cow-snapshots", false, "map the post-initialisation snapshot copy-on-write under each instance: less memory per waiting guest, slower calls (see docs/performance.md)")
	cmd.Flags().BoolVar(&f.fresh, "fresh-instances", false, "start every call in a newly initialised instance instead of one restored to the post-initialisation snapshot (slower; see docs/performance.md)")
}

func (f *runtimeFlags) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "wasmhost",
		Level:  hclog.LevelFromString(f.logLevel),
		Output: os.Stderr, // stdout is the JSON-RPC channel of serve
	})
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
	rt, err := host.New(ctx, host.Options{
		CacheDir:             filepath.Join(root, "compile"),
		MemoryLimitMiB:       f.memoryMiB,
		CallTimeout:          f.callTimeout,
		MemoryBudgetMiB:      f.budgetMiB,
		FreshInstances:       f.fresh,
		CopyOnWriteSnapshots: f.cow,
		Logger:               logger.Named("host"),
	})
	if err != nil {
		return nil, nil, err
	}
	return rt, &gobuild.Builder{CacheDir: filepath.Join(root, "build"), Logger: logger.Named("build")}, nil
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
