package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/gobuild"
	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
	"github.com/wasmhost/wasmhost/worker"
)

// fixture is one wasmhost front end with in-process workers serving the
// example plugins, and one raw client connected to it.
type fixture struct {
	*wireClient
	store tasks.Store
	in    io.Closer // the server's stdin
}

var (
	catalogOnce sync.Once
	catalog     *host.Catalog
	catalogErr  error
)

// sharedCatalog builds and loads ../plugins once per test binary; builds are
// cached across runs by content.
func sharedCatalog(t *testing.T) *host.Catalog {
	t.Helper()
	catalogOnce.Do(func() {
		ctx := context.Background()
		cache := filepath.Join(os.TempDir(), "wasmhost-test-cache")
		logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn})
		rt, err := host.New(ctx, host.Options{CacheDir: filepath.Join(cache, "compile"), Logger: logger})
		if err != nil {
			catalogErr = err
			return
		}
		catalog, catalogErr = host.OpenCatalog(ctx, rt, "../plugins", host.CatalogOptions{
			Logger:  logger,
			Builder: &gobuild.Builder{CacheDir: filepath.Join(cache, "build"), Logger: logger},
		})
	})
	if catalogErr != nil {
		t.Fatalf("load example plugins: %v", catalogErr)
	}
	return catalog
}

// testStateKey seals requestState in every test server, as front ends
// sharing a store share one key (tasks.Redis.SharedKey).
var testStateKey = []byte("wasmhost-test-request-state-key!")

// newServer starts a front end and one worker slot over the example
// plugins; t's cleanup stops them after ctx's users (closed first).
func newServer(t *testing.T, store tasks.Store, tune ...func(*mcpserver.Options)) (context.Context, *mcpserver.Server, *sync.WaitGroup) {
	t.Helper()
	cat := sharedCatalog(t)
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Warn, Name: t.Name()})
	opts := mcpserver.Options{Catalog: cat, Store: store, Logger: logger, StateKey: testStateKey}
	for _, f := range tune {
		f(&opts)
	}
	srv, err := mcpserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	w := worker.New(worker.Options{Store: store, Tools: cat, Logger: logger, Concurrency: 1})
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	return ctx, srv, wg
}

// newFixture connects a raw stdio client to a new front end.
func newFixture(t *testing.T, store tasks.Store, tune ...func(*mcpserver.Options)) *fixture {
	t.Helper()
	if store == nil {
		store = tasks.NewMemory()
	}
	ctx, srv, wg := newServer(t, store, tune...)
	clientR, serverW := io.Pipe()
	serverR, clientW := io.Pipe()
	wg.Go(func() {
		_ = srv.ServeStdio(ctx, serverR, serverW)
		serverW.Close()
	})
	t.Cleanup(func() { clientW.Close() }) // runs before newServer's cleanup
	return &fixture{wireClient: newWireClient(t, clientR, clientW), store: store, in: clientW}
}

type toolResult struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	IsError bool            `json:"isError"`
	Meta    map[string]any  `json:"_meta"`
	Struct  json.RawMessage `json:"structuredContent"`
}

func (r toolResult) text() string {
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

type wireTask struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	TTL           int64  `json:"ttl"`
	PollInterval  int64  `json:"pollInterval"`
}

var elicitingClient = map[string]any{"elicitation": map[string]any{}}

func TestInitializeDeclaresTasksAndTaskSupport(t *testing.T) {
	f := newFixture(t, nil)
	var init struct {
		Capabilities struct {
			Tasks struct {
				Requests struct {
					Tools struct {
						Call *struct{} `json:"call"`
					} `json:"tools"`
				} `json:"requests"`
				Cancel *struct{} `json:"cancel"`
				List   *struct{} `json:"list"`
			} `json:"tasks"`
		} `json:"capabilities"`
		ProtocolVersion string `json:"protocolVersion"`
	}
	f.result("initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "t", "version": "0"},
	}, &init)
	if init.ProtocolVersion != "2025-11-25" {
		t.Errorf("protocolVersion = %q", init.ProtocolVersion)
	}
	caps := init.Capabilities.Tasks
	if caps.Requests.Tools.Call == nil || caps.Cancel == nil || caps.List == nil {
		t.Errorf("tasks capability incomplete: %+v", caps)
	}
	f.notify("notifications/initialized", map[string]any{})

	var list struct {
		Tools []struct {
			Name      string `json:"name"`
			Execution struct {
				TaskSupport string `json:"taskSupport"`
			} `json:"execution"`
		} `json:"tools"`
	}
	f.result("tools/list", map[string]any{}, &list)
	want := map[string]string{
		"greet": "forbidden", "slow_compute": "optional", "failing_job": "optional",
		"protocol_error_job": "optional", "confirm_delete": "optional", "multi_input": "optional",
	}
	got := map[string]string{}
	for _, tool := range list.Tools {
		got[tool.Name] = tool.Execution.TaskSupport
	}
	for name, support := range want {
		if got[name] != support {
			t.Errorf("tool %s: taskSupport %q, want %q", name, got[name], support)
		}
	}
}

