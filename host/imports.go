package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

// callState is what the host functions of one instance need: the call's
// context and Env and the response waiting to be collected. It travels in
// the context passed to the guest export, which wazero hands to every host
// function the guest calls, so nothing per call is global.
type callState struct {
	ctx context.Context
	env Env
	log hclog.Logger
	out *guestOutput // the instance's log and notification budget

	pending    []byte
	hasPending bool

	// deferTask: the tool was described with DeferTask, so detach may
	// reach the Env; detached: it has, and the Env said yes.
	deferTask, detached bool

	// caps is the plugin's grant (capabilities.go); nil while it starts.
	caps *capabilities
	// allowedOnce holds "method host" pairs a person allowed for this call.
	allowedOnce map[string]bool
	// gates are the instance's declared directories a person may still
	// allow, by guest path (capabilities.go).
	gates map[string]*gatedFS

	// asked counts the input requests of the call, against
	// MaxInputRequestsPerCall.
	asked int
	// clock is the call's run-time budget, stopped while Env.Input waits;
	// nil outside calls.
	clock *runClock
	// j is the call's journal when its Env is a Recorder (journal.go).
	j *journal
	// beforeSend, if set, runs once an HTTP request is allowed, just
	// before it is sent: a side effect is journalled as started there.
	beforeSend func()
}

// MaxInputRequestsPerCall caps the questions (elicitations, sampling and
// roots requests) one call may put to the client: a tool in a loop must not
// ask a person 10 000 questions. Past it, requests fail without reaching
// the client.
const MaxInputRequestsPerCall = 100

type callStateKey struct{}

func withCallState(ctx context.Context, st *callState) context.Context {
	return context.WithValue(ctx, callStateKey{}, st)
}

func (r *Runtime) state(ctx context.Context) *callState {
	if st, ok := ctx.Value(callStateKey{}).(*callState); ok {
		return st
	}
	// Only reachable if a guest function is called without going through
	// Plugin; answer as if there were no caller.
	return &callState{ctx: ctx, env: nopEnv{}, log: r.log, out: newGuestOutput(r.log)}
}

