//go:build !wasip1

package guest_test

// These tests build the example plugins to real .wasm reactors and drive
// them through ABI v1 with a minimal wazero host, checking the SDK's side of
// the contract exactly as wasmhost sees it. They need the go command and
// take a few seconds per plugin on a cold build cache; -short skips them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest/fielddocs"
)

var builds struct {
	sync.Mutex
	dir  string
	wasm map[string][]byte
}

// buildPlugin builds plugins/<name> as wasmhost's builder does: a wasip1
// c-shared reactor with the generated field-docs file overlaid.
func buildPlugin(t *testing.T, name string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds wasm plugins")
	}
	builds.Lock()
	defer builds.Unlock()
	if wasm, ok := builds.wasm[name]; ok {
		return wasm
	}
	if builds.wasm == nil {
		dir, err := os.MkdirTemp("", "guest-wasm-test")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.wasm = dir, map[string][]byte{}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	pluginDir := filepath.Join(root, "plugins", name)
	docsName, docsSrc, err := fielddocs.Generate(pluginDir)
	if err != nil {
		t.Fatal(err)
	}
	docsFile := filepath.Join(builds.dir, name+"-"+docsName)
	overlay := filepath.Join(builds.dir, name+"-overlay.json")
	out := filepath.Join(builds.dir, name+".wasm")
	overlayJSON, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pluginDir, docsName): docsFile}})
	if err := os.WriteFile(docsFile, docsSrc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlay, overlayJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-overlay", overlay, "-o", out, ".")
	cmd.Dir = pluginDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building plugins/%s: %v\n%s", name, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	builds.wasm[name] = wasm
	return wasm
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// compilationCache spares each test compiling the same plugins again.
var compilationCache = wazero.NewCompilationCache()

// fakeHost is the per-call state of the test host: how to answer input
// requests, and what the guest sent.
type fakeHost struct {
	// answer answers one request; the import it came through ("input" or
	// "elicit") is in via.
	answer    func(via string, req abi.InputRequest) abi.InputResponse
	status    abi.Status // if negative, input and elicit fail with it
	cancelled bool

	pending  []byte
	batches  [][]abi.InputRequest
	vias     []string
	logs     []string
	progress []abi.Progress
}

type fakeHostKey struct{}

func fakeHostOf(ctx context.Context) *fakeHost { return ctx.Value(fakeHostKey{}).(*fakeHost) }

// read copies n bytes at ptr out of guest memory, or returns nil if they
// are not all inside it.
func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		return nil
	}
	return bytes.Clone(b)
}

func (h *fakeHost) ask(via string, m api.Module, ptr, n uint32) int32 {
	msg := read(m, ptr, n)
	if msg == nil {
		return int32(abi.StatusBadMessage)
	}
	var batch []abi.InputRequest
	if via == abi.ImportElicit {
		batch = []abi.InputRequest{{Method: abi.MethodElicit, Params: msg}}
	} else if err := json.Unmarshal(msg, &batch); err != nil {
		return int32(abi.StatusBadMessage)
	}
	h.batches = append(h.batches, batch)
	h.vias = append(h.vias, via)
	if h.status < 0 {
		return int32(h.status)
	}
	answers := make([]abi.InputResponse, len(batch))
	for i, req := range batch {
		answers[i] = h.answer(via, req)
	}
	if via == abi.ImportElicit {
		h.pending, _ = json.Marshal(answers[0])
	} else {
		h.pending, _ = json.Marshal(answers)
	}
	return int32(len(h.pending))
}

// newRuntime returns a runtime with WASI and a "wasmhost" module whose
// functions find their fakeHost in the call's context. It interprets rather
// than compiles: these tests run little guest code, and compiling a 4 MB Go
// module costs seconds (half a minute under -race) per plugin.
func newRuntime(t *testing.T) wazero.Runtime {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCompilationCache(compilationCache))
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		return fakeHostOf(ctx).ask(abi.ImportInput, m, ptr, n)
	}).Export(abi.ImportInput).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		return fakeHostOf(ctx).ask(abi.ImportElicit, m, ptr, n)
	}).Export(abi.ImportElicit).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		h := fakeHostOf(ctx)
		switch {
		case h.pending == nil:
			return int32(abi.StatusNoResponse)
		case int(n) < len(h.pending):
			return int32(abi.StatusBufferTooSmall)
		case !m.Memory().Write(ptr, h.pending):
			return int32(abi.StatusBadMessage)
		}
		got := len(h.pending)
		h.pending = nil
		return int32(got)
	}).Export(abi.ImportResponse).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, level int32, ptr, n uint32) {
		h := fakeHostOf(ctx)
		h.logs = append(h.logs, fmt.Sprintf("%d %s", level, read(m, ptr, n)))
	}).Export(abi.ImportLog).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		h := fakeHostOf(ctx)
		var p abi.Progress
		if err := json.Unmarshal(read(m, ptr, n), &p); err == nil {
			h.progress = append(h.progress, p)
		}
	}).Export(abi.ImportProgress).
		NewFunctionBuilder().WithFunc(func(ctx context.Context) int32 {
		if fakeHostOf(ctx).cancelled {
			return 1
		}
		return 0
	}).Export(abi.ImportCancelled).
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		h := fakeHostOf(ctx)
		h.pending = []byte(`{"error":{"code":"not_granted","message":"the fake host grants nothing"}}`)
		return int32(len(h.pending))
	}).Export(abi.ImportCapability).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// instance is one instantiated plugin.
