package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
	"github.com/wasmhost/wasmhost/internal/wasmcheck"
)

// instance is one module instance, used for at most one call and closed.
type instance struct {
	mod   api.Module
	alloc api.Function
	call  api.Function
	// interrupt, once set, stops the guest at its next visit to the host,
	// within a few thousand loop iterations (see wasmcheck.AddInterrupt and
	// guard).
	interrupt api.MutableGlobal
	// getPrompt and readResource are nil when the guest does not export
	// them (Load refuses that when it describes prompts or resources).
	promptFn, resourceFn api.Function

	// sleepCtx is the context whose end wakes the guest from WASI
	// poll_oneoff. wazero's Nanosleep hook has no context parameter and
	// the instance is created before its call exists, so the call swaps its
	// own context in at checkout.
	sleepCtx atomic.Pointer[context.Context]

	stdout, stderr *guestWriter
	// out budgets what the instance logs and notifies during one call.
	out *guestOutput
	// gates are its mounted directories that nobody has granted yet.
	gates map[string]*gatedFS

	// globals are the guest's mutable globals, exported by Load's rewrite
	// (exportGlobals), for restoring a snapshot; filled on first restore.
	globals []api.MutableGlobal

	// The guest's monotonic clock reads clockBase plus the time since
	// clockStart. A restored instance resumes the clock where the snapshot
	// stopped it, so its runtime does not see time jump and fire every
	// timer it had set (Go's GC and scavenger pacing) on every call.
	clockBase  int64
	clockStart time.Time

	// lm is the instance's linear memory when the host allocates it
	// (memory.go); unmapped by close.
	lm *mmapMemory

	// start is the deterministic clock and random stream the guest sees
	// until its call begins (_initialize, the handshake); nil after. j is
	// the journal of the call running, if it keeps one. WASI's clocks,
	// random_get and sleeps go through them (wazero's hooks take no
	// context, so the instance holds what its call needs).
	start *startState
	j     *journal
}

// startState is what a guest sees of time and randomness before its first
// call: a virtual clock that advances by a fixed step per reading (and by
// the duration of a sleep, without sleeping), and a random stream seeded
// from the module's digest. The snapshot therefore depends only on the
// module and its grants: every process builds the same, and an instance
// started fresh is in the state a restored one is, which replay needs.
type startState struct {
	now int64 // virtual monotonic clock, ns
	rng *mathrand.ChaCha8
}

// Virtual clock: where it starts, how far each reading advances it, and
// the wall time it reads as (2000-01-01T00:00:00Z plus the monotonic
// clock).
const (
	startMono  = int64(time.Second)
	startTick  = int64(time.Microsecond)
	startEpoch = int64(946684800) * int64(time.Second)
)

func newStartState(seed [32]byte) *startState {
	return &startState{now: startMono, rng: mathrand.NewChaCha8(seed)}
}

func (s *startState) tick() int64 {
	s.now += startTick
	return s.now
}

// nanotime is the guest's monotonic clock (WASI clock_time_get).
func (inst *instance) nanotime() int64 {
	switch {
	case inst.start != nil:
		return inst.start.tick()
	case inst.j != nil:
		return inst.j.mono()
	}
	return inst.clockBase + int64(time.Since(inst.clockStart))
}

// monoNow reads the monotonic clock without advancing the virtual one.
func (inst *instance) monoNow() int64 {
	if inst.start != nil {
		return inst.start.now
	}
	return inst.nanotime()
}

// walltime is the guest's wall clock (WASI clock_time_get).
func (inst *instance) walltime() (int64, int32) {
	var ns int64
	switch {
	case inst.start != nil:
		ns = startEpoch + inst.start.tick()
	case inst.j != nil:
		ns = inst.j.wall()
	default:
		ns = time.Now().UnixNano()
	}
	return ns / int64(time.Second), int32(ns % int64(time.Second))
}

// randomSource is WASI random_get's source for one instance.
type randomSource struct{ inst *instance }

func (r randomSource) Read(b []byte) (int, error) {
	switch inst := r.inst; {
	case inst.start != nil:
		_, _ = inst.start.rng.Read(b)
	case inst.j != nil:
		inst.j.random(b)
	default:
		_, _ = rand.Read(b) // never fails (crypto/rand)
	}
	return len(b), nil
}

// beginCall switches inst from its start state to its call's clocks, with
// j the call's journal (nil if none). A fresh instance's clock goes on from
// where its start left it, a restored one's from the snapshot's.
func (inst *instance) beginCall(j *journal) {
	if inst.start != nil {
		inst.clockBase, inst.start = inst.start.now, nil
	}
	inst.clockStart = time.Now()
	inst.j = j
	if j != nil {
		j.startClock(inst.clockBase)
	}
}