// instantiateImports provides the functions in abi.ImportModule.
func (r *Runtime) instantiateImports(ctx context.Context) (api.Module, error) {
	i32 := api.ValueTypeI32
	b := r.wz.NewHostModuleBuilder(abi.ImportModule)
	export := func(name string, fn api.GoModuleFunc, params, results []api.ValueType, names ...string) {
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, params, results).
			WithParameterNames(names...).
			Export(name)
	}
	export(abi.ImportInput, func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).input(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	}, []api.ValueType{i32, i32}, []api.ValueType{i32}, "batch_ptr", "batch_len")
	export(abi.ImportElicit, func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).elicit(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	}, []api.ValueType{i32, i32}, []api.ValueType{i32}, "req_ptr", "req_len")
	export(abi.ImportResponse, func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).response(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	}, []api.ValueType{i32, i32}, []api.ValueType{i32}, "buf_ptr", "buf_len")
	export(abi.ImportLog, func(ctx context.Context, mod api.Module, stack []uint64) {
		r.state(ctx).logLine(mod, api.DecodeI32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	}, []api.ValueType{i32, i32, i32}, nil, "level", "msg_ptr", "msg_len")
	export(abi.ImportProgress, func(ctx context.Context, mod api.Module, stack []uint64) {
		r.state(ctx).progress(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	}, []api.ValueType{i32, i32}, nil, "msg_ptr", "msg_len")
	export(abi.ImportCancelled, func(ctx context.Context, _ api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).cancelled())
	}, nil, []api.ValueType{i32})
	export(abi.ImportDetach, func(ctx context.Context, _ api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).detach())
	}, nil, []api.ValueType{i32})
	export(abi.ImportCapability, func(ctx context.Context, mod api.Module, stack []uint64) {
		stack[0] = api.EncodeI32(r.state(ctx).capability(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	}, []api.ValueType{i32, i32}, []api.ValueType{i32}, "req_ptr", "req_len")
	return b.Instantiate(ctx)
}

// read returns the message at [ptr, ptr+n) in guest memory, or a reason it
// cannot. The slice aliases guest memory.
func read(mod api.Module, ptr, n, limit uint32) ([]byte, error) {
	if n > limit {
		return nil, fmt.Errorf("%d bytes is over the %d byte limit", n, limit)
	}
	mem := guestMemory(mod)
	if mem == nil {
		return nil, errNoMemory
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%#x+%d lies outside guest memory (%d bytes)", ptr, n, mem.Size())
	}
	return b, nil
}

// bad logs why a guest's message was refused and returns the status.
func (st *callState) bad(fn string, err error) int32 {
	st.log.Warn("refused a bad message from the guest", "import", fn, "error", err)
	return int32(abi.StatusBadMessage)
}

func (st *callState) input(mod api.Module, ptr, n uint32) int32 {
	raw, err := read(mod, ptr, n, abi.MaxMessageSize)
	if err != nil {
		return st.bad(abi.ImportInput, err)
	}
	var reqs []abi.InputRequest
	if err := json.Unmarshal(raw, &reqs); err != nil {
		return st.bad(abi.ImportInput, fmt.Errorf("not a JSON array of input requests: %w", err))
	}
	if len(reqs) == 0 || len(reqs) > abi.MaxInputBatch {
		return st.bad(abi.ImportInput, fmt.Errorf("%d requests; a batch holds 1 to %d", len(reqs), abi.MaxInputBatch))
	}
	keys := make(map[string]bool, len(reqs))
	for i, req := range reqs {
		switch req.Method {
		case abi.MethodElicit, abi.MethodSample, abi.MethodListRoots:
		default:
			return st.bad(abi.ImportInput, fmt.Errorf("request %d: unknown method %.64q", i, req.Method))
		}
		if len(req.Params) > 0 && !isObject(req.Params) {
			return st.bad(abi.ImportInput, fmt.Errorf("request %d: params is not a JSON object", i))
		}
		if err := checkRequestedSchema(req.Method, req.Params); err != nil {
			return st.bad(abi.ImportInput, fmt.Errorf("request %d: %w", i, err))
		}
		if req.Key == "" {
			continue
		}
		if err := validKey(req.Key); err != nil {
			return st.bad(abi.ImportInput, fmt.Errorf("request %d: %w", i, err))
		}
		if keys[req.Key] {
			return st.bad(abi.ImportInput, fmt.Errorf("request %d: key %q is used twice in the batch", i, req.Key))
		}
		keys[req.Key] = true
	}
	resps := st.ask(kindInput, reqs)
	if resps == nil {
		return int32(abi.StatusCancelled)
	}
	return st.setPending(resps, false)
}

func (st *callState) elicit(mod api.Module, ptr, n uint32) int32 {
	raw, err := read(mod, ptr, n, abi.MaxMessageSize)
	if err != nil {
		return st.bad(abi.ImportElicit, err)
	}
	if !isObject(raw) || !json.Valid(raw) {
		return st.bad(abi.ImportElicit, errors.New("not a JSON object"))
	}
	if err := checkRequestedSchema(abi.MethodElicit, raw); err != nil {
		return st.bad(abi.ImportElicit, err)
	}
	// Copied: the Env may keep it, and guest memory can move or change.
	reqs := []abi.InputRequest{{Method: abi.MethodElicit, Params: bytes.Clone(raw)}}
	resps := st.ask(kindElicit, reqs)
	if resps == nil {
		return int32(abi.StatusCancelled)
	}
	return st.setPending(resps, true)
}

// ask passes requests to the Env and returns exactly one response per
// request, or nil once the call is cancelled. Requests without a key get
// one (keyRequests), so that a replay asks under the same keys. With a
// journal, the answers come from it while replaying; otherwise what was
// batched is made durable before the Env is asked, and the answers after.
func (st *callState) ask(kind string, reqs []abi.InputRequest) []abi.InputResponse {
	st.pending, st.hasPending = nil, false
	if st.ctx.Err() != nil {
		return nil
	}
	first := st.asked
	if st.asked += len(reqs); st.asked > MaxInputRequestsPerCall {
		if st.asked-len(reqs) <= MaxInputRequestsPerCall {
			st.log.Warn("the guest asked too many questions; refusing the rest of this call's", "limit", MaxInputRequestsPerCall)
		}
		return failed(len(reqs), fmt.Sprintf("this call has asked more than %d questions; the host refuses more", MaxInputRequestsPerCall))
	}
	keys := keyRequests(reqs, first)
	var hash, what string
	if st.j != nil {
		raw, _ := json.Marshal(reqs)
		hash, what = digestOf(st.caps.redactJSON(raw)), st.caps.scrub(strings.Join(keys, ","))
		if e := st.j.match(kind, hash, what); e != nil {
			var resps []abi.InputResponse
			if err := json.Unmarshal(e.Result, &resps); err != nil || len(resps) != len(reqs) {
				abort(tag(ErrReplayDiverged, fmt.Errorf("journal entry of host call %d does not answer its %d requests", st.j.calls, len(reqs))))
			}
			return resps
		}
		st.j.record(nil, nil)
	}
	st.clock.waiting()
	resps, err := st.env.Input(st.ctx, reqs)
	st.clock.resumed()
	if errors.Is(err, ErrEvicted) {
		abort(err) // the guest must not run on: its journal ends here
	}
	if st.ctx.Err() != nil {
		return nil
	}
	if err == nil && len(resps) != len(reqs) {
		err = fmt.Errorf("env answered %d of %d requests", len(resps), len(reqs))
	}
	if err != nil {
		st.log.Warn("input requests failed", "error", err)
		resps, keys = failed(len(reqs), err.Error()), nil
	}
	if st.j != nil {
		b, err := json.Marshal(resps)
		if err != nil {
			abort(fmt.Errorf("journal: %w", err))
		}
		st.j.record([]journalEntry{{Kind: kind, Hash: hash, What: what, Result: b}}, keys)
	}
	return resps
}

// keyRequests gives every request without a key the key
// <kind>-<n>: its method's first word and its number among the call's
// requests (first counts those before the batch), unique in the batch. The
// keys depend only on what the guest asked, so a replay asks the same.
// It returns the batch's keys in order.
func keyRequests(reqs []abi.InputRequest, first int) []string {
	taken := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		taken[r.Key] = true
	}
	keys := make([]string, len(reqs))
	for i := range reqs {
		if reqs[i].Key == "" {
			kind, _, _ := strings.Cut(reqs[i].Method, "/")
			key := fmt.Sprintf("%s-%d", kind, first+i+1)
			for taken[key] {
				key += "_"
			}
			reqs[i].Key, taken[key] = key, true
		}
		keys[i] = reqs[i].Key
	}
	return keys
}

