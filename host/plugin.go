package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmhost/wasmhost/abi"
)

// Env is what a running guest can reach; the caller wires it per call.
// Its methods are called on the goroutine running [Plugin.Call], one at a
// time.
type Env interface {
	// Input blocks until every request is answered (same order), or ctx
	// ends. It must return promptly once ctx is done: the guest is
	// suspended until it does. An error other than ctx's is passed to the
	// guest as an abi.ErrCodeFailed answer to every request.
	Input(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error)
	// Log receives the guest's log lines (already written to the Logger).
	Log(level abi.LogLevel, msg string)
	// Progress receives the guest's progress reports.
	Progress(p abi.Progress)
}

// Detacher is implemented by an [Env] whose caller can let a call go on in
// the background: a tool described with abi.Tool.DeferTask starts as an
// ordinary call, may ask its questions while the client waits, and then
// calls the detach import. The host passes that on to Detach, on the
// goroutine running [Plugin.Call], with the call's context.
//
// Detach returns true when the caller has turned the call into a task (the
// client was given a task handle instead of a result), false when the
// client goes on waiting for the result. Either way the guest runs on and
// Plugin.Call returns its result as usual; only where the caller sends that
// result changes. The call keeps the context Plugin.Call was given, so a
// caller that may detach must pass one that outlives the client's request.
//
// # Notes
//
//   - An Env without Detach answers false, as does a tool not described
//     with DeferTask (the Env is then not asked).
//   - Once Detach has returned true, later detach calls in the same call
//     answer true without asking again.
type Detacher interface {
	Detach(ctx context.Context) bool
}

// Plugin is one loaded plugin file. Its methods are safe for concurrent use;
// every call runs in its own instance.
type Plugin struct {
	rt       *Runtime
	path     string
	name     string // base name of path, used in messages
	log      hclog.Logger
	compiled wazero.CompiledModule
	// digest is "sha256:<hex>" of the module file; seed, its raw bytes,
	// seeds the guest's random stream until its first call (startState).
	digest string
	seed   [32]byte
	caps   *capabilities // what the grants allow; nil until loaded
	tools  []abi.Tool
	byName map[string]abi.Tool

	prompts      []abi.Prompt
	promptByName map[string]abi.Prompt
	resources    []abi.Resource
	resourceURIs map[string]bool
	templates    []abi.ResourceTemplate

	// snap is the guest's state right after _initialize, captured while
	// loading; nil when the module could not be rewritten to expose its
	// globals, or Options.FreshInstances is set. globals names the exports
	// the rewrite added.
	snap    *snapshot
	globals []string
	// deferred is set on a plugin listed from the description cache: its
	// compiled code, snapshot and pool are made by its first call.
	deferred *deferredStart

	// The pool: idle instances in the snapshot's state, never used or
	// restored after their call, at most PoolSize of them. Instances are
	// made on demand (restoring the snapshot runs no guest code) and
	// returned after a clean call; a call never sees what another left.
	pool     chan *instance // nil when pooling is off
	restores restores       // instances on their way back to the pool
	retired  atomic.Bool    // pooling given up after a failure (see retirePool)
	hits     atomic.Int64   // checkouts served from the pool
	misses   atomic.Int64   // checkouts that had to make an instance

	mu     sync.Mutex
	closed bool
	// users counts calls in flight; the compiled code is released when it
	// drops to zero after Close.
	users int
	idle  chan struct{} // closed once closed and users == 0
}

func newPlugin(r *Runtime, path, name string, compiled wazero.CompiledModule) *Plugin {
	p := &Plugin{
		rt:       r,
		path:     path,
		name:     name,
		log:      r.log.Named(name),
		compiled: compiled,
		idle:     make(chan struct{}),
	}
	return p
}

func (p *Plugin) setTools(tools []abi.Tool) {
	p.tools = tools
	p.byName = make(map[string]abi.Tool, len(tools))
	for i := range p.tools {
		if p.tools[i].TaskSupport == "" {
			p.tools[i].TaskSupport = abi.TaskForbidden
		}
		p.byName[p.tools[i].Name] = p.tools[i]
	}
}

func (p *Plugin) setExtras(d *abi.Description) {
	p.prompts = d.Prompts
	p.promptByName = make(map[string]abi.Prompt, len(d.Prompts))
	for _, pr := range d.Prompts {
		p.promptByName[pr.Name] = pr
	}
	p.resources = d.Resources
	p.resourceURIs = make(map[string]bool, len(d.Resources))
	for _, r := range d.Resources {
		p.resourceURIs[r.URI] = true
	}
	p.templates = d.ResourceTemplates
}