// newBudget gives inst a fresh log and notification budget for the call
// about to start on it, and returns it.
func (inst *instance) newBudget(log hclog.Logger) *guestOutput {
	out := newGuestOutput(log)
	inst.out, inst.stdout.out, inst.stderr.out = out, out, out
	return out
}

// instantiate starts a fresh instance and runs the guest's _initialize.
// Host functions called during _initialize see a call state with no Env.
func (p *Plugin) instantiate(ctx context.Context) (*instance, error) {
	return p.newInstance(ctx, true)
}

// newInstance starts an instance, running _initialize if initialize is
// set; otherwise its state is meaningless until a snapshot is restored.
func (p *Plugin) newInstance(ctx context.Context, initialize bool) (*instance, error) {
	out := newGuestOutput(p.log)
	inst := &instance{
		stdout: &guestWriter{out: out, stream: "stdout", caps: p.caps},
		stderr: &guestWriter{out: out, stream: "stderr", caps: p.caps},
		out:    out,
	}
	inst.sleepCtx.Store(&ctx)
	inst.clockStart = time.Now()
	inst.start = newStartState(p.seed)
	cfg := wazero.NewModuleConfig().
		// Anonymous: instances of one plugin must not collide by name.
		WithName("").
		WithArgs(p.name).
		WithStdout(inst.stdout).
		WithStderr(inst.stderr).
		WithWalltime(inst.walltime, sys.ClockResolution(1)).
		WithNanotime(inst.nanotime, sys.ClockResolution(1)).
		WithNanosleep(inst.nanosleep).
		WithOsyield(runtime.Gosched).
		WithRandSource(randomSource{inst})
	if fs, gates := p.caps.fsConfig(); fs != nil {
		cfg = cfg.WithFSConfig(fs) // granted directories, and gates for those a person may grant
		inst.gates = gates
	}
	// _initialize is called below, once the instance can be stopped.
	cfg = cfg.WithStartFunctions()
	st := &callState{ctx: ctx, env: nopEnv{}, log: p.log, out: out}
	var need int64
	if p.snap != nil {
		need = int64(p.snap.size)
	}
	if err := p.rt.budget.check(need); err != nil {
		return nil, err
	}
	ictx := withCallState(ctx, st)
	var image *memImage
	if !initialize && p.snap != nil {
		image = p.snap.image
	}
	if a := p.rt.budget.allocator(&inst.lm, image); a != nil {
		ictx = experimental.WithMemoryAllocator(ictx, a)
	}
	mod, err := p.rt.wz.InstantiateModule(ictx, p.compiled, cfg)
	if err == nil {
		inst.mod = mod
		if g, ok := mod.ExportedGlobal(wasmcheck.InterruptExport).(api.MutableGlobal); ok {
			inst.interrupt = g
		} else {
			err = fmt.Errorf("%w: no %s global to stop it with", ErrBadGuestMessage, wasmcheck.InterruptExport)
		}
	}
	if err == nil && initialize {
		err = inst.callGuarded(ictx, "_initialize")
	}
	if err != nil {
		if mod != nil {
			mod.Close(context.Background())
		}
		if inst.lm != nil {
			inst.lm.unmap()
		}
		if detail := inst.stderr.trapLine(); detail != "" {
			err = fmt.Errorf("%w: %s", err, detail)
		}
		inst.stdout.flush()
		inst.stderr.flush()
		return nil, err
	}
	inst.alloc = mod.ExportedFunction(abi.ExportAlloc)
	inst.call = mod.ExportedFunction(abi.ExportCall)
	inst.promptFn = mod.ExportedFunction(abi.ExportGetPrompt)
	inst.resourceFn = mod.ExportedFunction(abi.ExportReadResource)
	return inst, nil
}

