package host

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
)

func TestElicit(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	accept := json.RawMessage(`{"action":"accept","content":{"ok":true}}`)

	tests := []struct {
		name  string
		env   Env
		want  string
		asked string // params the Env must have seen
	}{
		{"accepted", &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
			return []abi.InputResponse{{Result: accept}}, nil
		}}, `{"result":{"action":"accept","content":{"ok":true}}}`, `{"message":"sure?"}`},
		{"no env", nil, `{"error":{"code":"unsupported","message":"this caller cannot answer input requests"}}`, ""},
		{"env fails", &testEnv{input: func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
			return nil, errors.New("relay down")
		}}, `{"error":{"code":"failed","message":"relay down"}}`, ""},
		{"env answers nothing", &testEnv{input: func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
			return nil, nil
		}}, `{"error":{"code":"failed","message":"env answered 0 of 1 requests"}}`, ""},
		{"env answers garbage", &testEnv{input: func(context.Context, []abi.InputRequest) ([]abi.InputResponse, error) {
			return []abi.InputResponse{{Result: json.RawMessage(`{nope`)}}, nil
		}}, `"code":"failed"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen []abi.InputRequest
			if te, ok := tc.env.(*testEnv); ok {
				inner := te.input
				te.input = func(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
					seen = reqs
					return inner(ctx, reqs)
				}
			}
			res, err := p.Call(context.Background(), "elicit", json.RawMessage(`{"message":"sure?"}`), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].Text; !strings.Contains(got, tc.want) {
				t.Errorf("guest got %s, want %s", got, tc.want)
			}
			if tc.asked != "" && (len(seen) != 1 || seen[0].Method != abi.MethodElicit || string(seen[0].Params) != tc.asked) {
				t.Errorf("env saw %+v", seen)
			}
		})
	}
}

func TestInputBatch(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		out := make([]abi.InputResponse, len(reqs))
		for i, req := range reqs {
			out[i].Result = req.Params // echo each question back, in order
		}
		return out, nil
	}}
	tests := []struct {
		n    int
		want string
	}{
		{1, `[{"result":{"message":"q0"}}]`},
		{3, `[{"result":{"message":"q0"}},{"result":{"message":"q1"}},{"result":{"message":"q2"}}]`},
		{abi.MaxInputBatch + 1, "status -1"},
	}
	for _, tc := range tests {
		res, err := p.Call(context.Background(), "ask", json.RawMessage(`{"n":`+itoa(tc.n)+`}`), env)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Content[0].Text; got != tc.want {
			t.Errorf("n=%d: guest got %s, want %s", tc.n, got, tc.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestGuestOutput checks that stdout, stderr, log and progress reach the
// Logger and the Env, and that nothing reaches os.Stdout, the MCP channel.
func TestGuestOutput(t *testing.T) {
	r, logs := newRuntime(t, Options{})
	p := load(t, r, "echo")

	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = wr
	env := &testEnv{}
	_, callErr := p.Call(context.Background(), "stdio", nil, env)
	os.Stdout = stdout
	wr.Close()
	leaked, _ := io.ReadAll(rd)
	if callErr != nil {
		t.Fatal(callErr)
	}
	if len(leaked) > 0 {
		t.Errorf("guest wrote to os.Stdout: %q", leaked)
	}
	// What the guest wrote (its own words) reaches the log, marked with
	// the plugin and where it came from.
	for _, want := range []logEntry{
		{"@module": "echo.wasm", "@message": "hello from stdout", "stream": "stdout"},
		{"@module": "echo.wasm", "@message": "hello from stderr", "stream": "stderr"},
		{"@module": "echo.wasm", "@message": "careful", "@level": "warn", "tool": "stdio"},
	} {
		if len(logs.find(t, want)) == 0 {
			t.Errorf("log lacks an entry with %v:\n%s", want, logs)
		}
	}
	if len(env.logs) != 1 || env.logs[0] != "careful" {
		t.Errorf("env logs = %q", env.logs)
	}
	if len(env.progress) != 1 || env.progress[0] != (abi.Progress{Progress: 1, Total: 2, Message: "half"}) {
		t.Errorf("env progress = %+v", env.progress)
	}
}

func TestGuestWriter(t *testing.T) {
	logs := &logBuffer{}
	w := &guestWriter{out: newGuestOutput(hclog.New(&hclog.LoggerOptions{Output: logs, JSONFormat: true})), stream: "stderr"}
	w.Write([]byte("par"))
	w.Write([]byte("tial\npanic: boom\n\ngoroutine 1"))
	w.Write([]byte(strings.Repeat("x", abi.MaxLogSize+10)))
	w.flush()
	if got := w.trapLine(); got != "panic: boom" {
		t.Errorf("trap line = %q", got)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry struct {
			Msg    string `json:"@message"`
			Stream string `json:"stream"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry.Stream != "stderr" {
			t.Fatalf("log line %q: %v", line, err)
		}
		got = append(got, entry.Msg)
	}
	want := []string{"partial", "panic: boom", "", "goroutine 1" + strings.Repeat("x", abi.MaxLogSize-len("goroutine 1")), strings.Repeat("x", 21)}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %.40q (%d bytes), want %.40q (%d bytes)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

