package guest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/abi"
)

// Bridge runs the registered tools in-process, standing in for wasmhost, so
// that a plugin's tools can be tested with go test on the build machine. A
// plugin never uses it in production (the linker then leaves it out): there
// the host is wasmhost itself, reached through the wasm imports.
//
// Every message crosses the Bridge as JSON, as it would cross the wasm
// boundary. The zero Bridge answers every question with
// [abi.ErrCodeUnsupported] and drops logs and progress. A Bridge runs one
// call at a time, as a guest instance does.
type Bridge struct {
	// Answer answers one batch of questions: one per Elicit, Sample or
	// Roots, or all those given to one Call.AskAll. It returns one response
	// per request, in order, or a negative status such as
	// [abi.StatusCancelled].
	Answer func(batch []abi.InputRequest) ([]abi.InputResponse, abi.Status)
	// Log receives log lines.
	Log func(level LogLevel, msg string)
	// Progress receives progress reports.
	Progress func(abi.Progress)
	// Cancelled reports whether the call has been cancelled.
	Cancelled func() bool
	// Detach answers [Call.Detach] for a tool registered with DeferTask:
	// whether the caller turned the call into a task. nil answers false.
	Detach func() bool
	// Capability answers capability requests (HTTP, config, secrets,
	// directories). nil refuses every one as not granted.
	Capability func(abi.CapabilityRequest) abi.CapabilityResult
}

// ErrTrap is returned (wrapped) by [Bridge.Call] when the handler panicked:
// in wasm the guest would trap and the call fail at the protocol level.
var ErrTrap = errors.New("the guest trapped")

// Describe returns what the plugin's wasmhost_describe would.
func (b *Bridge) Describe() (abi.Description, error) {
	msg, err := describeJSON()
	if err != nil {
		return abi.Description{}, err
	}
	var out abi.Description
	if err := json.Unmarshal(msg, &out); err != nil {
		return abi.Description{}, fmt.Errorf("guest: reading the description back: %w", err)
	}
	return out, nil
}

// Call runs the tool called name with the JSON arguments args and returns
// its result as wasmhost would receive it. The error is non-nil only where
// wasmhost would fail the call at the protocol level: no such tool, or a
// panic ([ErrTrap]).
func (b *Bridge) Call(name string, args string) (res abi.CallResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("guest: tool %q: %w: panic: %v", name, ErrTrap, r)
		}
	}()
	msg, err := dispatch(b, name, []byte(args))
	if err != nil {
		return abi.CallResult{}, err
	}
	if err := json.Unmarshal(msg, &res); err != nil {
		return abi.CallResult{}, fmt.Errorf("guest: tool %q: reading the result back: %w", name, err)
	}
	return res, nil
}

// GetPrompt renders the prompt called name with the JSON arguments args (an
// object of strings; "" means none) and returns the result as wasmhost
// would receive it: a request that fails at the protocol level has Error
// set. The error is non-nil only for a panic ([ErrTrap]).
func (b *Bridge) GetPrompt(name, args string) (res abi.PromptResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("guest: prompt %q: %w: panic: %v", name, ErrTrap, r)
		}
	}()
	if err := json.Unmarshal(dispatchPrompt(b, name, []byte(args)), &res); err != nil {
		return abi.PromptResult{}, fmt.Errorf("guest: prompt %q: reading the result back: %w", name, err)
	}
	return res, nil
}

// ReadResource reads the resource at uri and returns the result as
// wasmhost would receive it: an unknown URI has Error set (-32602 with data
// {"uri": uri}). The error is non-nil only for a panic ([ErrTrap]).
func (b *Bridge) ReadResource(uri string) (res abi.ResourceResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("guest: resource %q: %w: panic: %v", uri, ErrTrap, r)
		}
	}()
	if err := json.Unmarshal(dispatchResource(b, uri), &res); err != nil {
		return abi.ResourceResult{}, fmt.Errorf("guest: resource %q: reading the result back: %w", uri, err)
	}
	return res, nil
}

func (b *Bridge) input(batch []byte) ([]byte, abi.Status) {
	var reqs []abi.InputRequest
	if err := json.Unmarshal(batch, &reqs); err != nil || len(reqs) > abi.MaxInputBatch {
		return nil, abi.StatusBadMessage
	}
	return b.answer(reqs)
}

func (b *Bridge) elicit(params []byte) ([]byte, abi.Status) {
	if !json.Valid(params) {
		return nil, abi.StatusBadMessage
	}
	raw, status := b.answer([]abi.InputRequest{{Method: abi.MethodElicit, Params: params}})
	if status < 0 {
		return nil, status
	}
	var answers []json.RawMessage
	if err := json.Unmarshal(raw, &answers); err != nil {
		return nil, abi.StatusBadMessage
	}
	return answers[0], 0
}

func (b *Bridge) answer(reqs []abi.InputRequest) ([]byte, abi.Status) {
	answers := make([]abi.InputResponse, len(reqs))
	if b.Answer == nil {
		for i := range answers {
			answers[i].Error = &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "the test bridge answers nothing"}
		}
	} else {
		var status abi.Status
		if answers, status = b.Answer(reqs); status < 0 {
			return nil, status
		}
		if len(answers) != len(reqs) {
			panic(fmt.Sprintf("guest: Bridge.Answer returned %d responses for %d requests", len(answers), len(reqs)))
		}
	}
	msg, err := json.Marshal(answers)
	if err != nil {
		panic(fmt.Sprintf("guest: Bridge.Answer: %v", err))
	}
	return msg, 0
}

func (b *Bridge) log(level abi.LogLevel, msg string) {
	if b.Log != nil {
		b.Log(level, msg)
	}
}

func (b *Bridge) progress(msg []byte) {
	var p abi.Progress
	if err := json.Unmarshal(msg, &p); err == nil && b.Progress != nil {
		b.Progress(p)
	}
}

func (b *Bridge) cancelled() bool { return b.Cancelled != nil && b.Cancelled() }

func (b *Bridge) detach() bool { return b.Detach != nil && b.Detach() }

func (b *Bridge) capability(msg []byte) ([]byte, abi.Status) {
	var req abi.CapabilityRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return nil, abi.StatusBadMessage
	}
	res := abi.CapabilityResult{Error: &abi.CapabilityError{Code: abi.CapNotGranted, Message: "the test bridge grants nothing"}}
	if b.Capability != nil {
		res = b.Capability(req)
	}
	out, err := json.Marshal(res)
	if err != nil {
		panic(fmt.Sprintf("guest: Bridge.Capability: %v", err))
	}
	return out, 0
}