func failed(n int, msg string) []abi.InputResponse {
	out := make([]abi.InputResponse, n)
	for i := range out {
		out[i].Error = &abi.InputError{Code: abi.ErrCodeFailed, Message: msg}
	}
	return out
}

// setPending stores the answer for the guest to collect and returns its
// length. elicit's answer is a single response, input's an array.
func (st *callState) setPending(resps []abi.InputResponse, single bool) int32 {
	encode := func(resps []abi.InputResponse) ([]byte, error) {
		if single {
			return json.Marshal(resps[0])
		}
		return json.Marshal(resps)
	}
	b, err := encode(resps)
	if err == nil && len(b) > abi.MaxMessageSize {
		err = fmt.Errorf("answer of %d bytes is over the %d byte limit", len(b), abi.MaxMessageSize)
	}
	if err != nil {
		st.log.Warn("cannot pass the answer to the guest", "error", err)
		b, _ = encode(failed(len(resps), err.Error()))
	}
	st.pending, st.hasPending = b, true
	return int32(len(b))
}

func (st *callState) response(mod api.Module, ptr, n uint32) int32 {
	if !st.hasPending {
		return int32(abi.StatusNoResponse)
	}
	if n < uint32(len(st.pending)) {
		return int32(abi.StatusBufferTooSmall)
	}
	if _, err := read(mod, ptr, n, ^uint32(0)); err != nil {
		return st.bad(abi.ImportResponse, err)
	}
	guestMemory(mod).Write(ptr, st.pending)
	got := len(st.pending)
	st.pending, st.hasPending = nil, false
	return int32(got)
}