type instance struct {
	mod    api.Module
	stderr *bytes.Buffer
}

func instantiate(t *testing.T, r wazero.Runtime, wasm []byte) *instance {
	t.Helper()
	ctx := context.Background()
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithStderr(&stderr).WithSysNanosleep().WithSysNanotime().WithSysWalltime()
	mod, err := r.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		t.Fatalf("instantiating: %v\nstderr: %s", err, stderr.String())
	}
	t.Cleanup(func() { mod.Close(ctx) })
	return &instance{mod: mod, stderr: &stderr}
}

// message calls an export that returns a packed (ptr, len) and reads it.
func (in *instance) message(ctx context.Context, export string, params ...uint64) ([]byte, error) {
	res, err := in.mod.ExportedFunction(export).Call(ctx, params...)
	if err != nil {
		return nil, err
	}
	ptr, n := abi.Unpack(res[0])
	msg := read(in.mod, ptr, n)
	if msg == nil {
		return nil, fmt.Errorf("%s returned %d bytes at %#x, outside memory", export, n, ptr)
	}
	return msg, nil
}

// write puts msg in a fresh buffer from wasmhost_alloc.
func (in *instance) write(ctx context.Context, msg []byte) (uint32, error) {
	res, err := in.mod.ExportedFunction(abi.ExportAlloc).Call(ctx, uint64(len(msg)))
	if err != nil {
		return 0, err
	}
	ptr := uint32(res[0])
	if !in.mod.Memory().Write(ptr, msg) {
		return 0, fmt.Errorf("wasmhost_alloc returned %#x, outside memory", ptr)
	}
	return ptr, nil
}

func (in *instance) call(h *fakeHost, tool, args string) (abi.CallResult, error) {
	ctx := context.WithValue(context.Background(), fakeHostKey{}, h)
	namePtr, err := in.write(ctx, []byte(tool))
	if err != nil {
		return abi.CallResult{}, err
	}
	argsPtr, err := in.write(ctx, []byte(args))
	if err != nil {
		return abi.CallResult{}, err
	}
	msg, err := in.message(ctx, abi.ExportCall, uint64(namePtr), uint64(len(tool)), uint64(argsPtr), uint64(len(args)))
	if err != nil {
		return abi.CallResult{}, err
	}
	var res abi.CallResult
	if err := json.Unmarshal(msg, &res); err != nil {
		return abi.CallResult{}, fmt.Errorf("result %s: %w", msg, err)
	}
	return res, nil
}

var examplePlugins = []string{"greet", "jobs", "confirm", "releasenotes"}

func TestWasmExportsAndImports(t *testing.T) {
	wantExports := map[string]string{
		"_initialize":          "() -> ()",
		abi.ExportABIVersion:   "() -> (i32)",
		abi.ExportAlloc:        "(i32) -> (i32)",
		abi.ExportDescribe:     "() -> (i64)",
		abi.ExportCall:         "(i32,i32,i32,i32) -> (i64)",
		abi.ExportGetPrompt:    "(i32,i32,i32,i32) -> (i64)",
		abi.ExportReadResource: "(i32,i32) -> (i64)",
	}
	wantImports := map[string]string{
		abi.ImportInput:      "(i32,i32) -> (i32)",
		abi.ImportElicit:     "(i32,i32) -> (i32)",
		abi.ImportResponse:   "(i32,i32) -> (i32)",
		abi.ImportLog:        "(i32,i32,i32) -> ()",
		abi.ImportProgress:   "(i32,i32) -> ()",
		abi.ImportCancelled:  "() -> (i32)",
		abi.ImportDetach:     "() -> (i32)",
		abi.ImportCapability: "(i32,i32) -> (i32)",
	}
	for _, name := range examplePlugins {
		t.Run(name, func(t *testing.T) {
			r := newRuntime(t)
			compiled, err := r.CompileModule(context.Background(), buildPlugin(t, name))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for export, def := range compiled.ExportedFunctions() {
				got[export] = signature(def)
			}
			if fmt.Sprint(got) != fmt.Sprint(wantExports) {
				t.Errorf("exports = %v, want %v", got, wantExports)
			}
			for _, def := range compiled.ImportedFunctions() {
				module, fn, _ := def.Import()
				switch module {
				case abi.ImportModule:
					if want, ok := wantImports[fn]; !ok || signature(def) != want {
						t.Errorf("import %s.%s%s, want %q", module, fn, signature(def), want)
					}
				case wasi_snapshot_preview1.ModuleName:
				default:
					t.Errorf("unexpected import module %s (function %s)", module, fn)
				}
			}
			in := instantiate(t, r, buildPlugin(t, name))
			res, err := in.mod.ExportedFunction(abi.ExportABIVersion).Call(context.Background())
			if err != nil || int32(res[0]) != abi.Version {
				t.Errorf("wasmhost_abi_version = %v, %v; want %d", res, err, abi.Version)
			}
		})
	}
}

