package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/grants"
	"github.com/wasmhost/wasmhost/internal/safetext"
	"github.com/wasmhost/wasmhost/internal/wasmcheck"
)

// Defaults for zero [Options] fields.
const (
	DefaultMemoryLimitMiB = 256
	DefaultCallTimeout    = 30 * time.Minute
	DefaultPoolSize       = 8
)

// Options configure a [Runtime]. The zero value means every default.
type Options struct {
	// CacheDir holds compiled machine code across runs, so a plugin that
	// took a second to compile loads in tens of milliseconds next time,
	// and the descriptions of the modules loaded, so that a catalog lists
	// an unchanged module's tools before compiling it.
	// "" means os.UserCacheDir()/wasmhost/compile.
	CacheDir string
	// MemoryLimitMiB caps each instance's linear memory. 0 means
	// DefaultMemoryLimitMiB; at most 4096 (wasm32's address space).
	MemoryLimitMiB uint32
	// CallTimeout is the wall-clock deadline of one call, including time
	// spent waiting in Env.Input for a person to answer. 0 means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// RunBudget caps the time one call runs, not counting time spent
	// waiting in Env.Input for a person. 0 means DefaultRunBudget; a
	// budget of CallTimeout or more has no effect.
	RunBudget time.Duration
	// PoolSize is the number of idle instances kept per plugin, each in
	// the state the guest had right after _initialize (restored from a
	// snapshot after every call), so that a call pays neither for
	// instantiating nor for starting the guest's runtime. They are made on
	// demand, so a plugin called one at a time keeps one; each costs about
	// the guest's initial memory. 0 means DefaultPoolSize; negative means
	// none: every call instantiates and initialises its own instance.
	PoolSize int
	// FreshInstances starts every call in a newly instantiated instance
	// that runs _initialize, as wasmhost did before snapshots, instead of
	// one restored to the post-_initialize snapshot. It does not rewrite
	// the module to take a snapshot (a fallback should that rewrite ever
	// misbehave), at several milliseconds per call. A fresh instance starts
	// in the snapshot's state all the same (the same deterministic start,
	// docs/host.md), so that journals replay across both policies.
	FreshInstances bool
	// MemoryBudgetMiB caps the linear memory of all guests together,
	// running and idle: an instance that would not fit is refused with
	// ErrMemoryBudget (after idle ones are let go), and growth past it
	// fails inside the guest. 0 means half the machine's memory; negative
	// means none.
	MemoryBudgetMiB int
	// CopyOnWriteSnapshots maps the snapshot under each pooled instance
	// copy-on-write (Linux) instead of copying it in: an instance then
	// holds only the pages its calls wrote (about half the resident memory
	// per suspended guest), but every call pays page faults for the pages
	// it touches (about 3x slower per call, measured in
	// docs/performance.md). For hosts with many guests waiting for answers.
	CopyOnWriteSnapshots bool
	// Logger receives the host's own log lines and everything guests write
	// to stdout, stderr or the log import, under a sub-logger named after
	// the plugin file. nil discards.
	Logger hclog.Logger
	// Grants is the operator's capability policy (package grants). nil
	// grants nothing: plugins load, and their capability requests fail
	// with an error saying how to grant them.
	Grants *grants.Policy
	// MaxJournalBytes bounds the journal of one call whose Env is a
	// Recorder (durable suspension): past it the call fails with
	// ErrJournalFull. 0 means DefaultMaxJournalBytes.
	MaxJournalBytes int
	// HTTPRootCAs verifies the servers of guests' HTTPS requests. nil means
	// the system's roots. Verification is never off.
	HTTPRootCAs *x509.CertPool
}

// Runtime loads and runs plugins. It is safe for concurrent use.
type Runtime struct {
	opts Options // with defaults filled in
	log  hclog.Logger

	wz     wazero.Runtime
	cache  wazero.CompilationCache
	budget *memBudget
	// imports are the host functions by name, to check a plugin's imports
	// before instantiating it.
	imports map[string]api.FunctionDefinition
	// descriptions lets a catalog list plugins without starting them
	// (describecache.go).
	descriptions *describeCache

	// killed ends every call still running when Close gives up waiting.
	killed context.Context
	kill   context.CancelFunc

	httpCaps *httpCaps // performs guests' HTTP requests (httpcap.go)

	mu      sync.Mutex
	closed  bool
	plugins map[*Plugin]struct{}
}

