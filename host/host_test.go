package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
)

func TestCallEcho(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")

	tools := p.Tools()
	if len(tools) == 0 || tools[0].Name != "echo" {
		t.Fatalf("tools = %+v", tools)
	}
	if tools[0].TaskSupport != abi.TaskOptional || tools[1].TaskSupport != abi.TaskForbidden {
		t.Errorf("task support = %q, %q; want optional, forbidden (the default)", tools[0].TaskSupport, tools[1].TaskSupport)
	}

	tests := []struct {
		name, args, want string
	}{
		{"object", `{"a":[1,2,"x"]}`, `{"a":[1,2,"x"]}`},
		{"nil args mean {}", ``, `{}`},
		{"null means {}", `null`, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Call(context.Background(), "echo", json.RawMessage(tc.args), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError || len(res.Content) != 1 || res.Content[0].Text != tc.want || string(res.StructuredContent) != tc.want {
				t.Errorf("result = %+v, want text and structuredContent %s", res, tc.want)
			}
		})
	}
}

func TestFreshInstancePerCall(t *testing.T) {
	for _, pool := range []int{-1, 1, 3} {
		r, _ := newRuntime(t, Options{PoolSize: pool})
		p := load(t, r, "echo")
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := p.Call(context.Background(), "count", nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if got := res.Content[0].Text; got != "1" {
					t.Errorf("pool %d: count = %s; an instance was reused", pool, got)
				}
			}()
		}
		wg.Wait()
	}
}