// Digest is "sha256:<hex>" of the module's bytes as read from its file: a
// journal is replayed only against the module it was recorded with.
func (p *Plugin) Digest() string { return p.digest }

// setDigest records the sha256 of the module file p runs.
func (p *Plugin) setDigest(sum [32]byte) {
	p.seed, p.digest = sum, "sha256:"+hex.EncodeToString(sum[:])
}

// Path is the file the plugin was loaded from.
func (p *Plugin) Path() string { return p.path }

// Tools returns the plugin's tools as it described them, with TaskSupport
// filled in. The slice is the caller's to keep.
func (p *Plugin) Tools() []abi.Tool {
	out := make([]abi.Tool, len(p.tools))
	copy(out, p.tools)
	return out
}

// Call runs one tool in a fresh instance and returns its result. A tool that
// fails reports it in the result (IsError); an error means the call itself
// failed: see the sentinel errors. A result with Error set is the guest
// asking for the call to fail with that JSON-RPC error (for instance -32021
// for a missing client capability) instead of returning the result; the
// host has checked that it has a code and a message, and passes it on. A call whose ctx ends before the guest
// returns fails with ctx's error (wrapping context.Canceled, or
// ErrCallTimeout for the call's own deadline), even if the guest saw it
// coming and returned tidily. args nil means {}. env nil answers every input
// request with abi.ErrCodeUnsupported.
func (p *Plugin) Call(ctx context.Context, tool string, args json.RawMessage, env Env) (*abi.CallResult, error) {
	def, ok := p.byName[tool]
	if !ok {
		return nil, fmt.Errorf("plugin %s: %w %q", p.name, ErrUnknownTool, tool)
	}
	args, err := checkArgs(args)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: tool %s: %w", p.name, tool, err)
	}
	var res *abi.CallResult
	err = p.invoke(ctx, env, target{kind: "tool", name: tool, deferTask: def.DeferTask}, func(ctx context.Context, inst *instance) error {
		var err error
		res, err = inst.run(ctx, tool, args)
		return err
	})
	p.caps.scrubResult(res)
	return res, err
}

// Prompts returns the prompts the plugin described. The slice is the
// caller's to keep.
func (p *Plugin) Prompts() []abi.Prompt { return append([]abi.Prompt(nil), p.prompts...) }

// Resources returns the resources (fixed URIs) the plugin described. The
// slice is the caller's to keep.
func (p *Plugin) Resources() []abi.Resource { return append([]abi.Resource(nil), p.resources...) }

// ResourceTemplates returns the resource templates the plugin described.
// The slice is the caller's to keep.
func (p *Plugin) ResourceTemplates() []abi.ResourceTemplate {
	return append([]abi.ResourceTemplate(nil), p.templates...)
}