func TestSyncCalls(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-06-18", nil)

	var res toolResult
	f.result("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": "Ada"}}, &res)
	if res.IsError || res.text() != "Hello, Ada!" {
		t.Errorf("greet = %+v", res)
	}

	f.result("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": 5}}, &res)
	if !res.IsError || !strings.Contains(res.text(), "name") {
		t.Errorf("greet with a number: want isError naming the field, got %+v", res)
	}

	f.result("tools/call", map[string]any{"name": "failing_job", "arguments": map[string]any{}}, &res)
	if !res.IsError {
		t.Errorf("failing_job: want isError, got %+v", res)
	}

	m := f.call("tools/call", map[string]any{"name": "protocol_error_job", "arguments": map[string]any{}})
	if m.Error == nil || !strings.Contains(m.Error.Message, "protocol_error_job") {
		t.Errorf("protocol_error_job: want a JSON-RPC error naming the tool, got %+v", m)
	}

	m = f.call("tools/call", map[string]any{"name": "no_such_tool", "arguments": map[string]any{}})
	if m.Error == nil || m.Error.Code != -32602 || !strings.Contains(m.Error.Message, "no_such_tool") {
		t.Errorf("unknown tool: got %+v", m)
	}

	// The server survives all of that, and lines that are not JSON-RPC.
	f.writeRaw([]byte(`{"jsonrpc":"2.0","id":99,"method":`))
	if m := f.await(f.orphans, "a truncated line"); m.Error == nil || m.Error.Code != -32700 {
		t.Errorf("truncated JSON: want a -32700 parse error, got %+v", m)
	}
	reply := f.waitFor("98")
	f.writeRaw([]byte(`{"jsonrpc":"2.0","id":98,"method":42}`))
	if m := f.await(reply, "a request whose method is not a string"); m.Error == nil || m.Error.Code != -32600 {
		t.Errorf("method not a string: want -32600, got %+v", m)
	}
	f.result("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": "again"}}, &res)
	if res.text() != "Hello, again!" {
		t.Errorf("greet after bad input = %+v", res)
	}
}