// callGuarded calls the guest's exports of no arguments named, in order,
// stopping the guest if ctx ends first: _initialize, or the two pure
// exports (the ABI version and the description) that the handshake calls
// before its snapshot.
func (inst *instance) callGuarded(ctx context.Context, names ...string) error {
	defer inst.guard(ctx)()
	for _, name := range names {
		if _, err := inst.mod.ExportedFunction(name).Call(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pureExports are called, in this order, before a snapshot is taken.
var pureExports = []string{abi.ExportABIVersion, abi.ExportDescribe}

// guard stops the guest (at its next visit, see interrupt) once ctx is
// done, until release is called. release reports whether it did: the guest's
// state is then unknown, and the instance must not be used again.
func (inst *instance) guard(ctx context.Context) (release func() (stopped bool)) {
	stop := context.AfterFunc(ctx, func() { inst.interrupt.Set(1) })
	return func() bool { return !stop() }
}

// nanosleep implements WASI poll_oneoff's sleep, ending early when the
// current call's context is done so that a sleeping guest notices
// cancellation (guard then stops it).
func (inst *instance) nanosleep(ns int64) {
	if inst.start != nil {
		inst.start.now += ns
		return
	}
	if inst.j.replaying() {
		return // the clock readings after it are replayed too
	}
	done := (*inst.sleepCtx.Load()).Done()
	select {
	case <-done:
		return
	default:
	}
	t := time.NewTimer(time.Duration(ns))
	select {
	case <-t.C:
	case <-done:
		t.Stop()
	}
}

func (inst *instance) close() {
	// The module may already be closed by a cancelled call; that is fine.
	inst.mod.Close(context.Background())
	if inst.lm != nil {
		inst.lm.unmap()
	}
	inst.stdout.flush()
	inst.stderr.flush()
	inst.out.flush(nil)
}

// run passes the tool name and arguments into guest memory, calls the
// guest and reads back its result.
func (inst *instance) run(ctx context.Context, tool string, args []byte) (*abi.CallResult, error) {
	raw, err := inst.exec(ctx, inst.call, tool, string(args))
	if err != nil {
		return nil, err
	}
	var res abi.CallResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%w: result is not a CallResult: %v", ErrBadGuestMessage, err)
	}
	if err := checkResult(&res); err != nil {
		return nil, fmt.Errorf("%w: result %w", ErrBadGuestMessage, err)
	}
	if res.Content == nil {
		res.Content = []abi.Content{} // MCP requires the array
	}
	return &res, nil
}

// getPrompt renders one prompt: wasmhost_get_prompt.
func (inst *instance) getPrompt(ctx context.Context, name string, args []byte) (*abi.PromptResult, error) {
	if inst.promptFn == nil {
		return nil, fmt.Errorf("%w: the guest does not export %s", ErrBadGuestMessage, abi.ExportGetPrompt)
	}
	raw, err := inst.exec(ctx, inst.promptFn, name, string(args))
	if err != nil {
		return nil, err
	}
	var res abi.PromptResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%w: result is not a PromptResult: %v", ErrBadGuestMessage, err)
	}
	if err := checkPromptResult(&res); err != nil {
		return nil, fmt.Errorf("%w: prompt result %w", ErrBadGuestMessage, err)
	}
	if res.Messages == nil {
		res.Messages = []abi.PromptMessage{}
	}
	return &res, nil
}

// readResource reads one resource: wasmhost_read_resource.
func (inst *instance) readResource(ctx context.Context, uri string) (*abi.ResourceResult, error) {
	if inst.resourceFn == nil {
		return nil, fmt.Errorf("%w: the guest does not export %s", ErrBadGuestMessage, abi.ExportReadResource)
	}
	raw, err := inst.exec(ctx, inst.resourceFn, uri)
	if err != nil {
		return nil, err
	}
	var res abi.ResourceResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%w: result is not a ResourceResult: %v", ErrBadGuestMessage, err)
	}
	if err := checkResourceResult(&res); err != nil {
		return nil, fmt.Errorf("%w: resource result %w", ErrBadGuestMessage, err)
	}
	if res.Contents == nil {
		res.Contents = []abi.EmbeddedResource{}
	}
	return &res, nil
}

// exec writes each message into guest memory, calls fn with their (ptr,
// len) pairs and returns the packed message it answers with. The slice
// aliases guest memory: use it before the next guest call.
func (inst *instance) exec(ctx context.Context, fn api.Function, msgs ...string) ([]byte, error) {
	stack := make([]uint64, 2*len(msgs))
	for i, m := range msgs {
		ptr, err := inst.write(ctx, m)
		if err != nil {
			return nil, err
		}
		stack[2*i], stack[2*i+1] = uint64(ptr), uint64(len(m))
	}
	if err := fn.CallWithStack(ctx, stack); err != nil {
		return nil, err
	}
	return inst.readResult(stack[0])
}

