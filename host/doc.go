// Package host runs wasmhost tool plugins: it owns the wazero runtime and its
// on-disk compilation cache, loads and checks plugins against ABI v1
// (package abi), keeps a few pre-initialised instances per plugin, and runs
// every tool call in a fresh, sandboxed instance that is closed afterwards.
// [Catalog] keeps a directory of plugins loaded, building Go source plugins
// on demand and following changes.
//
// It knows nothing of MCP, tasks, Redis or how questions reach a person: a
// running guest reaches the outside world only through the [Env] its caller
// passes to [Plugin.Call]. It must never write to os.Stdout, which is the
// MCP JSON-RPC channel of `wasmhost serve`; guest output goes to the Logger.
//
// # Sandbox
//
// Each instance gets wasi_snapshot_preview1 with no preopened directories,
// no environment variables, no sockets and one argument (the plugin's file
// name); real clocks and crypto/rand randomness. Linear memory is capped by
// [Options.MemoryLimitMiB] and each call by [Options.CallTimeout].
//
// # Cancellation
//
// Cancelling the context passed to [Plugin.Call] (or the call's deadline
// passing) ends the call promptly wherever the guest is: running code is
// stopped at its next function call or loop back-edge, a guest waiting in
// [Env.Input] sees the context end, and a guest asleep in WASI poll_oneoff
// (Go's time.Sleep) is woken. The error wraps [context.Canceled] or
// [ErrCallTimeout].
package host