// New starts a runtime. Close it to release the compiled code, the
// instances and the cache handle.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MemoryLimitMiB == 0 {
		opts.MemoryLimitMiB = DefaultMemoryLimitMiB
	}
	if opts.MemoryLimitMiB > 4096 {
		return nil, fmt.Errorf("host: memory limit of %d MiB is over wasm32's 4096 MiB", opts.MemoryLimitMiB)
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.RunBudget <= 0 {
		opts.RunBudget = DefaultRunBudget
	}
	opts.RunBudget = min(opts.RunBudget, opts.CallTimeout)
	if opts.PoolSize == 0 {
		opts.PoolSize = DefaultPoolSize
	}
	if opts.MaxJournalBytes <= 0 {
		opts.MaxJournalBytes = DefaultMaxJournalBytes
	}
	if opts.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("host: no compilation cache directory (set Options.CacheDir): %w", err)
		}
		opts.CacheDir = filepath.Join(dir, "wasmhost", "compile")
	}
	cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("host: compilation cache %s: %w", opts.CacheDir, err)
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		// 64 KiB pages.
		// Guests are stopped through the interrupt global Load adds
		// (wasmcheck.AddInterrupt), not WithCloseOnContextDone, whose
		// check is an indirect call at every loop header: Go's wasm code
		// ran 2-5 times slower with it.
		WithMemoryLimitPages(opts.MemoryLimitMiB * 16)
	budget := &memBudget{}
	switch {
	case opts.MemoryBudgetMiB == 0:
		budget.limit = defaultMemoryBudget()
	case opts.MemoryBudgetMiB > 0:
		budget.limit = int64(opts.MemoryBudgetMiB) << 20
	}
	r := &Runtime{
		budget:  budget,
		opts:    opts,
		log:     opts.Logger,
		wz:      wazero.NewRuntimeWithConfig(ctx, cfg),
		cache:   cache,
		plugins: make(map[*Plugin]struct{}),

		httpCaps: newHTTPCaps(opts.HTTPRootCAs),
	}
	r.killed, r.kill = context.WithCancel(context.Background())
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.wz); err != nil {
		r.wz.Close(ctx)
		cache.Close(ctx)
		return nil, fmt.Errorf("host: wasi: %w", err)
	}
	hm, err := r.instantiateImports(ctx)
	if err != nil {
		r.wz.Close(ctx)
		cache.Close(ctx)
		return nil, fmt.Errorf("host: host functions: %w", err)
	}
	r.imports = hm.ExportedFunctionDefinitions()
	r.descriptions = newDescribeCache(filepath.Join(opts.CacheDir, "describe"), r)
	return r, nil
}

// Close stops new calls, waits for calls in flight until ctx is done, then
// ends those still running and releases everything. Plugins loaded from r
// are unusable afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()

	for _, p := range plugins {
		p.retire()
	}
	for _, p := range plugins {
		select {
		case <-p.idle:
		case <-ctx.Done():
		}
	}
	// Cancelling the calls still running wakes those waiting in Env.Input
	// or asleep; closing the wazero runtime stops the others.
	r.kill()
	r.httpCaps.close()
	err := r.wz.Close(context.WithoutCancel(ctx))
	if cerr := r.cache.Close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("host: close: %w", err)
	}
	return nil
}

// dropIdle closes every plugin's idle instances, giving their memory back
// to the budget.
func (r *Runtime) dropIdle() {
	r.mu.Lock()
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()
	for _, p := range plugins {
		p.drain()
	}
}