// GetPrompt renders one prompt in a fresh instance, as [Plugin.Call] runs a
// tool: the same limits, cancellation and errors apply, and the guest may
// ask the client questions through env. args is a JSON object of strings;
// nil means {}. A result with Error set is the guest failing the request
// with that JSON-RPC error (for instance -32602 for a missing argument).
func (p *Plugin) GetPrompt(ctx context.Context, name string, args json.RawMessage, env Env) (*abi.PromptResult, error) {
	if _, ok := p.promptByName[name]; !ok {
		return nil, fmt.Errorf("plugin %s: %w %q", p.name, ErrUnknownPrompt, name)
	}
	args, err := checkArgs(args)
	if err == nil {
		var strs map[string]string
		if json.Unmarshal(args, &strs) != nil {
			err = fmt.Errorf("%w: prompt arguments must be strings", ErrBadArguments)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("plugin %s: prompt %s: %w", p.name, name, err)
	}
	var res *abi.PromptResult
	err = p.invoke(ctx, env, target{kind: "prompt", name: name}, func(ctx context.Context, inst *instance) error {
		var err error
		res, err = inst.getPrompt(ctx, name, args)
		return err
	})
	p.caps.scrubPrompt(res)
	return res, err
}

// ReadResource reads one resource in a fresh instance, as [Plugin.Call]
// runs a tool. uri must be one the plugin listed or match one of its
// templates ([ErrUnknownResource] otherwise). A result with Error set is
// the guest failing the request with that JSON-RPC error (-32602 with data
// {"uri": uri} for a resource it does not have after all).
func (p *Plugin) ReadResource(ctx context.Context, uri string, env Env) (*abi.ResourceResult, error) {
	if !p.hasResource(uri) {
		return nil, fmt.Errorf("plugin %s: %w %q", p.name, ErrUnknownResource, uri)
	}
	if len(uri) > abi.MaxMessageSize {
		return nil, fmt.Errorf("plugin %s: %w: uri of %d bytes", p.name, ErrBadArguments, len(uri))
	}
	var res *abi.ResourceResult
	err := p.invoke(ctx, env, target{kind: "resource", name: uri}, func(ctx context.Context, inst *instance) error {
		var err error
		res, err = inst.readResource(ctx, uri)
		return err
	})
	p.caps.scrubResource(res)
	return res, err
}

// hasResource reports whether uri is one of p's resources or matches one
// of its templates.
func (p *Plugin) hasResource(uri string) bool {
	if p.resourceURIs[uri] {
		return true
	}
	for _, t := range p.templates {
		if _, ok := abi.MatchTemplate(t.URITemplate, uri); ok {
			return true
		}
	}
	return false
}

// target names what a call runs, for errors and logs.
type target struct {
	kind, name string // "tool", "prompt" or "resource"; its name or URI
	deferTask  bool
}

func (t target) String() string { return t.kind + " " + t.name }

// invoke is the code path every call into the guest shares: it holds the
// plugin open, applies the call timeout and the runtime's kill switch,
// checks out a fresh instance, runs do in it with env wired to the
// imports, and turns what went wrong into an error naming plugin and
// target.
func (p *Plugin) invoke(ctx context.Context, env Env, tg target, do func(ctx context.Context, inst *instance) error) (err error) {
	defer recovered(&err, fmt.Sprintf("plugin %s: %s", p.name, tg), p.log.Error)
	if !p.acquire() {
		return fmt.Errorf("plugin %s: %w", p.name, ErrClosed)
	}
	defer p.release()
	if env == nil {
		env = nopEnv{}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.rt.opts.CallTimeout, ErrCallTimeout)
	defer cancel()
	ctx, kill := context.WithCancelCause(ctx)
	defer kill(nil)
	defer context.AfterFunc(p.rt.killed, func() { kill(ErrClosed) })()
	var clock *runClock // none when the wall-clock deadline comes first anyway
	if p.rt.opts.RunBudget < p.rt.opts.CallTimeout {
		clock = startRunClock(p.rt.opts.RunBudget, kill)
		defer clock.stop()
	}

	if err := p.started(ctx); err != nil {
		if ctx.Err() != nil {
			return p.callError(ctx, tg, nil, err)
		}
		return err
	}
	var j *journal
	if rec, ok := env.(Recorder); ok {
		if j, err = newJournal(ctx, rec, p.caps, p.rt.opts.MaxJournalBytes); err != nil {
			return fmt.Errorf("plugin %s: %s: %w", p.name, tg, err)
		}
	}
	st := &callState{ctx: ctx, env: env, log: p.log.With(tg.kind, tg.name), deferTask: tg.deferTask, caps: p.caps, clock: clock, j: j}
	inst, err := p.checkout(ctx)
	if err != nil {
		return p.callError(ctx, tg, nil, err)
	}
	st.out = inst.newBudget(p.log) // a pooled instance's budget is per call
	st.gates = inst.gates
	defer st.out.flush(env)
	inst.sleepCtx.Store(&ctx)
	inst.beginCall(j)
	release := inst.guard(ctx)
	err = clock.run(func() error { return do(withCallState(ctx, st), inst) })
	stopped := release()
	if err == nil && j != nil {
		err = j.finish()
	}
	p.checkin(inst, err == nil && ctx.Err() == nil && !stopped)
	if err == nil && ctx.Err() != nil {
		// The guest saw the cancellation (StatusCancelled, cancelled()) and
		// returned tidily; the caller has gone, so the result is dropped and
		// a cancelled call always ends the same way.
		err = ctx.Err()
	}
	if err != nil {
		return p.callError(ctx, tg, inst, err)
	}
	return nil
}

func checkArgs(args json.RawMessage) ([]byte, error) {
	if len(args) == 0 {
		return []byte("{}"), nil
	}
	if len(args) > abi.MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", ErrBadArguments, len(args), abi.MaxMessageSize)
	}
	if string(bytes.TrimSpace(args)) == "null" {
		return []byte("{}"), nil
	}
	if !isObject(args) || !json.Valid(args) {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadArguments)
	}
	return args, nil
}