func signature(def api.FunctionDefinition) string {
	names := func(types []api.ValueType) string {
		s := make([]string, len(types))
		for i, vt := range types {
			s[i] = api.ValueTypeName(vt)
		}
		return "(" + strings.Join(s, ",") + ")"
	}
	return names(def.ParamTypes()) + " -> " + names(def.ResultTypes())
}

func TestWasmDescribe(t *testing.T) {
	r := newRuntime(t)
	in := instantiate(t, r, buildPlugin(t, "greet"))
	msg, err := in.message(context.Background(), abi.ExportDescribe)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"tools":[{"name":"greet","title":"Greet","description":"Say hello to someone by name.",` +
		`"inputSchema":{"type":"object","properties":{"name":{"type":"string","description":"Name of the person to greet."}},"required":["name"]},` +
		`"taskSupport":"forbidden"}]}`
	if string(msg) != want {
		t.Errorf("describe:\n%s\nwant:\n%s", msg, want)
	}

	in = instantiate(t, r, buildPlugin(t, "releasenotes"))
	msg, err = in.message(context.Background(), abi.ExportDescribe)
	if err != nil {
		t.Fatal(err)
	}
	var desc abi.Description
	if err := json.Unmarshal(msg, &desc); err != nil {
		t.Fatal(err)
	}
	if len(desc.Tools) != 1 || desc.Tools[0].OutputSchema == nil ||
		!strings.Contains(string(desc.Tools[0].InputSchema), `"enum":["users","developers"]`) {
		t.Errorf("release_notes description: %s", msg)
	}
}

// accept answers every elicitation by accepting content, whatever it asks.
func accept(content string) func(string, abi.InputRequest) abi.InputResponse {
	return func(_ string, req abi.InputRequest) abi.InputResponse {
		return abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":` + content + `}`)}
	}
}