func (st *callState) logLine(mod api.Module, level int32, ptr, n uint32) {
	b, err := read(mod, ptr, min(n, abi.MaxLogSize), abi.MaxLogSize)
	if err != nil {
		st.bad(abi.ImportLog, err)
		return
	}
	lvl := abi.LogLevel(max(int32(abi.LogDebug), min(level, int32(abi.LogError))))
	msg := st.caps.scrub(string(b))
	st.out.logLine(st.log, lvl, msg)
	if st.j.replaying() {
		return // the client saw it in the run that recorded the journal
	}
	st.out.notify(st.env, func() { st.env.Log(lvl, safetext.Line(msg)) })
}

// maxProgressSize caps a progress report: a status line, not a payload
// (300 reports of 4 MB each once took a host to 1.6 GB).
const maxProgressSize = 4 * abi.MaxLogSize

func (st *callState) progress(mod api.Module, ptr, n uint32) {
	raw, err := read(mod, ptr, n, maxProgressSize)
	if err != nil {
		st.bad(abi.ImportProgress, err)
		return
	}
	var p abi.Progress
	if err := json.Unmarshal(raw, &p); err != nil {
		st.bad(abi.ImportProgress, fmt.Errorf("not a progress object: %w", err))
		return
	}
	p.Message = safetext.Cut(st.caps.scrub(p.Message), abi.MaxLogSize)
	if st.j.replaying() {
		return
	}
	st.out.notify(st.env, func() { st.env.Progress(p) })
}

func (st *callState) cancelled() int32 {
	if st.ctx.Err() != nil {
		return 1
	}
	return 0
}

// detach asks the Env to let the call go on as a task; see [Detacher].
func (st *callState) detach() int32 {
	if st.detached {
		return 1
	}
	d, ok := st.env.(Detacher)
	if !st.deferTask || !ok || st.ctx.Err() != nil {
		if !st.deferTask {
			st.log.Debug("detach from a tool not described with deferTask; ignored")
		}
		return 0
	}
	var yes bool
	if e := st.j.matchDetach(); e != nil {
		yes = string(e.Result) == "true"
	} else {
		yes = d.Detach(st.ctx)
		if st.j != nil {
			st.j.record([]journalEntry{{Kind: kindDetach, Result: json.RawMessage(fmt.Sprint(yes))}}, nil)
		}
	}
	if !yes {
		return 0
	}
	st.detached = true
	return 1
}

// checkRequestedSchema bounds an elicitation's requestedSchema as Load
// bounds a tool's input schema: the answer is validated against it on the
// host.
func checkRequestedSchema(method string, params json.RawMessage) error {
	if method != abi.MethodElicit || len(params) == 0 {
		return nil
	}
	var p struct {
		RequestedSchema json.RawMessage `json:"requestedSchema"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.RequestedSchema) == 0 {
		return nil // the front end refuses what does not parse
	}
	if err := schemaComplexity(p.RequestedSchema); err != nil {
		return fmt.Errorf("requestedSchema %w", err)
	}
	return nil
}

// maxKeyLen caps an InputRequest key.
const maxKeyLen = 64

// validKey checks an InputRequest key: 1 to 64 characters of A-Z a-z 0-9
// _ . -, so that it can be used as a JSON object key and in logs unquoted.
func validKey(key string) error {
	if len(key) > maxKeyLen {
		return fmt.Errorf("key %.20q... is longer than %d characters", key, maxKeyLen)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("key %q contains %q; use only A-Z a-z 0-9 _ - .", key, r)
		}
	}
	return nil
}

// isObject reports whether raw starts like a JSON object; json.Unmarshal
// has already checked it parses.
func isObject(raw []byte) bool {
	b := bytes.TrimLeft(raw, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