func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Load compiles the plugin at path, checks that it speaks this ABI version
// and exports what the ABI requires, and reads its tool descriptions. Errors
// name the file and say what to do; they match [ErrInvalidPlugin].
func (r *Runtime) Load(ctx context.Context, path string) (*Plugin, error) {
	name := filepath.Base(path)
	bin, err := readModule(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	return r.load(ctx, path, name, bin, sha256.Sum256(bin))
}

// wasmMagic is the preamble of every core WebAssembly module, version 1.
var wasmMagic = []byte("\x00asm\x01\x00\x00\x00")

// Exports every plugin must have, with their signatures.
var requiredExports = []struct {
	name            string
	params, results []api.ValueType
}{
	{abi.ExportABIVersion, nil, []api.ValueType{api.ValueTypeI32}},
	{abi.ExportAlloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
	{abi.ExportDescribe, nil, []api.ValueType{api.ValueTypeI64}},
	{abi.ExportCall, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	// A reactor's initialiser (Go's -buildmode=c-shared). A command module
	// exports _start instead and would run main and exit.
	{"_initialize", nil, nil},
}

func (r *Runtime) load(ctx context.Context, path, name string, bin []byte, digest [32]byte) (_ *Plugin, err error) {
	defer recovered(&err, "plugin "+name+": load", r.log.Error)
	if r.isClosed() {
		return nil, fmt.Errorf("plugin %s: runtime %w", name, ErrClosed)
	}
	start := time.Now()
	p := newPlugin(r, path, name, nil)
	p.setDigest(digest)
	desc, raw, err := p.start(ctx, bin)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.compiled.Close(context.WithoutCancel(ctx))
		}
	}()
	if p.caps, err = r.resolveGrants(name, desc.Needs); err != nil {
		return nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %w", name, err))
	}
	if p.snap != nil && p.caps.mountsDirs() {
		p.snapshotWithMounts(ctx)
	}
	p.caps.annotate(desc.Tools)
	p.setTools(desc.Tools)
	p.setExtras(desc)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("plugin %s: runtime %w", name, ErrClosed)
	}
	r.plugins[p] = struct{}{}
	r.mu.Unlock()
	ok = true
	p.startPool()
	r.descriptions.put(digest, raw)
	p.log.Debug("loaded plugin", "path", path, "tools", len(desc.Tools), "took", time.Since(start).Round(time.Millisecond))
	return p, nil
}

// start compiles bin, the plugin's file, and runs the handshake, with
// every check of a load but the grants: p gets its compiled code and, when
// the module allows one, its snapshot. It returns the description, checked,
// and its JSON as the guest wrote it. On error p has neither.
func (p *Plugin) start(ctx context.Context, bin []byte) (_ *abi.Description, raw []byte, err error) {
	r, name := p.rt, p.name
	invalid := func(format string, args ...any) error {
		return tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: "+format, append([]any{name}, args...)...))
	}
	// compileError says what the checks or the compiler refused.
	compileError := func(err error) error {
		if errors.Is(err, wasmcheck.ErrRefused) || errors.Is(err, errNotPlugin) {
			return invalid("%w", err)
		}
		return invalid("cannot compile: %w", err)
	}
	defer recovered(&err, "plugin "+name+": start", r.log.Error)
	if !bytes.HasPrefix(bin, wasmMagic) {
		return nil, nil, invalid("%w", notWasm(bin[:min(len(bin), len(wasmMagic))]))
	}
	if err := checkModule(bin); err != nil {
		return nil, nil, compileError(err)
	}
	// Every loop of the guest counts down to a visit to the host, where it
	// can be stopped (wasmcheck.AddInterrupt).
	stoppable, err := wasmcheck.AddInterrupt(bin)
	if err != nil {
		return nil, nil, invalid("cannot instrument its loops so that it can be stopped: %w", err)
	}
	bin = stoppable
	// Expose the guest's globals, so that its state after _initialize can
	// be snapshotted. A module the rewrite does not understand loads as it
	// is, and its calls start fresh instances. Both rewrites are linear in
	// the module, which checkModule has accepted and they add to by a few
	// bytes per loop and global; wazero validates what actually runs.
	var globals []string
	if !r.opts.FreshInstances {
		if rewritten, names, err := exportGlobals(bin); err == nil {
			bin, globals = rewritten, names
		} else {
			r.log.Debug("no snapshots for this plugin", "plugin", name, "reason", err)
		}
	}
	compiled, err := r.compile(ctx, bin)
	if err != nil {
		return nil, nil, compileError(err)
	}
	ok := false
	defer func() {
		if !ok {
			compiled.Close(context.WithoutCancel(ctx))
			p.compiled, p.globals, p.snap = nil, nil, nil
		}
	}()
	if err := r.checkImports(compiled); err != nil {
		return nil, nil, invalid("%w", err)
	}
	exports := compiled.ExportedFunctions()
	// Without these two the version cannot be asked: a command module
	// (no _initialize) would run an uninitialised Go runtime.
	if exports[abi.ExportABIVersion] == nil || exports["_initialize"] == nil {
		return nil, nil, invalid("%w", checkExports(exports))
	}

	p.compiled, p.globals = compiled, globals
	desc, raw, err := p.handshake(ctx, exports)
	if err != nil {
		return nil, nil, err
	}
	if err := validateDescription(desc); err != nil {
		return nil, nil, invalid("%w", err)
	}
	if err := checkOptionalExports(desc, exports); err != nil {
		return nil, nil, invalid("%w", err)
	}
	ok = true
	return desc, raw, nil
}