// callError turns what went wrong in a call into an error naming plugin and
// target, wrapping the sentinel callers branch on.
func (p *Plugin) callError(ctx context.Context, tg target, inst *instance, err error) error {
	prefix := fmt.Sprintf("plugin %s: %s", p.name, tg)
	var stop *abortError
	if errors.As(err, &stop) && (ctx.Err() == nil || errors.Is(stop.err, ErrEvicted)) {
		return fmt.Errorf("%s: %w", prefix, stop.err)
	}
	if errors.Is(err, ErrBadGuestMessage) || errors.Is(err, ErrMemoryBudget) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	if ctx.Err() != nil && (!isExit || exit.ExitCode() == sys.ExitCodeContextCanceled ||
		exit.ExitCode() == sys.ExitCodeDeadlineExceeded) {
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrClosed) {
			return fmt.Errorf("%s: runtime %w", prefix, ErrClosed)
		}
		if errors.Is(cause, ErrCallTimeout) {
			return fmt.Errorf("%s: %w after %v: %w", prefix, ErrCallTimeout, p.rt.opts.CallTimeout, context.DeadlineExceeded)
		}
		if errors.Is(cause, ErrRunBudget) {
			return fmt.Errorf("%s: %w of %v (time waiting for input not counted): %w", prefix, ErrRunBudget, p.rt.opts.RunBudget, context.DeadlineExceeded)
		}
		if cause != ctx.Err() {
			return fmt.Errorf("%s: %w: %w", prefix, ctx.Err(), cause)
		}
		return fmt.Errorf("%s: %w", prefix, ctx.Err())
	}
	if p.rt.isClosed() {
		return fmt.Errorf("%s: runtime %w", prefix, ErrClosed)
	}
	detail := firstLine(err.Error())
	if isExit {
		detail = fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	if inst != nil {
		if last := inst.stderr.trapLine(); last != "" {
			detail += ": " + last
		}
	}
	p.log.Debug("guest trapped", tg.kind, tg.name, "error", err)
	return fmt.Errorf("%s: %w: %s", prefix, ErrGuestTrapped, detail)
}

// acquire registers a user of the compiled code, unless p is closed.
func (p *Plugin) acquire() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.users++
	return true
}

// release ends a use; the last one after Close frees the compiled code.
func (p *Plugin) release() {
	p.mu.Lock()
	p.users--
	last := p.closed && p.users == 0
	p.mu.Unlock()
	if !last {
		return
	}
	p.drain() // instances a last call put back while Close drained
	if p.snap != nil {
		p.snap.image.close() // mappings made from it stay valid
	}
	if p.compiled != nil { // nil when listed and never started
		p.compiled.Close(context.Background())
	}
	p.rt.mu.Lock()
	delete(p.rt.plugins, p)
	p.rt.mu.Unlock()
	close(p.idle)
}

// Close stops new calls and empties the pool, then waits until the calls in
// flight have finished or ctx is done. Calls still running then go on in
// their own instances, and the plugin's compiled code is freed after the
// last one, so closing a plugin that is being replaced is always safe.
func (p *Plugin) Close(ctx context.Context) error {
	p.retire()
	select {
	case <-p.idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plugin %s: close: calls still in flight: %w", p.name, ctx.Err())
	}
}

// retire is Close without the wait.
func (p *Plugin) retire() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.users++ // held across the drain below, so release runs the cleanup
	p.mu.Unlock()
	p.drain()
	p.release()
}

// startPool turns pooling on, if PoolSize allows and there is a snapshot
// to restore instances to.
func (p *Plugin) startPool() {
	if size := p.rt.opts.PoolSize; size > 0 && p.snap != nil {
		p.pool = make(chan *instance, size)
	}
}

// drain closes the idle instances.
func (p *Plugin) drain() {
	if !p.hasStarted() {
		return // no pool yet, and its start may be making one
	}
	for p.pool != nil {
		select {
		case inst := <-p.pool:
			inst.close()
		default:
			return
		}
	}
}

// poolDeadline bounds making a pooled instance from the snapshot. That
// runs no guest code, so only a broken host or a memory budget refusal
// makes it slow; the call's own deadline still applies on top.
const poolDeadline = 10 * time.Second