func TestInputKeys(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	var seen []abi.InputRequest
	env := &testEnv{input: func(_ context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
		seen = reqs
		out := make([]abi.InputResponse, len(reqs))
		for i, req := range reqs {
			out[i].Result = json.RawMessage(`{"key":"` + req.Key + `"}`)
		}
		return out, nil
	}}
	long := strings.Repeat("k", 64)
	tests := []struct {
		name     string
		batch    string
		want     string   // what the guest got back
		wantKeys []string // keys the Env saw; nil if it must not be asked
	}{
		{"named and unnamed", `[{"key":"user_name","method":"elicitation/create","params":{"message":"?"}},{"method":"roots/list"}]`,
			`[{"result":{"key":"user_name"}},{"result":{"key":"roots-2"}}]`, []string{"user_name", "roots-2"}},
		{"minted key taken by the guest", `[{"key":"roots-2","method":"elicitation/create","params":{"message":"?"}},{"method":"roots/list"}]`,
			`[{"result":{"key":"roots-2"}},{"result":{"key":"roots-2_"}}]`, []string{"roots-2", "roots-2_"}},
		{"every allowed character", `[{"key":"aZ09_.-","method":"roots/list"}]`, `[{"result":{"key":"aZ09_.-"}}]`, []string{"aZ09_.-"}},
		{"64 characters", `[{"key":"` + long + `","method":"roots/list"}]`, `[{"result":{"key":"` + long + `"}}]`, []string{long}},
		{"65 characters", `[{"key":"` + long + `x","method":"roots/list"}]`, "status -1", nil},
		{"space", `[{"key":"user name","method":"roots/list"}]`, "status -1", nil},
		{"slash", `[{"key":"a/b","method":"roots/list"}]`, "status -1", nil},
		{"not ASCII", `[{"key":"näme","method":"roots/list"}]`, "status -1", nil},
		{"duplicate", `[{"key":"k","method":"roots/list"},{"key":"k","method":"sampling/createMessage","params":{}}]`, "status -1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			args, _ := json.Marshal(map[string]json.RawMessage{"batch": json.RawMessage(tc.batch)})
			res, err := p.Call(context.Background(), "input", args, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].Text; got != tc.want {
				t.Errorf("guest got %s, want %s", got, tc.want)
			}
			var keys []string
			for _, req := range seen {
				keys = append(keys, req.Key)
			}
			if strings.Join(keys, "|") != strings.Join(tc.wantKeys, "|") || (seen == nil) != (tc.wantKeys == nil) {
				t.Errorf("env saw keys %q, want %q", keys, tc.wantKeys)
			}
		})
	}
}