// handshakeTimeout bounds loading a plugin (start it, read its version and
// description). It is not a tool call, so the per-call limit, which may be
// set short, does not apply; a plugin that needs longer is broken.
const handshakeTimeout = time.Minute

// handshake runs one throwaway instance to read the ABI version and the
// description. It is not pooled: pooled instances are never used before
// their call.
func (p *Plugin) handshake(ctx context.Context, exports map[string]api.FunctionDefinition) (_ *abi.Description, raw []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	inst, err := p.instantiate(ctx)
	if err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: cannot start: %w", p.name, err))
	}
	defer inst.close()
	defer inst.guard(ctx)()

	ver, err := inst.mod.ExportedFunction(abi.ExportABIVersion).Call(ctx)
	if err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %s: %w", p.name, abi.ExportABIVersion, err))
	}
	if v := int32(ver[0]); v != abi.Version {
		return nil, nil, tag(ErrInvalidPlugin, tag(ErrIncompatibleABI, fmt.Errorf(
			"plugin %s: built for ABI v%d, this wasmhost speaks ABI v%d; rebuild it with the matching SDK",
			p.name, v, abi.Version)))
	}
	if err := checkExports(exports); err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %w", p.name, err))
	}

	res, err := inst.mod.ExportedFunction(abi.ExportDescribe).Call(ctx)
	if err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %s: %w", p.name, abi.ExportDescribe, err))
	}
	raw, err = inst.readResult(res[0])
	if err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %s: %w", p.name, abi.ExportDescribe, err))
	}
	raw = bytes.Clone(raw) // a view of guest memory, which goes with inst
	var desc abi.Description
	if err := json.Unmarshal(raw, &desc); err != nil {
		return nil, nil, tag(ErrInvalidPlugin, fmt.Errorf("plugin %s: %s: description is not valid JSON: %w", p.name, abi.ExportDescribe, err))
	}
	if p.globals != nil {
		// After the two pure exports and before anything that sees a
		// caller's data: the guest's runtime has done the work it defers to
		// its first calls (Go's starts its background goroutines, the SDK
		// reflects on the tools' types), so calls restored from here do not
		// each redo it.
		if p.snap, err = capture(inst, p.globals, p.rt.opts.CopyOnWriteSnapshots); err != nil {
			p.log.Debug("no snapshot; calls start fresh instances", "error", err)
		}
	}
	return &desc, raw, nil
}