func TestSyncElicitation(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-06-18", elicitingClient)

	pending := f.send("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "a.txt"}})
	req := f.nextRequest()
	if req.Method != "elicitation/create" {
		t.Fatalf("server asked %s, want elicitation/create", req.Method)
	}
	if strings.Contains(string(req.Params), "related-task") {
		t.Errorf("a plain call's elicitation must not name a task: %s", req.Params)
	}
	f.reply(req, map[string]any{"action": "accept", "content": map[string]any{"confirm": true}})
	var res toolResult
	if err := json.Unmarshal(f.await(pending, "confirm_delete").Result, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.text(), "Not deleted a.txt: plugin confirm may not use directory /files: not granted") {
		t.Errorf("confirm_delete = %q, want Not deleted a.txt (not granted)", res.text())
	}
}

func TestNoElicitationCapabilityNeverHangs(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-06-18", nil)
	var res toolResult
	f.result("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "a.txt"}}, &res)
	if res.text() != "Kept a.txt" {
		t.Errorf("confirm_delete without elicitation = %q, want Kept a.txt", res.text())
	}
}

// createTask starts tool as a 2025-11-25 task and returns its id.
func (f *fixture) createTask(tool string, args any) string {
	f.t.Helper()
	var created struct {
		Task wireTask `json:"task"`
	}
	f.result("tools/call", map[string]any{"name": tool, "arguments": args, "task": map[string]any{"ttl": 60000}}, &created)
	if created.Task.TaskID == "" || created.Task.Status != "working" {
		f.t.Fatalf("CreateTaskResult = %+v", created)
	}
	return created.Task.TaskID
}

func statusIs(id, status string) func(message) bool {
	return func(m message) bool {
		if m.Method != "notifications/tasks/status" {
			return false
		}
		var p wireTask
		return json.Unmarshal(m.Params, &p) == nil && p.TaskID == id && p.Status == status
	}
}

func TestTaskElicitationAcceptAndDecline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer map[string]any
		want   string // in the result text
		status string // final status a 2025-11-25 client sees
	}{
		{"accept", map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}, "Not deleted a.txt", "completed"},
		{"accept-false", map[string]any{"action": "accept", "content": map[string]any{"confirm": false}}, "Kept a.txt", "completed"},
		{"decline", map[string]any{"action": "decline"}, "Kept a.txt", "completed"},
		{"cancel", map[string]any{"action": "cancel"}, "Kept a.txt", "completed"},
		// An answer that violates requestedSchema is refused; the guest
		// hears why and reports it as a tool error.
		{"invalid", map[string]any{"action": "accept", "content": map[string]any{"confirm": "yes please"}}, "does not match requested schema", "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.initialize("2025-11-25", elicitingClient)
			id := f.createTask("confirm_delete", map[string]any{"filename": "a.txt"})

			req := f.nextRequest()
			if req.Method != "elicitation/create" {
				t.Fatalf("server asked %s", req.Method)
			}
			var p struct {
				Meta map[string]struct {
					TaskID string `json:"taskId"`
				} `json:"_meta"`
			}
			_ = json.Unmarshal(req.Params, &p)
			if p.Meta["io.modelcontextprotocol/related-task"].TaskID != id {
				t.Errorf("elicitation/create lacks related-task %s: %s", id, req.Params)
			}
			f.waitNotification(statusIs(id, "input_required"))
			var got wireTask
			f.result("tasks/get", map[string]any{"taskId": id}, &got)
			if got.Status != "input_required" {
				t.Errorf("tasks/get while waiting: %s", got.Status)
			}

			f.reply(req, tc.answer)
			var res toolResult
			f.result("tasks/result", map[string]any{"taskId": id}, &res)
			if !strings.Contains(res.text(), tc.want) {
				t.Errorf("result %q, want it to contain %q", res.text(), tc.want)
			}
			if m, _ := res.Meta["io.modelcontextprotocol/related-task"].(map[string]any); m["taskId"] != id {
				t.Errorf("tasks/result lacks related-task meta: %v", res.Meta)
			}
			f.waitNotification(statusIs(id, tc.status))
		})
	}
}

func TestTaskMultiInputAsksBothAtOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-11-25", elicitingClient)
	id := f.createTask("multi_input", map[string]any{})
	first, second := f.nextRequest(), f.nextRequest() // both arrive before either is answered
	for _, req := range []message{first, second} {
		switch {
		case strings.Contains(string(req.Params), "colour"):
			f.reply(req, map[string]any{"action": "accept", "content": map[string]any{"colour": "green"}})
		default:
			f.reply(req, map[string]any{"action": "accept", "content": map[string]any{"name": "Grace"}})
		}
	}
	var res toolResult
	f.result("tasks/result", map[string]any{"taskId": id}, &res)
	if !strings.Contains(res.text(), "Grace") || !strings.Contains(res.text(), "green") {
		t.Errorf("multi_input result %q lacks an answer", res.text())
	}
}

func TestTaskCancelStopsGuest(t *testing.T) {
	f := newFixture(t, nil) // one worker slot: see the end
	f.initialize("2025-11-25", nil)
	id := f.createTask("slow_compute", map[string]any{"seconds": 600})
	var cancelled wireTask
	f.result("tasks/cancel", map[string]any{"taskId": id}, &cancelled)
	if cancelled.Status != "cancelled" {
		t.Errorf("tasks/cancel returned status %s", cancelled.Status)
	}
	f.waitNotification(statusIs(id, "cancelled"))
	m := f.call("tasks/cancel", map[string]any{"taskId": id})
	if m.Error == nil || m.Error.Code != -32602 {
		t.Errorf("cancelling a cancelled task: want -32602, got %+v", m)
	}
	// The fixture's worker runs one guest at a time: greet can only answer
	// once the cancelled guest has really stopped.
	var res toolResult
	f.result("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": "next"}}, &res)
	if res.text() != "Hello, next!" {
		t.Errorf("greet after cancel = %+v", res)
	}
}

