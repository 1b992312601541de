package mcpserver

// Fuzz targets for what the front end decodes from a client: the stdio
// framing, tool arguments against their input schemas, the params of the
// tasks/* methods, and answers to a guest's questions. No input may panic
// the server or hang it; every refusal must be a clear, bounded message.
// Seeds are real messages (the TypeScript SDK's and the conformance
// suite's requests, the example plugins' schemas and questions) and the
// corpus in testdata/fuzz/<Target>; `go test` runs them, scripts/fuzz.sh
// explores.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

// maxErrorLen bounds a refusal: it says what is wrong without echoing the
// input back.
const maxErrorLen = 1024

func clearError(t *testing.T, what, msg string) {
	t.Helper()
	if msg == "" || len(msg) > maxErrorLen || !utf8.ValidString(msg) {
		t.Fatalf("%s: refusal %.200q (%d bytes) is empty, longer than %d bytes, or not UTF-8", what, msg, len(msg), maxErrorLen)
	}
}

// FuzzStdioFraming: any bytes on stdin. Every non-blank line is either a
// message for the server or answered with a JSON-RPC error, and the
// connection reads on.
func FuzzStdioFraming(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"ts","version":"1"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow_compute","arguments":{"seconds":1},"task":{"ttl":60000},"_meta":{"progressToken":2}}}` + "\n"))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"},"task":null}}` + "\r\n\n  \n"))
	f.Add([]byte("not json\n{\"id\":7}\n[1,2]\n{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		var out bytes.Buffer
		tr := &stdioTransport{in: bytes.NewReader(input), out: &out}
		c, err := tr.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		read, answered := 0, 0
		for {
			msg, err := c.Read(ctx)
			if err != nil {
				if err != io.EOF {
					t.Fatalf("Read: %v", err) // no line here reaches maxLine
				}
				break
			}
			read++
			req, ok := msg.(*jsonrpc.Request)
			if !ok {
				continue
			}
			if req.Method == "tools/call" && len(req.Params) > 0 && !json.Valid(req.Params) {
				t.Fatalf("tools/call params are not JSON after lifting the task field: %q", req.Params)
			}
			if req.IsCall() {
				answered++
				if err := c.Write(ctx, &jsonrpc.Response{ID: req.ID, Result: json.RawMessage(`{}`)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		lines := 0
		for _, l := range bytes.Split(input, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		replies := 0
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, maxLine+1024)
		for sc.Scan() {
			var m struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.JSONRPC != "2.0" || len(m.ID) == 0 {
				t.Fatalf("wrote %q, not a JSON-RPC response: %v", sc.Bytes(), err)
			}
			if m.Error == nil {
				continue // one of ours
			}
			replies++
			if m.Error.Code != -32700 && m.Error.Code != -32600 {
				t.Fatalf("framing error with code %d", m.Error.Code)
			}
			clearError(t, "framing", m.Error.Message)
		}
		if read+replies != lines {
			t.Fatalf("%d non-blank lines, but %d messages read and %d refused", lines, read, replies)
		}
	})
}

// exampleSchemas are the input schemas of the example plugins' tools, as
// `wasmhost inspect --json` shows them.
var exampleSchemas = map[string]string{
	"greet":          `{"type":"object","properties":{"name":{"type":"string","description":"Name of the person to greet."}},"required":["name"]}`,
	"slow_compute":   `{"type":"object","properties":{"seconds":{"type":"number","description":"How long to compute, in seconds (0 answers at once).","minimum":0}},"required":["seconds"]}`,
	"confirm_delete": `{"type":"object","properties":{"filename":{"type":"string","description":"The file to delete."}},"required":["filename"]}`,
	"release_notes":  `{"type":"object","properties":{"version":{"type":"string"},"commits":{"type":"array","items":{"type":"string"}},"audience":{"type":"string","enum":["users","developers"]}},"required":["version","commits"]}`,
	"multi_input":    `{"type":"object","properties":{}}`,
}

var schemaNames = []string{"greet", "slow_compute", "confirm_delete", "release_notes", "multi_input"}

// FuzzToolArgs: the arguments of tools/call against a tool's input schema.
func FuzzToolArgs(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"Ada"}`))
	f.Add(uint8(0), []byte(`{"name":5}`))
	f.Add(uint8(1), []byte(`{"seconds":-1}`))
	f.Add(uint8(2), []byte(`{"filename":"notes.txt"}`))
	f.Add(uint8(3), []byte(`{"version":"v1.0.0","commits":["feat: scale out","docs: redis"],"audience":"nobody"}`))
	f.Add(uint8(4), []byte(`null`))
	tools := make([]*servedTool, len(schemaNames))
	for i, name := range schemaNames {
		st, err := newServedTool(host.ToolEntry{Tool: abi.Tool{Name: name, InputSchema: json.RawMessage(exampleSchemas[name])}}, nil)
		if err != nil {
			f.Fatal(err)
		}
		tools[i] = st
	}
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		st := tools[int(which)%len(tools)]
		res := st.checkArgs(context.Background(), 0, args)
		if res == nil {
			var v map[string]any
			if len(args) > 0 && string(args) != "null" && json.Unmarshal(args, &v) != nil {
				t.Fatalf("%s accepted arguments that are not an object: %q", st.entry.Tool.Name, args)
			}
			return
		}
		if !res.IsError || len(res.Content) != 1 {
			t.Fatalf("refusal is not one tool error: %+v", res)
		}
		tc, ok := res.Content[0].(*mcp.TextContent)
		if !ok {
			t.Fatalf("refusal is not text: %+v", res.Content[0])
		}
		text := tc.Text
		if !strings.HasPrefix(text, "invalid arguments for tool "+st.entry.Tool.Name+": ") {
			t.Fatalf("refusal %q does not say which tool", text)
		}
		clearError(t, "arguments", text)
	})
}

