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
// Each instance gets wasi_snapshot_preview1 with no environment variables,
// no sockets, no preopened directories but those the operator granted, and
// one argument (the plugin's file name); real clocks and crypto/rand
// randomness in calls, a virtual clock and a random stream seeded from the
// module's digest before them (_initialize, the handshake), so that the
// state calls start from is the same in every process. Linear memory is capped by [Options.MemoryLimitMiB], each
// call by [Options.CallTimeout] (wall clock) and [Options.RunBudget] (run
// time, not counting waits for a person). Modules are checked before they
// compile, and what guests log, notify and return is escaped, budgeted and
// validated: docs/security.md lists every limit.
//
// # Capabilities
//
// What a plugin declares (abi.Needs) and the operator grants
// ([Options.Grants], package grants) it may use through the capability
// import: HTTP requests the host performs (allowlist, TLS verified,
// redirects re-checked, the dialled address checked against private
// ranges), config values and secrets (scrubbed from what the guest sends
// out). Granted directories are its only preopens, confined so that
// neither .. nor a symlink leads out. Nothing is granted by default.
//
// # Cancellation
//
// Cancelling the context passed to [Plugin.Call] (or the call's deadline
// passing) ends the call promptly wherever the guest is: running code is
// stopped at its next function call or loop back-edge, a guest waiting in
// [Env.Input] sees the context end, and a guest asleep in WASI poll_oneoff
// (Go's time.Sleep) is woken. The error wraps [context.Canceled] or
// [ErrCallTimeout].
//
// # Deferred tasks
//
// A tool described with DeferTask starts as an ordinary call even for a
// client that takes tasks, so that it can ask its questions while the
// client waits, and then calls the detach import to say that the rest may
// run in the background. The host passes that to the call's Env if it
// implements [Detacher], and tells the guest whether the caller turned the
// call into a task; the call itself runs on to its result either way.
//
// # Durable suspension
//
// A call whose Env implements [Recorder] keeps a journal of everything the
// guest learned from the host: answers to its questions, capability results
// (a secret by name only; an HTTP request with side effects as started
// before it is sent), detach, clock and random readings. A run that lost
// its guest (the caller evicted it while it waited, returning [ErrEvicted]
// from Env.Input, or its process died) is resumed in a fresh instance, in
// any process, by calling the same export again with the journal as
// Recorded: the host answers from it, without asking or performing anything
// and without repeating logs, until it is used up, and runs live from
// there. A guest that does something else than its journal says fails with
// [ErrReplayDiverged]; a side effect started but never finished fails with
// [ErrUnfinishedSideEffect] unless the tool is idempotent. [Catalog.Pinned]
// keeps serving a module a task started with after its plugin changed.
//
// # What the host checks
//
// Besides the ABI's pointers, sizes and JSON, the host checks what MCP
// clients would choke on and passes the rest through untouched: input
// request keys (1 to 64 characters of A-Z a-z 0-9 _ . -, unique within a
// batch), resource content blocks (a resource with a URI), and a guest's
// protocol error (a non-zero code and a message).
package host
