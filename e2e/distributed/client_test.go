package distributed_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// client is a raw JSON-RPC MCP client over a stdio front end's pipes, so
// that the tests see exactly what a client sees, including the 2025-11-25
// tasks methods no Go SDK models.
type client struct {
	t    testing.TB
	name string
	w    io.Writer
	wmu  sync.Mutex

	mu      sync.Mutex
	nextID  int
	waiting map[string]chan message

	requests      chan message // server → client requests (elicitation/create)
	notifications chan message
	closed        chan struct{} // the server's stdout ended
}

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func newClient(t testing.TB, name string, r io.Reader, w io.Writer) *client {
	c := &client{
		t: t, name: name, w: w,
		waiting:       map[string]chan message{},
		requests:      make(chan message, 64),
		notifications: make(chan message, 4096),
		closed:        make(chan struct{}),
	}
	go c.read(r)
	return c
}

func (c *client) read(r io.Reader) {
	defer close(c.closed)
	sc := scanLines(r)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.t.Errorf("%s wrote a line that is not JSON: %q", c.name, sc.Text())
			continue
		}
		switch {
		case m.Method != "" && m.ID != nil:
			c.requests <- m
		case m.Method != "":
			select {
			case c.notifications <- m:
			default: // nobody reads them in this test
			}
		default:
			c.mu.Lock()
			ch := c.waiting[string(m.ID)]
			delete(c.waiting, string(m.ID))
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

func (c *client) write(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(append(data, '\n')); err != nil {
		c.t.Logf("write to %s: %v", c.name, err)
	}
}

// send issues a request and returns a channel for its response.
func (c *client) send(method string, params any) <-chan message {
	c.mu.Lock()
	c.nextID++
	id := fmt.Sprint(c.nextID)
	ch := make(chan message, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	c.write(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": method, "params": params})
	return ch
}

func (c *client) await(ch <-chan message, what string) message {
	c.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-c.closed:
		c.t.Fatalf("%s: %s closed the connection", what, c.name)
	case <-time.After(timeout):
		c.t.Fatalf("%s: no response from %s within %s", what, c.name, timeout)
	}
	return message{}
}

// call sends a request and waits for its response.
func (c *client) call(method string, params any) message {
	c.t.Helper()
	return c.await(c.send(method, params), method)
}

// result calls and decodes a successful result into out.
func (c *client) result(method string, params, out any) {
	c.t.Helper()
	m := c.call(method, params)
	if m.Error != nil {
		c.t.Fatalf("%s: error %d %s", method, m.Error.Code, m.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(m.Result, out); err != nil {
			c.t.Fatalf("%s: decode %s: %v", method, m.Result, err)
		}
	}
}

func (c *client) reply(req message, result any) {
	c.write(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
}

// nextRequest waits for the server's next request to the client.
func (c *client) nextRequest(what string) message {
	c.t.Helper()
	select {
	case m := <-c.requests:
		return m
	case <-time.After(timeout):
		c.t.Fatalf("%s: no request from %s within %s", what, c.name, timeout)
	}
	return message{}
}

// waitNotification waits for a notification matching ok, skipping others.
func (c *client) waitNotification(what string, ok func(message) bool) message {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-c.notifications:
			if ok(m) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("%s: no such notification from %s within %s", what, c.name, timeout)
			return message{}
		}
	}
}

// initialize performs the handshake for protocol version with capabilities.
func (c *client) initialize(version string, caps map[string]any) {
	c.t.Helper()
	c.result("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    caps,
		"clientInfo":      map[string]any{"name": "distributed-test", "version": "0"},
	}, nil)
	c.write(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized", "params": map[string]any{}})
}

var elicits = map[string]any{"elicitation": map[string]any{}}

// wireTask is a task as 2025-11-25 clients see it.
type wireTask struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
}

// startTask calls tool as a task (2025-11-25) and returns the task id.
func (c *client) startTask(tool string, args any) string {
	c.t.Helper()
	var created struct {
		Task wireTask `json:"task"`
	}
	c.result("tools/call", map[string]any{
		"name": tool, "arguments": args, "task": map[string]any{"ttl": 600000},
		"_meta": map[string]any{"progressToken": "progress-" + tool},
	}, &created)
	if created.Task.TaskID == "" || created.Task.Status != "working" {
		c.t.Fatalf("tools/call %s as a task: %+v", tool, created)
	}
	return created.Task.TaskID
}

func (c *client) getTask(id string) wireTask {
	c.t.Helper()
	var task wireTask
	c.result("tasks/get", map[string]any{"taskId": id}, &task)
	return task
}

// taskResult waits in tasks/result and returns the response.
func (c *client) taskResult(id string) message {
	c.t.Helper()
	return c.call("tasks/result", map[string]any{"taskId": id})
}

// toolResult is a CallToolResult.
type toolResult struct {
	Content []struct {
		Text string `json:"text"`
	} `json:"content"`
	IsError bool                       `json:"isError"`
	Struct  map[string]json.RawMessage `json:"structuredContent"`
	Meta    map[string]json.RawMessage `json:"_meta"`
}

func (r toolResult) text() string {
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

func decodeResult(t testing.TB, m message, what string) toolResult {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("%s: error %d %s", what, m.Error.Code, m.Error.Message)
	}
	var r toolResult
	if err := json.Unmarshal(m.Result, &r); err != nil {
		t.Fatalf("%s: %s: %v", what, m.Result, err)
	}
	return r
}

// relatedTask is the task id an elicitation/create names in its _meta.
func relatedTask(m message) string {
	var p struct {
		Meta map[string]struct {
			TaskID string `json:"taskId"`
		} `json:"_meta"`
	}
	_ = json.Unmarshal(m.Params, &p)
	return p.Meta["io.modelcontextprotocol/related-task"].TaskID
}

// statusOf reports the status a notifications/tasks/status gives task id.
func statusOf(id string) func(message) (string, bool) {
	return func(m message) (string, bool) {
		if m.Method != "notifications/tasks/status" {
			return "", false
		}
		var p wireTask
		if json.Unmarshal(m.Params, &p) != nil || p.TaskID != id {
			return "", false
		}
		return p.Status, true
	}
}

func (c *client) waitStatus(id, status string) {
	c.t.Helper()
	st := statusOf(id)
	c.waitNotification("task "+id+" "+status, func(m message) bool {
		s, ok := st(m)
		return ok && s == status
	})
}

// waitProgress waits for a progress notification about tool's task.
func (c *client) waitProgress(tool string) {
	c.t.Helper()
	c.waitNotification("progress of "+tool, func(m message) bool {
		return m.Method == "notifications/progress" && strings.Contains(string(m.Params), `"progress-`+tool+`"`)
	})
}

// modernCall is one 2026-07-28 request over stateless HTTP.
func modernCall(t testing.TB, endpoint, method string, params map[string]any) (map[string]any, *rpcError) {
	t.Helper()
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "distributed-test", "version": "0"},
		"io.modelcontextprotocol/clientCapabilities": elicits,
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if name, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", name)
	}
	hc := &http.Client{Timeout: timeout}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if i := bytes.Index(data, []byte("data: ")); i >= 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data = data[i+6:]
		if j := bytes.IndexByte(data, '\n'); j >= 0 {
			data = data[:j]
		}
	}
	var out struct {
		Result map[string]any `json:"result"`
		Error  *rpcError      `json:"error"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: reply %d %q is not JSON-RPC: %v", method, resp.StatusCode, data, err)
	}
	return out.Result, out.Error
}
