package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
)

// modernClient speaks the stateless 2026-07-28 wire over HTTP: one POST per
// request, protocol version and capabilities in every request's _meta.
type modernClient struct {
	t     *testing.T
	url   string
	caps  map[string]any
	id    int
	store tasks.Store // to wait on, instead of polling
}

// newHTTPFixture serves a new front end over HTTP.
func newHTTPFixture(t *testing.T, store tasks.Store) (string, tasks.Store) {
	t.Helper()
	if store == nil {
		store = tasks.NewMemory()
	}
	_, srv, _ := newServer(t, store)
	hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{}))
	t.Cleanup(hs.Close) // runs before newServer's cleanup
	return hs.URL, store
}

type rpcReply struct {
	status int
	Result map[string]any `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func (c *modernClient) call(method string, params map[string]any, headers ...string) rpcReply {
	c.t.Helper()
	c.id++
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "t", "version": "0"},
		"io.modelcontextprotocol/clientCapabilities": c.caps,
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if name, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", name)
	}
	if id, ok := params["taskId"].(string); ok {
		req.Header.Set("Mcp-Name", id)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	// The reply is JSON or one SSE event carrying it.
	if i := bytes.Index(data, []byte("data: ")); i >= 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data = data[i+6:]
		if j := bytes.IndexByte(data, '\n'); j >= 0 {
			data = data[:j]
		}
	}
	out := rpcReply{status: resp.StatusCode}
	if err := json.Unmarshal(data, &out); err != nil {
		c.t.Fatalf("%s: reply %d %q is not JSON-RPC: %v", method, resp.StatusCode, data, err)
	}
	return out
}

var (
	tasksCaps    = map[string]any{"elicitation": map[string]any{}, "extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}}
	elicitOnly   = map[string]any{"elicitation": map[string]any{}}
	acceptDelete = map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}
)

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

func TestModernMultiRoundTripResumesTheSameGuest(t *testing.T) {
	url, _ := newHTTPFixture(t, nil)
	c := &modernClient{t: t, url: url, caps: elicitOnly}
	args := map[string]any{"filename": "a.txt"}

	r1 := c.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args})
	if r1.Result["resultType"] != "input_required" {
		t.Fatalf("round 1: %+v, want input_required", r1)
	}
	reqs, _ := r1.Result["inputRequests"].(map[string]any)
	state, _ := r1.Result["requestState"].(string)
	if len(reqs) != 1 || state == "" {
		t.Fatalf("round 1: inputRequests %v, requestState %q", reqs, state)
	}
	key := firstKey(reqs)

	tampered := c.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
		"inputResponses": map[string]any{key: acceptDelete}, "requestState": state + "-TAMPERED"})
	if tampered.Error == nil || tampered.Error.Code != -32602 {
		t.Errorf("tampered requestState: %+v, want -32602", tampered)
	}

	r2 := c.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
		"inputResponses": map[string]any{key: acceptDelete}, "requestState": state})
	if r2.Result["resultType"] != "complete" || !strings.Contains(toJSON(r2.Result["content"]), "Not deleted a.txt") {
		t.Errorf("round 2: %+v, want Not deleted a.txt", r2)
	}
	// A retry with the last state (say the reply was lost) gets the same
	// result; the guest does not run again.
	again := c.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": args,
		"inputResponses": map[string]any{key: acceptDelete}, "requestState": state})
	if toJSON(again.Result["content"]) != toJSON(r2.Result["content"]) {
		t.Errorf("retry with a finished call's state: %+v, want the same result", again)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestModernTasksExtension(t *testing.T) {
	url, store := newHTTPFixture(t, nil)
	c := &modernClient{t: t, url: url, caps: tasksCaps, store: store}
	created := c.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "b.txt"}})
	if created.Result["resultType"] != "task" || created.Result["taskId"] == nil {
		t.Fatalf("tools/call with the extension: %+v, want a CreateTaskResult", created)
	}
	for _, k := range []string{"task", "ttl", "pollInterval", "inputRequests", "result"} {
		if _, ok := created.Result[k]; ok {
			t.Errorf("CreateTaskResult has %q", k)
		}
	}
	id := created.Result["taskId"].(string)

	// The question shows up on tasks/get; tasks/update answers it.
	got := c.waitStatus(id, "input_required")
	reqs, _ := got["inputRequests"].(map[string]any)
	if len(reqs) != 1 {
		t.Fatalf("inputRequests %v", got["inputRequests"])
	}
	ack := c.call("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{firstKey(reqs): acceptDelete, "unknown": map[string]any{}}})
	if ack.Error != nil || ack.Result["resultType"] != "complete" || len(ack.Result) > 2 {
		t.Errorf("tasks/update ack: %+v", ack)
	}
	done := c.waitStatus(id, "completed")
	if !strings.Contains(toJSON(done["result"]), "Not deleted b.txt") {
		t.Errorf("completed task result %v", done["result"])
	}

	// Removed and gated methods.
	for _, m := range []string{"tasks/result", "tasks/list"} {
		if r := c.call(m, map[string]any{"taskId": id}); r.Error == nil || r.Error.Code != -32601 {
			t.Errorf("%s on 2026-07-28: %+v, want -32601", m, r)
		}
	}
	plain := &modernClient{t: t, url: c.url, caps: map[string]any{}}
	if r := plain.call("tasks/get", map[string]any{"taskId": id}); r.Error == nil || r.Error.Code != -32021 || r.status != http.StatusBadRequest {
		t.Errorf("tasks/get without the extension: %d %+v, want 400 -32021", r.status, r)
	}
	if r := c.call("tasks/get", map[string]any{"taskId": id}, "Mcp-Name", "another-task"); r.Error == nil || r.Error.Code != -32020 {
		t.Errorf("Mcp-Name not the taskId: %+v, want -32020", r)
	}
	// Cancel is idempotent in SEP-2663.
	if r := c.call("tasks/cancel", map[string]any{"taskId": id}); r.Error != nil || r.Result["resultType"] != "complete" {
		t.Errorf("cancel of a finished task: %+v, want an ack", r)
	}
}

// waitStatus waits on the store until the task has status, then returns
// what tasks/get says.
func (c *modernClient) waitStatus(id, status string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := tasks.NewWatcher(ctx, c.store, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := w.Wait(ctx, id, func(t *tasks.Task) bool { return string(t.Status) == status || t.Status.Terminal() }); err != nil {
		c.t.Fatalf("task never reached %s: %v", status, err)
	}
	r := c.call("tasks/get", map[string]any{"taskId": id})
	if r.Error != nil || r.Result["status"] != status {
		c.t.Fatalf("tasks/get: %+v, want status %s", r, status)
	}
	return r.Result
}

func TestDNSRebindingProtection(t *testing.T) {
	url, _ := newHTTPFixture(t, nil)
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"evil.example.com", "", http.StatusForbidden},
		{"", "http://evil.example.com", http.StatusForbidden},
		{"", "http://localhost:1234", 0},
	} {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tc.want != 0 && resp.StatusCode != tc.want || tc.want == 0 && resp.StatusCode == http.StatusForbidden {
			t.Errorf("Host %q Origin %q: status %d, want %d", tc.host, tc.origin, resp.StatusCode, tc.want)
		}
	}
}

// TestBothGenerationsOnOneStore runs a 2025-11-25 client (stdio, server-to-
// client elicitation) and a 2026-07-28 client (HTTP, tasks extension) at
// once, through two front ends sharing one store and one set of workers'
// queue.
func TestBothGenerationsOnOneStore(t *testing.T) {
	store := tasks.NewMemory()
	old := newFixture(t, store)
	url, _ := newHTTPFixture(t, store)
	modern := &modernClient{t: t, url: url, caps: tasksCaps, store: store}
	old.initialize("2025-11-25", elicitingClient)

	oldID := old.createTask("confirm_delete", map[string]any{"filename": "old.txt"})
	created := modern.call("tools/call", map[string]any{"name": "confirm_delete", "arguments": map[string]any{"filename": "new.txt"}})
	newID, _ := created.Result["taskId"].(string)

	// The old client is asked directly; the new one reads its question.
	req := old.nextRequest()
	if !strings.Contains(string(req.Params), "old.txt") {
		t.Errorf("the 2025 client was asked %s", req.Params)
	}
	got := modern.waitStatus(newID, "input_required")
	reqs, _ := got["inputRequests"].(map[string]any)
	if !strings.Contains(toJSON(reqs), "new.txt") {
		t.Errorf("the 2026 client's question: %v", reqs)
	}
	old.reply(req, map[string]any{"action": "decline"})
	modern.call("tasks/update", map[string]any{"taskId": newID, "inputResponses": map[string]any{firstKey(reqs): acceptDelete}})

	var res toolResult
	old.result("tasks/result", map[string]any{"taskId": oldID}, &res)
	if res.text() != "Kept old.txt" {
		t.Errorf("2025 client's result %q", res.text())
	}
	if done := modern.waitStatus(newID, "completed"); !strings.Contains(toJSON(done["result"]), "Not deleted new.txt") {
		t.Errorf("2026 client's result %v", done["result"])
	}
}