// checkout takes an idle instance from the pool, or makes one: from the
// snapshot when pooling is on, else by instantiating and running
// _initialize under the call's ctx.
func (p *Plugin) checkout(ctx context.Context) (*instance, error) {
	if p.pool == nil || p.retired.Load() {
		return p.freshInstance(ctx)
	}
	for {
		select {
		case inst := <-p.pool:
			p.hits.Add(1)
			return inst, nil
		default:
		}
		// An instance being restored is back in about a tenth of a
		// millisecond; making one takes tens of milliseconds.
		next := p.restores.next()
		if next == nil {
			break
		}
		select {
		case inst := <-p.pool:
			p.hits.Add(1)
			return inst, nil
		case <-next:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.misses.Add(1)
	sctx, cancel := context.WithTimeout(ctx, poolDeadline)
	defer cancel()
	inst, err := p.fromSnapshot(sctx, p.snap)
	if errors.Is(err, ErrMemoryBudget) {
		// Idle instances hold memory too: let them go, and try once more.
		p.rt.dropIdle()
		inst, err = p.fromSnapshot(sctx, p.snap)
	}
	if err == nil {
		return inst, nil
	}
	if ctx.Err() != nil || errors.Is(err, ErrMemoryBudget) {
		return nil, err
	}
	p.retirePool(err)
	return p.freshInstance(ctx)
}

// freshInstance starts an instance for a call without the snapshot: it
// runs _initialize and the two pure exports the snapshot was taken after,
// so that it is in the state a restored instance is (startState), and a
// journal recorded in one replays in the other.
func (p *Plugin) freshInstance(ctx context.Context) (*instance, error) {
	inst, err := p.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	if err := inst.callGuarded(ctx, pureExports...); err != nil {
		inst.close()
		return nil, err
	}
	return inst, nil
}

// retirePool gives up pooling for p after making a pooled instance failed
// or timed out: every later call starts its own instance, under its own
// deadline, so a plugin that misbehaves there costs only its own calls.
func (p *Plugin) retirePool(err error) {
	if p.retired.Swap(true) {
		return
	}
	p.log.Warn("cannot make a pooled instance; pooling retired for this plugin, each call starts its own", "error", err)
	p.drain()
}

// checkin ends inst's use by a call. After a clean call it restores the
// snapshot (memory, globals) and keeps inst for the next call; otherwise,
// or when the pool is full or closed, it closes inst. The restore (a copy
// of the guest's whole memory) runs in the background, off the path of
// the call's result; the plugin stays open until it is done.
func (p *Plugin) checkin(inst *instance, clean bool) {
	inst.stdout.flush()
	inst.stderr.flush()
	inst.j = nil
	// An instance with granted directories is never reused: files a call
	// left open stay in its WASI descriptor table, which a snapshot does
	// not cover, and the next call could read them by number.
	if !clean || p.pool == nil || p.retired.Load() || inst.mod.IsClosed() || p.caps.mountsDirs() || !p.acquire() {
		inst.close()
		return
	}
	p.restores.begin()
	go func() {
		defer p.release()
		defer p.restores.end() // after the pool has inst, or never will
		p.putBack(inst)
	}()
}

// putBack restores inst and returns it to the pool, or closes it. It
// yields first: it was started by the goroutine carrying the call's result
// on, which on the same P would otherwise wait behind the copy.
func (p *Plugin) putBack(inst *instance) {
	runtime.Gosched()
	if err := p.snap.restore(inst); err != nil {
		// Memory that grew past the snapshot cannot shrink: start afresh.
		inst.close()
		return
	}
	inst.stderr.resetTrap()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		select {
		case p.pool <- inst:
			if p.retired.Load() { // raced with retirePool
				p.drain()
			}
			return
		default:
		}
	}
	inst.close()
}

// restores counts the instances being restored after their calls, so that
// a checkout finding the pool empty can wait for one.
type restores struct {
	mu   sync.Mutex
	n    int
	done chan struct{} // closed when a restore ends; nil when none runs
}

func (r *restores) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.done == nil {
		r.done = make(chan struct{})
	}
}

func (r *restores) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	close(r.done)
	r.done = nil
	if r.n > 0 {
		r.done = make(chan struct{})
	}
}

// next returns a channel closed when the next restore ends, or nil when
// none is running.
func (r *restores) next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// nopEnv serves calls made without an Env.
type nopEnv struct{}

func (nopEnv) Input(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	out := make([]abi.InputResponse, len(reqs))
	for i := range out {
		out[i].Error = &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "this caller cannot answer input requests"}
	}
	return out, nil
}
func (nopEnv) Log(abi.LogLevel, string) {}
func (nopEnv) Progress(abi.Progress)    {}
