package mcpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/mcpserver"
	"github.com/wasmhost/wasmhost/tasks"
)

// sseEvent is one server-sent event: its id and its JSON-RPC message.
type sseEvent struct {
	id  string
	msg message
}

// readEvents parses an SSE body into ch until it ends.
func readEvents(body io.Reader, ch chan<- sseEvent) {
	defer close(ch)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var ev sseEvent
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				_ = json.Unmarshal(data, &ev.msg)
				ch <- ev
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: ")...)
		}
	}
}

// httpSession is a raw 2025-11-25 Streamable HTTP session.
type httpSession struct {
	t   *testing.T
	url string
	id  string
	seq int
}

// post sends one message and returns the response events.
func (h *httpSession) post(method string, params any, call bool) []sseEvent {
	h.t.Helper()
	msg := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if call {
		h.seq++
		msg["id"] = h.seq
	}
	body, _ := json.Marshal(msg)
	req, _ := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if h.id != "" {
		req.Header.Set("Mcp-Session-Id", h.id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("%s: HTTP %d %s", method, resp.StatusCode, b)
	}
	if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
		h.id = id
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var m message
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return []sseEvent{{msg: m}}
	}
	ch := make(chan sseEvent, 64)
	readEvents(resp.Body, ch)
	var out []sseEvent
	for ev := range ch {
		out = append(out, ev)
	}
	return out
}

// listen opens the session's standalone stream, resuming after lastID
// when it is not empty.
func (h *httpSession) listen(ctx context.Context, lastID string) <-chan sseEvent {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Mcp-Session-Id", h.id)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET: HTTP %d", resp.StatusCode)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer resp.Body.Close()
		readEvents(resp.Body, ch)
	}()
	return ch
}

// initialize opens the session (2025-11-25, no client capabilities).
func (h *httpSession) initialize() {
	h.post("initialize", map[string]any{"protocolVersion": "2025-11-25", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "0"}}, true)
	h.post("notifications/initialized", map[string]any{}, false)
}

// startProgressTask starts slow_compute for two seconds as a task whose
// progress (once a second) goes to the session's standalone stream, and
// returns its id.
func (h *httpSession) startProgressTask() string {
	h.t.Helper()
	created := h.post("tools/call", map[string]any{
		"name": "slow_compute", "arguments": map[string]any{"seconds": 2},
		"task": map[string]any{"ttl": 60000}, "_meta": map[string]any{"progressToken": "p"},
	}, true)
	var res struct {
		Task struct{ TaskID string } `json:"task"`
	}
	if err := json.Unmarshal(created[len(created)-1].msg.Result, &res); err != nil || res.Task.TaskID == "" {
		h.t.Fatalf("tools/call: %+v", created)
	}
	return res.Task.TaskID
}

func nextEvent(t *testing.T, ch <-chan sseEvent, ok func(sseEvent) bool) sseEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatal("the stream ended")
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("no matching event within 30s")
		}
	}
}

func isProgress(n float64) func(sseEvent) bool {
	return func(ev sseEvent) bool {
		var p struct{ Progress float64 }
		return ev.msg.Method == "notifications/progress" && json.Unmarshal(ev.msg.Params, &p) == nil && p.Progress == n
	}
}

// A client whose standalone stream drops reconnects with Last-Event-ID and
// gets exactly what was sent meanwhile, from the in-memory event store and
// from the Redis one.
func TestHTTPStreamResumes(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			store := storeFor(t, name)
			_, srv, _ := newServer(t, store)
			var events mcp.EventStore
			if r, ok := store.(*tasks.Redis); ok {
				events = r.EventStore(tasks.StreamRetention{})
			}
			hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{EventStore: events}))
			t.Cleanup(hs.Close)
			h := &httpSession{t: t, url: hs.URL}
			h.initialize()

			ctx, drop := context.WithCancel(context.Background())
			defer drop()
			stream := h.listen(ctx, "")
			taskID := h.startProgressTask()
			first := nextEvent(t, stream, isProgress(1))
			if first.id == "" {
				t.Fatal("the event has no id to resume from")
			}
			drop() // the connection is lost

			// tasks/result returns once the task's notifications went out.
			h.post("tasks/result", map[string]any{"taskId": taskID}, true)

			rctx, stop := context.WithCancel(context.Background())
			defer stop() // before the server's cleanup, which waits for open requests
			resumed := h.listen(rctx, first.id)
			second := nextEvent(t, resumed, func(ev sseEvent) bool { return ev.id != "" })
			if !isProgress(2)(second) {
				t.Fatalf("first event after resuming: %+v, want progress 2", second)
			}
		})
	}
}