// snapshotWithMounts takes the snapshot again for a plugin granted
// directories. A guest's runtime learns its preopened directories in
// _initialize (Go's syscall package caches them), and the handshake's
// instance started before the grants were known, with none: instances
// restored from its snapshot would find every mount a bad file number.
func (p *Plugin) snapshotWithMounts(ctx context.Context) {
	p.snap = nil // calls start fresh instances unless this succeeds
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	inst, err := p.instantiate(ctx)
	if err != nil {
		p.log.Debug("no snapshot; calls start fresh instances", "error", err)
		return
	}
	defer inst.close()
	// The same two pure exports the handshake called before its capture.
	if err := inst.callGuarded(ctx, pureExports...); err != nil {
		p.log.Debug("no snapshot; calls start fresh instances", "error", err)
		return
	}
	if p.snap, err = capture(inst, p.globals, p.rt.opts.CopyOnWriteSnapshots); err != nil {
		p.log.Debug("no snapshot; calls start fresh instances", "error", err)
	}
}

// checkExports names every missing or mistyped required export.
func checkExports(exports map[string]api.FunctionDefinition) error {
	var missing, mistyped []string
	for _, want := range requiredExports {
		def, ok := exports[want.name]
		switch {
		case !ok:
			missing = append(missing, want.name)
		case !sameTypes(def.ParamTypes(), want.params) || !sameTypes(def.ResultTypes(), want.results):
			mistyped = append(mistyped, want.name)
		}
	}
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "missing exports "+strings.Join(missing, ", "))
	}
	if len(mistyped) > 0 {
		msgs = append(msgs, "exports with the wrong signature "+strings.Join(mistyped, ", "))
	}
	if msgs == nil {
		return nil
	}
	return fmt.Errorf("not a wasmhost ABI v%d plugin: %s; build it with the wasmhost SDK and -buildmode=c-shared",
		abi.Version, strings.Join(msgs, "; "))
}

// Exports a plugin needs only for what it describes.
var (
	exportGetPrompt = struct {
		params, results []api.ValueType
	}{[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}}
	exportReadResource = struct {
		params, results []api.ValueType
	}{[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}}
)

// checkOptionalExports requires wasmhost_get_prompt of a plugin that
// describes prompts and wasmhost_read_resource of one that describes
// resources or templates, with their signatures.
func checkOptionalExports(desc *abi.Description, exports map[string]api.FunctionDefinition) error {
	check := func(name, what, sig string, params, results []api.ValueType) error {
		def, ok := exports[name]
		if !ok {
			return fmt.Errorf("describes %s but does not export %s %s; rebuild it with an SDK that supports them", what, name, sig)
		}
		if !sameTypes(def.ParamTypes(), params) || !sameTypes(def.ResultTypes(), results) {
			return fmt.Errorf("describes %s but its export %s has the wrong signature (want %s)", what, name, sig)
		}
		return nil
	}
	if len(desc.Prompts) > 0 {
		if err := check(abi.ExportGetPrompt, "prompts", "(i32, i32, i32, i32) -> i64",
			exportGetPrompt.params, exportGetPrompt.results); err != nil {
			return err
		}
	}
	if len(desc.Resources) > 0 || len(desc.ResourceTemplates) > 0 {
		if err := check(abi.ExportReadResource, "resources", "(i32, i32) -> i64",
			exportReadResource.params, exportReadResource.results); err != nil {
			return err
		}
	}
	return nil
}

// checkImports refuses imports the sandbox does not provide, before
// instantiation would fail with a less helpful message.
func (r *Runtime) checkImports(compiled wazero.CompiledModule) error {
	var bad []string
	for _, def := range compiled.ImportedFunctions() {
		mod, fn, _ := def.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
			continue // wazero implements all of preview1
		case abi.ImportModule:
			if have, ok := r.imports[fn]; ok &&
				sameTypes(have.ParamTypes(), def.ParamTypes()) && sameTypes(have.ResultTypes(), def.ResultTypes()) {
				continue
			}
		}
		bad = append(bad, safetext.Line(mod+"."+fn)) // the guest chose these names
	}
	if bad == nil {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("imports %s, which this wasmhost (ABI v%d) does not provide; was it built for another ABI version or runtime?",
		strings.Join(bad, ", "), abi.Version)
}

func sameTypes(a, b []api.ValueType) bool {
	return bytes.Equal(a, b)
}