// detachEnv is a testEnv whose caller can detach calls.
type detachEnv struct {
	testEnv
	answer bool
	calls  int
}

func (e *detachEnv) Detach(ctx context.Context) bool {
	if ctx.Err() != nil {
		panic("Detach called with a dead context")
	}
	e.calls++
	return e.answer
}

func TestDetach(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	tests := []struct {
		name, tool string
		env        Env
		want       string // the two detach results the guest saw
		wantCalls  int    // Detach calls the Env got
	}{
		{"detached", "detach", &detachEnv{answer: true}, "1 1", 1},
		{"caller declines", "detach", &detachEnv{answer: false}, "0 0", 2},
		{"env cannot detach", "detach", &testEnv{}, "0 0", 0},
		{"no env", "detach", nil, "0 0", 0},
		{"tool without deferTask", "detach_plain", &detachEnv{answer: true}, "0 0", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Call(context.Background(), tc.tool, nil, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].Text; got != tc.want {
				t.Errorf("detach returned %s, want %s", got, tc.want)
			}
			calls := 0
			if d, ok := tc.env.(*detachEnv); ok {
				calls = d.calls
			}
			if calls != tc.wantCalls {
				t.Errorf("Detach called %d times, want %d", calls, tc.wantCalls)
			}
		})
	}
	var deferred []string
	for _, tool := range p.Tools() {
		if tool.DeferTask {
			deferred = append(deferred, tool.Name)
		}
	}
	if strings.Join(deferred, ",") != "detach" {
		t.Errorf("tools with deferTask = %q, want just detach", deferred)
	}
}

// TestResultChecks passes CallResults through the echo guest's result tool,
// which returns its arguments as its result.
func TestResultChecks(t *testing.T) {
	r, _ := newRuntime(t, Options{})
	p := load(t, r, "echo")
	tests := []struct {
		name, result string
		want         string // the result as the caller gets it, re-encoded; "" when refused
		wantErr      string
	}{
		{"protocol error", `{"content":[],"error":{"code":-32021,"message":"needs sampling","data":{"requiredCapabilities":{"sampling":{}}}}}`,
			`{"content":[],"error":{"code":-32021,"message":"needs sampling","data":{"requiredCapabilities":{"sampling":{}}}}}`, ""},
		{"protocol error without content", `{"error":{"code":-32602,"message":"bad"}}`,
			`{"content":[],"error":{"code":-32602,"message":"bad"}}`, ""},
		{"text resource", `{"content":[{"type":"resource","resource":{"uri":"test://r","mimeType":"text/plain","text":"hi"}}]}`,
			`{"content":[{"type":"resource","resource":{"uri":"test://r","mimeType":"text/plain","text":"hi"}}]}`, ""},
		{"blob resource", `{"content":[{"type":"text","text":"see"},{"type":"resource","resource":{"uri":"test://b","blob":"AAE="}}]}`,
			`{"content":[{"type":"text","text":"see"},{"type":"resource","resource":{"uri":"test://b","blob":"AAE="}}]}`, ""},
		{"error without code", `{"content":[],"error":{"message":"oops"}}`, "", `error has no code (message "oops")`},
		{"error without message", `{"content":[],"error":{"code":-32021}}`, "", "error -32021 has no message"},
		{"resource block without resource", `{"content":[{"type":"resource"}]}`, "", "content[0] is a resource block without a resource URI"},
		{"resource without URI", `{"content":[{"type":"resource","resource":{"text":"x"}}]}`, "", "content[0] is a resource block without a resource URI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Call(context.Background(), "result", json.RawMessage(tc.result), nil)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadGuestMessage) || !strings.Contains(err.Error(), "plugin echo.wasm: tool result: bad message from guest: result "+tc.wantErr) {
					t.Errorf("err = %v, want ErrBadGuestMessage with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(res); string(got) != tc.want {
				t.Errorf("result = %s\nwant %s", got, tc.want)
			}
		})
	}
}