// checkPromptResult is checkResult for a prompt: roles MCP knows and
// well-formed content.
func checkPromptResult(res *abi.PromptResult) error {
	for i, m := range res.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("messages[%d] has role %.64q, not user or assistant", i, m.Role)
		}
		if err := checkContent(m.Content); err != nil {
			return fmt.Errorf("messages[%d].content %w", i, err)
		}
	}
	if err := checkCallError(res.Error); err != nil {
		return err
	}
	return checkEncodedSize(res)
}

// checkResourceResult is checkResult for a resource read: every content
// has its URI.
func checkResourceResult(res *abi.ResourceResult) error {
	for i, c := range res.Contents {
		if c.URI == "" {
			return fmt.Errorf("contents[%d] has no uri", i)
		}
		if err := checkEmbedded(c); err != nil {
			return fmt.Errorf("contents[%d] %w", i, err)
		}
	}
	if err := checkCallError(res.Error); err != nil {
		return err
	}
	return checkEncodedSize(res)
}

// checkResult checks what clients would choke on and a JSON parse cannot
// see: untyped content, a resource block without its resource, a protocol
// error without a code or a message.
func checkResult(res *abi.CallResult) error {
	for i, c := range res.Content {
		if err := checkContent(c); err != nil {
			return fmt.Errorf("content[%d] %w", i, err)
		}
	}
	if err := checkCallError(res.Error); err != nil {
		return err
	}
	return checkEncodedSize(res)
}

func checkContent(c abi.Content) error { return checkBlock(c) }

func checkCallError(e *abi.CallError) error { return checkGuestError(e) }

// write copies s into a buffer the guest allocates for it.
func (inst *instance) write(ctx context.Context, s string) (uint32, error) {
	stack := [1]uint64{uint64(len(s))}
	if err := inst.alloc.CallWithStack(ctx, stack[:]); err != nil {
		return 0, err
	}
	ptr := api.DecodeU32(stack[0])
	mem := guestMemory(inst.mod)
	if mem == nil {
		return 0, fmt.Errorf("%w: %w", ErrBadGuestMessage, errNoMemory)
	}
	if !mem.WriteString(ptr, s) {
		return 0, fmt.Errorf("%w: %s(%d) returned %#x, outside guest memory (%d bytes)",
			ErrBadGuestMessage, abi.ExportAlloc, len(s), ptr, mem.Size())
	}
	return ptr, nil
}

// readResult reads the message a packed (ptr, len) result points at. The
// slice aliases guest memory: use it before the next guest call.
func (inst *instance) readResult(packed uint64) ([]byte, error) {
	ptr, n := abi.Unpack(packed)
	if n > abi.MaxMessageSize {
		return nil, fmt.Errorf("%w: result of %d bytes is over the %d byte limit", ErrBadGuestMessage, n, abi.MaxMessageSize)
	}
	mem := guestMemory(inst.mod)
	if mem == nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGuestMessage, errNoMemory)
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: result at %#x+%d lies outside guest memory (%d bytes)",
			ErrBadGuestMessage, ptr, n, mem.Size())
	}
	return b, nil
}

// guestWriter turns a guest's stdout or stderr into log lines: os.Stdout
// belongs to the MCP transport and must never see guest output. Lines are
// escaped and budgeted (see guestOutput); the output behind the Logger must
// not block (cmd/wasmhost puts stderr behind internal/logsink), since a
// guest writing cannot be interrupted.
type guestWriter struct {
	out    *guestOutput
	stream string
	caps   *capabilities // scrubs the plugin's secrets

	mu   sync.Mutex
	buf  []byte
	trap string // the last line that looked like a Go panic or fatal error
}

func (w *guestWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b...)
			// A line without end must not grow without end: split it.
			for len(w.buf) >= abi.MaxLogSize {
				rest := w.buf[abi.MaxLogSize:]
				w.buf = w.buf[:abi.MaxLogSize]
				w.emit()
				w.buf = append(w.buf, rest...)
			}
			break
		}
		w.buf = append(w.buf, b[:i]...)
		w.emit()
		b = b[i+1:]
	}
	return n, nil
}

func (w *guestWriter) emit() {
	line := w.caps.scrub(string(w.buf)) // a trap line becomes an error message
	w.buf = w.buf[:0]
	if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		// Quoted in the call's error later: the guest's words, made inert.
		w.trap = safetext.Cut(line, trapLineMaxSize)
	}
	w.out.logLine(w.out.log, abi.LogInfo, line, "stream", w.stream)
}

func (w *guestWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit()
	}
}

// resetTrap forgets the trap line, for an instance restored for reuse.
func (w *guestWriter) resetTrap() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trap = ""
}

func (w *guestWriter) trapLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.trap
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