func TestTaskOutcomes(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-11-25", nil)

	id := f.createTask("failing_job", map[string]any{})
	var res toolResult
	f.result("tasks/result", map[string]any{"taskId": id}, &res)
	if !res.IsError {
		t.Errorf("failing_job: tasks/result must return the isError result, got %+v", res)
	}
	var got wireTask
	f.result("tasks/get", map[string]any{"taskId": id}, &got)
	if got.Status != "failed" || got.StatusMessage == "" {
		t.Errorf("failing_job: 2025-11-25 reports a tool error as failed with its message, got %+v", got)
	}

	id = f.createTask("protocol_error_job", map[string]any{})
	m := f.call("tasks/result", map[string]any{"taskId": id})
	if m.Error == nil {
		t.Errorf("protocol_error_job: tasks/result must be an error, got %s", m.Result)
	}
	f.result("tasks/get", map[string]any{"taskId": id}, &got)
	if got.Status != "failed" || got.StatusMessage == "" {
		t.Errorf("protocol_error_job: %+v, want failed with a message", got)
	}

	var list struct {
		Tasks []wireTask `json:"tasks"`
	}
	f.result("tasks/list", map[string]any{}, &list)
	if len(list.Tasks) != 2 {
		t.Errorf("tasks/list has %d tasks, want 2", len(list.Tasks))
	}
}

func TestUnknownAndForeignTaskIDs(t *testing.T) {
	store := tasks.NewMemory()
	f := newFixture(t, store)
	f.initialize("2025-11-25", nil)
	now := time.Now()
	foreign := &tasks.Task{ID: tasks.NewID(), Kind: tasks.KindTask, Owner: "someone-else", Tool: "greet", Status: tasks.Working, TTL: time.Minute, CreatedAt: now, UpdatedAt: now}
	if err := store.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"no-such-task", foreign.ID} {
		for _, method := range []string{"tasks/get", "tasks/result", "tasks/cancel"} {
			m := f.call(method, map[string]any{"taskId": id})
			if m.Error == nil || m.Error.Code != -32602 || !strings.Contains(m.Error.Message, "not found") {
				t.Errorf("%s %s: want -32602 not found, got %+v", method, id, m)
			}
		}
	}
}

// TestWaitingGuestDoesNotHoldTheWorker: the fixture's worker runs one guest
// at a time, yet a guest waiting for its client's answer lets others run.
func TestWaitingGuestDoesNotHoldTheWorker(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-11-25", elicitingClient)
	id := f.createTask("confirm_delete", map[string]any{"filename": "a.txt"})
	req := f.nextRequest() // the guest now waits for a person

	var res toolResult
	f.result("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": "meanwhile"}}, &res)
	if res.text() != "Hello, meanwhile!" {
		t.Errorf("greet while another guest waits = %+v", res)
	}
	f.reply(req, map[string]any{"action": "accept", "content": map[string]any{"confirm": true}})
	f.result("tasks/result", map[string]any{"taskId": id}, &res)
	if !strings.HasPrefix(res.text(), "Not deleted a.txt") {
		t.Errorf("the waiting guest, resumed: %q", res.text())
	}
}

// TestRequestsSentBeforeInputEndsAreAnswered: a client that writes its
// requests and closes its end of stdin still gets the answers.
func TestRequestsSentBeforeInputEndsAreAnswered(t *testing.T) {
	f := newFixture(t, nil)
	f.initialize("2025-11-25", nil)
	pending := f.send("tools/call", map[string]any{"name": "greet", "arguments": map[string]any{"name": "last"}})
	f.in.Close()
	var res toolResult
	if err := json.Unmarshal(f.await(pending, "a call sent before stdin closed").Result, &res); err != nil || res.text() != "Hello, last!" {
		t.Errorf("got %+v, %v", res, err)
	}
}
