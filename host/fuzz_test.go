package host

// Fuzz targets for what the host decodes from a guest: the description,
// call, prompt and resource results, input batches and questions, log
// lines and progress. Every byte a guest writes is hostile; these check
// that no message makes the host panic, that every refusal says what is
// wrong in a bounded, readable message, and that what is accepted is what
// the ABI allows. Seeds are real messages (the SDK's, the example plugins')
// in testdata/fuzz/<Target>; `go test` runs them, scripts/fuzz.sh explores.

import (
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmhost/wasmhost/abi"
)

// maxErrorLen bounds an error about a guest message: it names what is
// wrong, it does not echo the message.
const maxErrorLen = 512

// checkError fails unless err is a clear refusal: non-empty, bounded,
// valid UTF-8 (so it can be logged and sent to a client as is).
func checkError(t *testing.T, what string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || len(msg) > maxErrorLen || !utf8.ValidString(msg) {
		t.Fatalf("%s: refusal %q (%d bytes) is empty, longer than %d bytes, or not UTF-8", what, truncate(msg), len(msg), maxErrorLen)
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// FuzzDescribe: the JSON a guest's wasmhost_describe returns, decoded and
// validated as Load does.
func FuzzDescribe(f *testing.F) {
	f.Add([]byte(`{"abiVersion":2,"tools":[{"name":"greet","description":"Say hello.","inputSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}]}`))
	f.Add([]byte(`{"abiVersion":2,"tools":[{"name":"slow_compute","inputSchema":{"type":"object"},"annotations":{"idempotentHint":true},"taskSupport":"optional","deferTask":true}],"prompts":[{"name":"hello","arguments":[{"name":"name","required":true}]}],"resources":[{"uri":"mem://a","name":"a"}],"resourceTemplates":[{"uriTemplate":"mem://{x}","name":"x"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d abi.Description
		if err := json.Unmarshal(raw, &d); err != nil {
			checkError(t, "decode", err)
			return
		}
		if err := validateDescription(&d); err != nil {
			checkError(t, "validate", err)
			return
		}
		// Accepted: what go-sdk and clients rely on holds.
		names := map[string]bool{}
		for _, tool := range d.Tools {
			if validToolName(tool.Name) != nil || names[tool.Name] || objectSchema(tool.InputSchema) != nil {
				t.Fatalf("accepted a bad tool %q", truncate(tool.Name))
			}
			names[tool.Name] = true
		}
	})
}

// FuzzGuestResult: what a tool call, a prompt or a resource read returns.
func FuzzGuestResult(f *testing.F) {
	f.Add(uint8(0), []byte(`{"content":[{"type":"text","text":"Hello, Ada!"}]}`))
	f.Add(uint8(0), []byte(`{"content":[{"type":"text","text":"no"}],"isError":true}`))
	f.Add(uint8(0), []byte(`{"content":[{"type":"resource","resource":{"uri":"mem://a","text":"x"}}],"structuredContent":{"audience":"users"}}`))
	f.Add(uint8(0), []byte(`{"error":{"code":-32602,"message":"bad arguments"}}`))
	f.Add(uint8(1), []byte(`{"description":"d","messages":[{"role":"user","content":{"type":"text","text":"hi"}}]}`))
	f.Add(uint8(2), []byte(`{"contents":[{"uri":"mem://a","mimeType":"text/plain","text":"x"}]}`))
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		var err error
		switch kind % 3 {
		case 0:
			var res abi.CallResult
			if err = json.Unmarshal(raw, &res); err == nil {
				err = checkResult(&res)
			}
		case 1:
			var res abi.PromptResult
			if err = json.Unmarshal(raw, &res); err == nil {
				err = checkPromptResult(&res)
			}
		default:
			var res abi.ResourceResult
			if err = json.Unmarshal(raw, &res); err == nil {
				err = checkResourceResult(&res)
			}
		}
		if err != nil {
			checkError(t, "result", err)
		}
	})
}

// fuzzMemory is just enough of a wasm module for the host functions: a
// linear memory holding the guest's message.
type fuzzMemory struct {
	api.Module // nil: only Memory is called
	mem        *memory
}

func (m fuzzMemory) Memory() api.Memory { return m.mem }

type memory struct {
	api.Memory // nil: only Size, Read and Write are called
	b          []byte
}

func (m *memory) Size() uint32 { return uint32(len(m.b)) }

func (m *memory) Read(off, n uint32) ([]byte, bool) {
	if uint64(off)+uint64(n) > uint64(len(m.b)) {
		return nil, false
	}
	return m.b[off : off+n], true
}

func (m *memory) Write(off uint32, v []byte) bool {
	if uint64(off)+uint64(len(v)) > uint64(len(m.b)) {
		return false
	}
	copy(m.b[off:], v)
	return true
}

// refusals collects the host's warnings about bad guest messages.
type refusals struct{ errs []string }

func (r *refusals) Write(p []byte) (int, error) {
	var e struct {
		Error *string `json:"error"` // the guest's own warnings have none
	}
	if json.Unmarshal(p, &e) == nil && e.Error != nil {
		r.errs = append(r.errs, *e.Error)
	}
	return len(p), nil
}

// fuzzState is a callState over msg, with an Env that answers every
// question and records what reached it.
func fuzzState(msg []byte) (*callState, fuzzMemory, *testEnv, *refusals) {
	env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		out := make([]abi.InputResponse, len(reqs))
		for i := range out {
			out[i].Result = json.RawMessage(`{"action":"accept","content":{"confirm":true}}`)
		}
		return out, nil
	}}
	ref := &refusals{}
	log := hclog.New(&hclog.LoggerOptions{Output: ref, JSONFormat: true, Level: hclog.Warn})
	st := &callState{ctx: context.Background(), env: env, log: log, out: newGuestOutput(log)}
	mem := &memory{b: append([]byte(nil), msg...)}
	return st, fuzzMemory{mem: mem}, env, ref
}

func checkRefusals(t *testing.T, ref *refusals, want bool) {
	t.Helper()
	if want && len(ref.errs) == 0 {
		t.Fatal("a bad message was refused without a word")
	}
	for _, e := range ref.errs {
		if e == "" || len(e) > maxErrorLen || !utf8.ValidString(e) {
			t.Fatalf("refusal %q (%d bytes) is empty, longer than %d bytes, or not UTF-8", truncate(e), len(e), maxErrorLen)
		}
	}
}

// FuzzInputBatch: a batch of questions (the input import, ABI v2) and a
// single elicitation (the elicit import).
func FuzzInputBatch(f *testing.F) {
	f.Add(false, uint8(0), []byte(`[{"key":"confirm","method":"elicitation/create","params":{"message":"Delete notes.txt?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean"}},"required":["confirm"]}}}]`))
	f.Add(false, uint8(0), []byte(`[{"key":"a","method":"elicitation/create","params":{"message":"First?"}},{"key":"b","method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}},{"method":"roots/list"}]`))
	f.Add(true, uint8(0), []byte(`{"message":"Who reads these notes?","requestedSchema":{"type":"object","properties":{"audience":{"type":"string","enum":["users","developers"]}}}}`))
	f.Add(false, uint8(3), []byte(`[]`))
	f.Fuzz(func(t *testing.T, single bool, extra uint8, msg []byte) {
		st, mod, env, ref := fuzzState(msg)
		var asked [][]abi.InputRequest
		answer := env.input
		env.input = func(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
			asked = append(asked, reqs)
			return answer(ctx, reqs)
		}
		n := uint32(len(msg)) + uint32(extra%4) // sometimes past the end of memory
		var status int32
		if single {
			status = st.elicit(mod, 0, n)
		} else {
			status = st.input(mod, 0, n)
		}
		if status < 0 {
			if status != int32(abi.StatusBadMessage) || len(asked) != 0 {
				t.Fatalf("status %d with %d batches asked, want StatusBadMessage and none", status, len(asked))
			}
			checkRefusals(t, ref, true)
			return
		}
		checkRefusals(t, ref, false)
		if len(asked) != 1 || int(status) != len(st.pending) {
			t.Fatalf("accepted: %d batches asked, answer of %d bytes for status %d", len(asked), len(st.pending), status)
		}
		reqs := asked[0]
		if len(reqs) == 0 || len(reqs) > abi.MaxInputBatch {
			t.Fatalf("accepted a batch of %d", len(reqs))
		}
		keys := map[string]bool{}
		for _, r := range reqs {
			switch r.Method {
			case abi.MethodElicit, abi.MethodSample, abi.MethodListRoots:
			default:
				t.Fatalf("accepted method %q", truncate(r.Method))
			}
			if len(r.Params) > 0 && (!isObject(r.Params) || !json.Valid(r.Params)) {
				t.Fatalf("accepted params %q", truncate(string(r.Params)))
			}
			if r.Key != "" && (validKey(r.Key) != nil || keys[r.Key]) {
				t.Fatalf("accepted key %q", truncate(r.Key))
			}
			keys[r.Key] = true
		}
	})
}

// FuzzLogProgress: a log line at any level and a progress report.
func FuzzLogProgress(f *testing.F) {
	f.Add(int32(abi.LogInfo), uint8(0), []byte("got the name"))
	f.Add(int32(abi.LogWarning), uint8(0), []byte("careful"))
	f.Add(int32(-7), uint8(1), []byte(`{"progress":1,"total":2,"message":"half"}`))
	f.Add(int32(99), uint8(1), []byte(`{"progress":3,"message":"3 of 5s"}`))
	f.Fuzz(func(t *testing.T, level int32, kind uint8, msg []byte) {
		st, mod, env, ref := fuzzState(msg)
		if kind%2 == 0 {
			st.logLine(mod, level, 0, uint32(len(msg)))
			if len(env.logs) > 1 || len(env.logs) == 1 && len(env.logs[0]) > abi.MaxLogSize {
				t.Fatalf("%d lines reached the Env, the first of %d bytes", len(env.logs), len(env.logs[0]))
			}
			checkRefusals(t, ref, false)
			return
		}
		st.progress(mod, 0, uint32(len(msg)))
		if len(env.progress) == 0 {
			checkRefusals(t, ref, true)
			return
		}
		if len(env.progress) != 1 || !json.Valid(msg) {
			t.Fatalf("progress %+v accepted from %q", env.progress, truncate(string(msg)))
		}
	})
}