// noTools is a catalog with nothing in it: the tasks methods need none.
type noTools struct{}

func (noTools) Tools() []host.ToolEntry                 { return nil }
func (noTools) Lookup(string) (host.ToolEntry, bool)    { return host.ToolEntry{}, false }
func (noTools) Prompts() []host.PromptEntry             { return nil }
func (noTools) Resources() []host.ResourceEntry         { return nil }
func (noTools) ResourceTemplates() []host.TemplateEntry { return nil }
func (noTools) Problems() []host.Problem                { return nil }

// lineClient speaks JSON-RPC over a stdio server's pipes, one request at a
// time.
type lineClient struct {
	w     io.Writer
	lines chan []byte // closed when the server's output ends
	next  int
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends method with params (JSON, put on one line) and returns the
// response, skipping the server's notifications. A server that does not
// answer within 10s fails the test rather than hanging it.
func (c *lineClient) call(t testing.TB, method string, params json.RawMessage) rpcResponse {
	t.Helper()
	var line bytes.Buffer
	if err := json.Compact(&line, params); err != nil {
		t.Fatalf("params %q: %v", params, err)
	}
	c.next++
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`+"\n", c.next, method, line.Bytes())
	if _, err := io.WriteString(c.w, msg); err != nil {
		t.Fatalf("write %s: %v", method, err)
	}
	want := fmt.Sprint(c.next)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("%s: the server closed the connection", method)
			}
			var r rpcResponse
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatalf("server wrote %q: %v", l, err)
			}
			if r.Method == "" && string(r.ID) == want {
				return r
			}
		case <-timeout:
			t.Fatalf("%s %s: no response within 10s", method, params)
		}
	}
}

// stdioServer serves a memory store over pipes and returns a client that
// has initialized with protocol 2025-11-25, and the store.
func stdioServer(tb testing.TB) (*lineClient, tasks.Store) {
	store := tasks.NewMemory()
	srv, err := New(Options{Catalog: noTools{}, Store: store})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	done := make(chan struct{})
	go func() {
		_ = srv.ServeStdio(ctx, serverR, serverW)
		serverW.Close()
		close(done)
	}()
	var c *lineClient
	tb.Cleanup(func() {
		go func() {
			for range c.lines { // nobody reads any more: let the server finish writing
			}
		}()
		clientW.Close()
		cancel()
		<-done
		srv.Close()
	})
	c = &lineClient{w: clientW, lines: make(chan []byte, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(clientR)
		sc.Buffer(nil, maxLine)
		for sc.Scan() {
			c.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	if r := c.call(tb, "initialize", json.RawMessage(`{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"fuzz","version":"0"}}`)); r.Error != nil {
		tb.Fatalf("initialize: %+v", r.Error)
	}
	if _, err := io.WriteString(clientW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		tb.Fatal(err)
	}
	return c, store
}

// finishedTask stores a completed task with a fixed id.
func finishedTask(tb testing.TB, store tasks.Store, id, owner string, kind tasks.Kind) {
	tb.Helper()
	ctx := context.Background()
	now := time.Now()
	t := &tasks.Task{ID: id, Kind: kind, Owner: owner, Tool: "greet", Status: tasks.Working, CreatedAt: now, UpdatedAt: now, TTL: time.Hour}
	if err := store.Create(ctx, t); err != nil {
		tb.Fatal(err)
	}
	if err := store.Complete(ctx, id, 0, json.RawMessage(`{"content":[{"type":"text","text":"Hello, Ada!"}]}`)); err != nil {
		tb.Fatal(err)
	}
}

var taskMethods = []string{"tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "tasks/update"}

// decodes reports whether go-sdk can decode params for method into the
// struct the method's handler takes.
func decodes(method string, params []byte) bool {
	var p any
	switch method {
	case "tasks/list":
		p = &listTasksParams{}
	case "tasks/update":
		p = &updateTaskParams{}
	default:
		p = &taskIDParams{}
	}
	return json.Unmarshal(params, p) == nil
}

// FuzzTaskParams: the params of every tasks/* method, as a client sends
// them, to a live server over stdio. Each gets a result or a clear
// JSON-RPC error, and the server answers the next request.
func FuzzTaskParams(f *testing.F) {
	for i, p := range []string{
		`{"taskId":"fuzz-mine"}`,
		`{"taskId":"fuzz-mine","task":{"ttl":60000}}`, // the TypeScript client echoes the task field
		`{"taskId":"fuzz-other"}`,
		`{"taskId":"fuzz-call"}`,
		`{}`,
		`{"cursor":"not-a-cursor"}`,
		`{"taskId":"fuzz-mine","inputResponses":{"confirm":{"action":"accept","content":{"confirm":true}}}}`,
		`null`,
	} {
		f.Add(uint8(i), []byte(p))
	}
	c, store := stdioServer(f)
	finishedTask(f, store, "fuzz-mine", stdioOwner, tasks.KindTask)
	finishedTask(f, store, "fuzz-other", "another-session", tasks.KindTask)
	finishedTask(f, store, "fuzz-call", stdioOwner, tasks.KindCall)
	f.Fuzz(func(t *testing.T, which uint8, params []byte) {
		if !json.Valid(params) {
			return // a line that is not JSON is FuzzStdioFraming's
		}
		method := taskMethods[int(which)%len(taskMethods)]
		r := c.call(t, method, params)
		if !decodes(method, params) {
			// go-sdk refuses params of the wrong shape before any of our
			// code runs, quoting them whole: the client's own bytes, sent
			// back to it alone.
			if r.Error == nil || r.Error.Message == "" {
				t.Fatalf("%s %s: want an error, got %+v", method, params, r)
			}
			return
		}
		if r.Error == nil {
			if !json.Valid(r.Result) || len(r.Result) == 0 {
				t.Fatalf("%s: result %q", method, r.Result)
			}
			if bytes.Contains(r.Result, []byte("fuzz-other")) || bytes.Contains(r.Result, []byte("fuzz-call")) {
				t.Fatalf("%s %s showed a task this session may not see: %s", method, params, r.Result)
			}
			return
		}
		switch r.Error.Code {
		case jsonrpc.CodeInvalidParams, jsonrpc.CodeMethodNotFound, jsonrpc.CodeInvalidRequest:
		default:
			t.Fatalf("%s %s: error code %d (%s)", method, params, r.Error.Code, r.Error.Message)
		}
		clearError(t, method, r.Error.Message)
	})
}

// exampleQuestions are questions the example plugins ask, as the store
// holds them.
var exampleQuestions = []abi.InputRequest{
	{Key: "confirm", Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"Delete notes.txt?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean","description":"Delete it?"}},"required":["confirm"]}}`)},
	{Key: "audience", Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"Who reads these notes?","requestedSchema":{"type":"object","properties":{"audience":{"type":"string","enum":["users","developers"]}},"required":["audience"]}}`)},
	{Key: "free", Method: abi.MethodElicit, Params: json.RawMessage(`{"message":"Anything to add?"}`)},
	{Key: "sample", Method: abi.MethodSample, Params: json.RawMessage(`{"messages":[{"role":"user","content":{"type":"text","text":"Summarise"}}],"maxTokens":100}`)},
	{Key: "roots", Method: abi.MethodListRoots},
}

// FuzzInputResponse: a client's answer to a guest's question, as
// inputResponses of a 2026-07-28 retry or tasks/update carry it, checked
// against the question; and the question itself as the relay decodes it
// for go-sdk (mcpInputRequests).
func FuzzInputResponse(f *testing.F) {
	f.Add(uint8(0), []byte(`{"action":"accept","content":{"confirm":true}}`))
	f.Add(uint8(0), []byte(`{"action":"accept","content":{"confirm":"yes"}}`))
	f.Add(uint8(1), []byte(`{"action":"accept","content":{"audience":"users"}}`))
	f.Add(uint8(1), []byte(`{"action":"decline"}`))
	f.Add(uint8(2), []byte(`{"action":"cancel"}`))
	f.Add(uint8(3), []byte(`{"role":"assistant","content":{"type":"text","text":"A summary."},"model":"m"}`))
	f.Add(uint8(4), []byte(`{"roots":[{"uri":"file:///tmp","name":"tmp"}]}`))
	f.Add(uint8(5), []byte(`{"message":"Delete notes.txt?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean"}}}}`))
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		if int(which)%(len(exampleQuestions)+1) == len(exampleQuestions) {
			// The guest's params for each method, decoded for go-sdk.
			for _, m := range []string{abi.MethodElicit, abi.MethodSample, abi.MethodListRoots} {
				got := mcpInputRequests(map[string]abi.InputRequest{"k": {Method: m, Params: raw}})
				if len(got) > 1 {
					t.Fatalf("one question became %d", len(got))
				}
			}
			return
		}
		q := exampleQuestions[int(which)%len(exampleQuestions)]
		err := validAnswer(context.Background(), 0, q, raw)
		if err != nil {
			clearError(t, "answer", err.Error())
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			t.Fatalf("accepted an answer that is not an object: %q", raw)
		}
		if q.Method == abi.MethodElicit {
			var res struct {
				Action string `json:"action"`
			}
			if json.Unmarshal(raw, &res) != nil || res.Action != "accept" && res.Action != "decline" && res.Action != "cancel" {
				t.Fatalf("accepted an elicitation answer with action %q", res.Action)
			}
		}
	})
}