func TestWasmCalls(t *testing.T) {
	unsupported := func(string, abi.InputRequest) abi.InputResponse {
		return abi.InputResponse{Error: &abi.InputError{Code: abi.ErrCodeUnsupported, Message: "no elicitation capability"}}
	}
	byMethod := func(_ string, req abi.InputRequest) abi.InputResponse {
		var p struct{ Message string }
		json.Unmarshal(req.Params, &p)
		if strings.Contains(p.Message, "name") {
			return abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"name":"Ada"}}`)}
		}
		return abi.InputResponse{Result: json.RawMessage(`{"action":"accept","content":{"colour":"green"}}`)}
	}
	tests := []struct {
		plugin, tool, args string
		host               fakeHost
		wantText           string // substring of the first content block
		wantIsError        bool
		wantVias           []string // imports used to ask, in order
		wantProgress       int
		wantTrap           string // substring of stderr; the call must fail
	}{
		{plugin: "greet", tool: "greet", args: `{"name":"Ada"}`, wantText: "Hello, Ada!"},
		{plugin: "greet", tool: "greet", args: `{"name":3}`, wantText: `field "name": got a JSON number, want a string`, wantIsError: true},
		{plugin: "greet", tool: "greet", args: `{}`, wantText: `missing required field "name"`, wantIsError: true},
		{plugin: "jobs", tool: "slow_compute", args: `{"seconds":0}`, wantText: "Computed in 0s"},
		{plugin: "jobs", tool: "slow_compute", args: `{"seconds":1.5}`, wantText: "Computed in 1.5s", wantProgress: 2},
		{plugin: "jobs", tool: "slow_compute", args: `{"seconds":5}`, host: fakeHost{cancelled: true}, wantText: "cancelled", wantIsError: true},
		{plugin: "jobs", tool: "failing_job", args: `{}`, wantText: "failed on purpose", wantIsError: true},
		{plugin: "jobs", tool: "protocol_error_job", args: `{}`, wantTrap: "panic: protocol_error_job trapped on purpose"},
		{plugin: "confirm", tool: "confirm_delete", args: `{"filename":"a.txt"}`, host: fakeHost{answer: accept(`{"confirm":true}`)},
			wantText: "Not deleted a.txt: the fake host grants nothing", wantVias: []string{abi.ImportElicit}},
		{plugin: "confirm", tool: "confirm_delete", args: `{"filename":"a.txt"}`, host: fakeHost{answer: accept(`{"confirm":false}`)},
			wantText: "Kept a.txt", wantVias: []string{abi.ImportElicit}},
		{plugin: "confirm", tool: "confirm_delete", args: `{"filename":"a.txt"}`, host: fakeHost{answer: unsupported},
			wantText: "Kept a.txt", wantVias: []string{abi.ImportElicit}},
		{plugin: "confirm", tool: "confirm_delete", args: `{"filename":"a.txt"}`, host: fakeHost{status: abi.StatusCancelled},
			wantText: "the call was cancelled", wantIsError: true, wantVias: []string{abi.ImportElicit}},
		{plugin: "confirm", tool: "multi_input", args: `{}`, host: fakeHost{answer: byMethod},
			wantText: "name: Ada (accept), colour: green (accept)", wantVias: []string{abi.ImportInput}},
		{plugin: "releasenotes", tool: "release_notes", args: `{"version":"v1.0.0","commits":["feat: tasks","chore: tidy"]}`,
			host: fakeHost{answer: accept(`{"audience":"users"}`)}, wantText: `"skipped":1`, wantVias: []string{abi.ImportElicit}, wantProgress: 2},
	}
	r := newRuntime(t)
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			in := instantiate(t, r, buildPlugin(t, tt.plugin))
			h := tt.host
			res, err := in.call(&h, tt.tool, tt.args)
			if tt.wantTrap != "" {
				// The Go runtime prints the panic to stderr, then aborts
				// with the wasm unreachable instruction.
				if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(in.stderr.String(), tt.wantTrap) {
					t.Fatalf("call: err = %v, stderr = %q; want a trap with %q", err, in.stderr.String(), tt.wantTrap)
				}
				return
			}
			if err != nil {
				t.Fatalf("call: %v\nstderr: %s", err, in.stderr.String())
			}
			if len(res.Content) == 0 || !strings.Contains(res.Content[0].Text, tt.wantText) || res.IsError != tt.wantIsError {
				t.Errorf("result = %+v, want text containing %q and isError %v", res, tt.wantText, tt.wantIsError)
			}
			if !slices.Equal(h.vias, tt.wantVias) {
				t.Errorf("asked through %v, want %v", h.vias, tt.wantVias)
			}
			if tt.tool == "multi_input" && (len(h.batches) != 1 || len(h.batches[0]) != 2) {
				t.Errorf("multi_input asked %d batches (%v), want one batch of two", len(h.batches), h.batches)
			}
			if len(h.progress) != tt.wantProgress {
				t.Errorf("progress reports = %+v, want %d", h.progress, tt.wantProgress)
			}
		})
	}
}

// TestWasmInstanceReuse checks that one instance serves several calls (the
// host uses a fresh one per call, but the SDK must not depend on that) and
// that alloc'd buffers may hold more than one message.
func TestWasmInstanceReuse(t *testing.T) {
	in := instantiate(t, newRuntime(t), buildPlugin(t, "greet"))
	for _, name := range []string{"Ada", "Grace", "Edsger"} {
		res, err := in.call(&fakeHost{}, "greet", `{"name":"`+name+`"}`)
		if err != nil || res.Content[0].Text != "Hello, "+name+"!" {
			t.Fatalf("call %s: %+v, %v", name, res, err)
		}
	}
	// name and args in one buffer
	ctx := context.Background()
	msg := []byte(`greet{"name":"Barbara"}`)
	ptr, err := in.write(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := in.message(ctx, abi.ExportCall, uint64(ptr), 5, uint64(ptr+5), uint64(len(msg)-5))
	if err != nil || !strings.Contains(string(out), "Hello, Barbara!") {
		t.Fatalf("call from one buffer: %s, %v", out, err)
	}
	// a pointer the guest never handed out traps
	if _, err := in.message(ctx, abi.ExportCall, 8, 5, 0, 0); err == nil {
		t.Fatal("call with a foreign pointer: want a trap")
	}
}