// A front end that goes away takes nothing with it: the client's session,
// its tasks and what it missed on its stream are there on another front
// end sharing the Redis (after a restart, or behind a load balancer without
// sticky sessions).
func TestHTTPSessionMovesToAnotherFrontEnd(t *testing.T) {
	store := storeFor(t, "redis")
	r := store.(*tasks.Redis)
	serve := func() *httptest.Server {
		_, srv, _ := newServer(t, store)
		hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{EventStore: r.EventStore(tasks.StreamRetention{}), Sessions: r}))
		t.Cleanup(hs.Close)
		return hs
	}
	a, b := serve(), serve()

	h := &httpSession{t: t, url: a.URL}
	h.initialize()
	ctx, drop := context.WithCancel(context.Background())
	defer drop()
	stream := h.listen(ctx, "")
	taskID := h.startProgressTask()
	first := nextEvent(t, stream, isProgress(1))
	drop()
	h.post("tasks/result", map[string]any{"taskId": taskID}, true)
	a.Close() // front end A is gone

	h.url = b.URL
	got := h.post("tasks/get", map[string]any{"taskId": taskID}, true)
	var task wireTask
	if m := got[len(got)-1].msg; m.Error != nil || json.Unmarshal(m.Result, &task) != nil || task.Status != "completed" {
		t.Fatalf("tasks/get on the other front end: %+v", got)
	}
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	resumed := h.listen(rctx, first.id)
	second := nextEvent(t, resumed, func(ev sseEvent) bool { return ev.id != "" })
	if !isProgress(2)(second) {
		t.Fatalf("first event after resuming on the other front end: %+v, want progress 2", second)
	}
}

// releaseNotes calls release_notes (whose guest logs at info) and returns
// the log levels of the notifications/message that came before its result.
func releaseNotes(t *testing.T, h *httpSession) []string {
	t.Helper()
	events := h.post("tools/call", map[string]any{
		"name":      "release_notes",
		"arguments": map[string]any{"version": "v1", "commits": []string{"feat: a"}, "audience": "developers"},
	}, true)
	if m := events[len(events)-1].msg; m.Error != nil || m.Result == nil {
		t.Fatalf("tools/call: %+v", events)
	}
	var levels []string
	for _, ev := range events {
		var p struct{ Level string }
		if ev.msg.Method == "notifications/message" && json.Unmarshal(ev.msg.Params, &p) == nil {
			levels = append(levels, p.Level)
		}
	}
	return levels
}

// A client's log level moves with its session: set on front end A, it holds
// on front end B once A is gone, in wasmhost's filter and go-sdk's alike,
// without the client setting it again.
func TestHTTPSessionKeepsLogLevelOnAnotherFrontEnd(t *testing.T) {
	for level, want := range map[string]bool{"info": true, "error": false} {
		t.Run(level, func(t *testing.T) {
			store := storeFor(t, "redis")
			r := store.(*tasks.Redis)
			serve := func() *httptest.Server {
				_, srv, _ := newServer(t, store)
				hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{EventStore: r.EventStore(tasks.StreamRetention{}), Sessions: r}))
				t.Cleanup(hs.Close)
				return hs
			}
			a, b := serve(), serve()

			h := &httpSession{t: t, url: a.URL}
			h.initialize()
			h.post("logging/setLevel", map[string]any{"level": level}, true)
			a.Close() // front end A is gone

			h.url = b.URL
			levels := releaseNotes(t, h)
			if got := slices.Contains(levels, "info"); got != want {
				t.Fatalf("level %s set on A: B sent log lines at %v, want an info line %v", level, levels, want)
			}
		})
	}
}

// The kept session record is hostile input: one too large, malformed or
// carrying a header-breaking protocol version is not taken over (404, the
// client starts afresh); an unknown log level is ignored (no log lines).
func TestHTTPSessionTakeoverChecksKeptRecord(t *testing.T) {
	store := storeFor(t, "redis")
	r := store.(*tasks.Redis)
	_, srv, _ := newServer(t, store)
	hs := httptest.NewServer(srv.HTTPHandler(mcpserver.HTTPOptions{EventStore: r.EventStore(tasks.StreamRetention{}), Sessions: r}))
	t.Cleanup(hs.Close)
	init := `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}`
	ctx := context.Background()

	for i, record := range []string{
		`not json`,
		`{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}`, // bare params: no initialize
		`{"initialize":"2025-11-25"}`,
		`{"initialize":{"protocolVersion":"2025-11-25\r\nX-Injected: 1","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`,
		`{"initialize":` + init + `,"logLevel":"info","pad":"` + strings.Repeat("x", 64<<10) + `"}`,
	} {
		id := fmt.Sprintf("HOSTILE%d", i)
		if err := r.SaveSession(ctx, id, []byte(record), time.Minute); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		req.Header.Set("Mcp-Session-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("record %d: HTTP %d, want 404", i, resp.StatusCode)
		}
	}

	if err := r.SaveSession(ctx, "UNKNOWNLEVEL", []byte(`{"initialize":`+init+`,"logLevel":"verbose\"}"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	h := &httpSession{t: t, url: hs.URL, id: "UNKNOWNLEVEL"}
	if levels := releaseNotes(t, h); len(levels) != 0 {
		t.Fatalf("a kept unknown log level let log lines through: %v", levels)
	}
}