func TestLoadErrors(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "notes.wasm")
	os.WriteFile(notWasm, []byte("hello, I am text\n"), 0o644)
	empty := filepath.Join(dir, "empty.wasm")
	os.WriteFile(empty, []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	component := filepath.Join(dir, "comp.wasm")
	os.WriteFile(component, []byte("\x00asm\x0d\x00\x01\x00"), 0o644)

	tests := []struct {
		name string
		path string
		kind error
		want []string
	}{
		{"not wasm", notWasm, ErrInvalidPlugin, []string{"plugin notes.wasm: not a WebAssembly module"}},
		{"component", component, ErrInvalidPlugin, []string{"plugin comp.wasm:", "component"}},
		{"empty module", empty, ErrInvalidPlugin, []string{
			"plugin empty.wasm: not a wasmhost ABI v1 plugin: missing exports wasmhost_abi_version, wasmhost_alloc, wasmhost_describe, wasmhost_call, _initialize"}},
		{"missing file", filepath.Join(dir, "gone.wasm"), os.ErrNotExist, []string{"plugin gone.wasm:"}},
		{"abi v2", guest(t, "abiv2"), ErrIncompatibleABI, []string{
			"plugin abiv2.wasm: built for ABI v2, this wasmhost speaks ABI v1; rebuild it with the matching SDK"}},
		{"missing exports", guest(t, "missing"), ErrInvalidPlugin, []string{
			"plugin missing.wasm:", "missing exports wasmhost_alloc, wasmhost_describe, wasmhost_call"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Load(context.Background(), tc.path)
			if err == nil {
				p.Close(context.Background())
				t.Fatal("loaded")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q does not match %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateDescription(t *testing.T) {
	obj := json.RawMessage(`{"type":"object"}`)
	tests := []struct {
		name  string
		tools []abi.Tool
		want  string // "" means valid
	}{
		{"ok", []abi.Tool{{Name: "a.b-c_D9", InputSchema: obj, OutputSchema: obj, TaskSupport: abi.TaskRequired}}, ""},
		{"no tools", nil, "describes no tools"},
		{"empty name", []abi.Tool{{InputSchema: obj}}, "tool name is empty"},
		{"bad name", []abi.Tool{{Name: "say hi", InputSchema: obj}}, `contains ' '`},
		{"long name", []abi.Tool{{Name: strings.Repeat("x", 129), InputSchema: obj}}, "longer than 128"},
		{"duplicate", []abi.Tool{{Name: "a", InputSchema: obj}, {Name: "a", InputSchema: obj}}, "described twice"},
		{"no schema", []abi.Tool{{Name: "a"}}, "inputSchema is missing"},
		{"string schema", []abi.Tool{{Name: "a", InputSchema: json.RawMessage(`{"type":"string"}`)}}, `inputSchema must have "type": "object"`},
		{"array schema", []abi.Tool{{Name: "a", InputSchema: json.RawMessage(`[]`)}}, "inputSchema is not a JSON object"},
		{"bad output", []abi.Tool{{Name: "a", InputSchema: obj, OutputSchema: json.RawMessage(`{}`)}}, "outputSchema must have"},
		{"bad task", []abi.Tool{{Name: "a", InputSchema: obj, TaskSupport: "sometimes"}}, `taskSupport "sometimes"`},
		{"deferred task", []abi.Tool{{Name: "a", InputSchema: obj, TaskSupport: abi.TaskOptional, DeferTask: true}}, ""},
		{"deferred without tasks", []abi.Tool{{Name: "a", InputSchema: obj, DeferTask: true}}, `tool "a": deferTask needs taskSupport "optional" or "required"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateDescription(&abi.Description{Tools: tc.tools})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	echo := load(t, r, "echo")
	hostile := load(t, r, "hostile")

	tests := []struct {
		name string
		p    *Plugin
		tool string
		args string
		kind error
		want string
	}{
		{"unknown tool", echo, "nope", "", ErrUnknownTool, `plugin echo.wasm: unknown tool "nope"`},
		{"args not object", echo, "echo", `[1]`, ErrBadArguments, "plugin echo.wasm: tool echo: bad arguments: not a JSON object"},
		{"args not json", echo, "echo", `{`, ErrBadArguments, "bad arguments"},
		{"panic", echo, "panic", "", ErrGuestTrapped, "plugin echo.wasm: tool panic: guest trapped: wasm error: unreachable: panic: boom"},
		{"result outside memory", hostile, "oob_result", "", ErrBadGuestMessage, "plugin hostile.wasm: tool oob_result: bad message from guest: result at 0xffffff00+100 lies outside guest memory"},
		{"result too large", hostile, "huge_result", "", ErrBadGuestMessage, "result of 4194305 bytes is over the 4194304 byte limit"},
		{"result not json", hostile, "garbage_result", "", ErrBadGuestMessage, "result is not a CallResult"},
		{"content without type", hostile, "untyped_content", "", ErrBadGuestMessage, "content[0] has no type"},
		{"allocator lies", hostile, "bad_alloc", "", ErrBadGuestMessage, "wasmhost_alloc(9) returned 0xfffffff0, outside guest memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Call(context.Background(), tc.tool, json.RawMessage(tc.args), nil)
			if !errors.Is(err, tc.kind) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant %v containing %q", err, tc.kind, tc.want)
			}
			// The plugin keeps serving after every failure.
			if _, err := echo.Call(context.Background(), "echo", nil, nil); err != nil {
				t.Errorf("call after failure: %v", err)
			}
		})
	}
}

func TestHostileImports(t *testing.T) {
	r, logs := newRuntime(t, Options{})
	p := load(t, r, "hostile")
	res, err := p.Call(context.Background(), "statuses", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int32
	if err := json.Unmarshal([]byte(res.Content[0].Text), &got); err != nil {
		t.Fatal(err)
	}
	bad, none, small := int32(abi.StatusBadMessage), int32(abi.StatusNoResponse), int32(abi.StatusBufferTooSmall)
	want := map[string]int32{
		"input_oob": bad, "input_huge": bad, "input_garbage": bad, "input_empty": bad,
		"input_bad_method": bad, "input_too_many": bad, "elicit_not_object": bad,
		"response_none": none, "response_small": small, "response_oob": bad,
		"response_again": none, "cancelled": 0,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d", k, got[k], w)
		}
	}
	if got["elicit_ok"] <= 0 || got["response_ok"] != got["elicit_ok"] {
		t.Errorf("elicit_ok = %d, response_ok = %d; want equal and positive", got["elicit_ok"], got["response_ok"])
	}
	// Each refusal reaches the operator: a warning naming the import.
	for _, fn := range []string{abi.ImportInput, abi.ImportElicit, abi.ImportResponse} {
		if len(logs.find(t, logEntry{"@level": "warn", "import": fn})) == 0 {
			t.Errorf("no warning for the bad messages given to %s:\n%s", fn, logs)
		}
	}
}

func TestSandbox(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	res, err := p.Call(context.Background(), "sandbox", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Args     []string
		Env      []string
		ReadFile bool
		ReadDir  bool
		WallYear int
	}
	if err := json.Unmarshal([]byte(res.Content[0].Text), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Args) != 1 || got.Args[0] != "echo.wasm" {
		t.Errorf("args = %q, want just the plugin name", got.Args)
	}
	if len(got.Env) != 0 {
		t.Errorf("env = %q, want none", got.Env)
	}
	if !got.ReadFile || !got.ReadDir {
		t.Errorf("guest could read the host's files (file %v, dir %v)", !got.ReadFile, !got.ReadDir)
	}
	if got.WallYear < 2025 {
		t.Errorf("wall clock year %d: clocks are not real", got.WallYear)
	}
}

func TestMemoryLimit(t *testing.T) {
	r, _ := newRuntime(t, Options{MemoryLimitMiB: 32})
	p := load(t, r, "echo")
	if _, err := p.Call(context.Background(), "hog", json.RawMessage(`{"mb":4}`), nil); err != nil {
		t.Fatalf("4 MiB under a 32 MiB cap: %v", err)
	}
	_, err := p.Call(context.Background(), "hog", json.RawMessage(`{"mb":64}`), nil)
	if !errors.Is(err, ErrGuestTrapped) || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("64 MiB under a 32 MiB cap: %v, want a trap for out of memory", err)
	}
	if _, err := New(context.Background(), Options{MemoryLimitMiB: 8192, CacheDir: compileCacheDir}); err == nil {
		t.Error("a memory limit over 4 GiB was accepted")
	}
}
