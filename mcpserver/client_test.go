package mcpserver_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// wireClient is a JSON-RPC peer speaking raw MCP messages, so that tests see
// exactly what a client sees, including what go-sdk's client does not model
// (the 2025-11-25 tasks methods).
type wireClient struct {
	t   *testing.T
	w   io.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	nextID  int
	waiting map[string]chan message

	// Requests from the server (elicitation/create…) and notifications.
	requests      chan message
	notifications chan message
	// orphans are responses with a null id: errors for unreadable input.
	orphans chan message
}

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`

	seq int // arrival order among everything the server wrote
}

func newWireClient(t *testing.T, r io.Reader, w io.Writer) *wireClient {
	c := &wireClient{
		t: t, w: w,
		waiting:       map[string]chan message{},
		requests:      make(chan message, 64),
		notifications: make(chan message, 1024),
		orphans:       make(chan message, 16),
	}
	go c.read(r)
	return c
}

func (c *wireClient) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for seq := 0; sc.Scan(); seq++ {
		m := message{seq: seq}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			c.t.Errorf("server wrote a line that is not JSON: %q", sc.Text())
			continue
		}
		switch {
		case m.Method == "ping" && m.ID != nil:
			c.reply(m, map[string]any{}) // as every client must
		case m.Method != "" && m.ID != nil:
			c.requests <- m
		case m.Method != "":
			c.notifications <- m
		case string(m.ID) == "null":
			c.orphans <- m
		default:
			c.mu.Lock()
			ch := c.waiting[string(m.ID)]
			delete(c.waiting, string(m.ID))
			c.mu.Unlock()
			if ch == nil {
				c.t.Errorf("response to unknown id %s", m.ID)
				continue
			}
			ch <- m
		}
	}
}

func (c *wireClient) writeLine(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeRaw(data)
}

func (c *wireClient) writeRaw(line []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(append(line, '\n')); err != nil {
		c.t.Errorf("write to server: %v", err)
	}
}

// waitFor returns a channel for the response to a request the test wrote
// by hand with the given id.
func (c *wireClient) waitFor(id string) <-chan message {
	ch := make(chan message, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	return ch
}

// send issues a request and returns a channel for its response.
func (c *wireClient) send(method string, params any) <-chan message {
	c.mu.Lock()
	c.nextID++
	id := fmt.Sprint(c.nextID)
	ch := make(chan message, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	c.writeLine(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": method, "params": params})
	return ch
}

// call issues a request and waits for its response.
func (c *wireClient) call(method string, params any) message {
	c.t.Helper()
	return c.await(c.send(method, params), method)
}

// wireWait bounds every wait for the server. A tool's first call compiles
// its plugin (the catalog lists it from its description cache), which with
// a cold compilation cache, the race detector and a busy 2-core machine
// has taken over 30 s.
const wireWait = 2 * time.Minute

func (c *wireClient) await(ch <-chan message, what string) message {
	c.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wireWait):
		c.t.Fatalf("no response to %s within %v", what, wireWait)
		return message{}
	}
}

// result calls and decodes a successful result into out.
func (c *wireClient) result(method string, params, out any) {
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

func (c *wireClient) notify(method string, params any) {
	c.writeLine(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (c *wireClient) reply(req message, result any) {
	c.writeLine(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
}

// nextRequest waits for the server's next request to the client.
func (c *wireClient) nextRequest() message {
	c.t.Helper()
	select {
	case m := <-c.requests:
		return m
	case <-time.After(wireWait):
		c.t.Fatalf("no request from the server within %v", wireWait)
		return message{}
	}
}

// waitNotification waits for a notification matching ok, skipping others.
func (c *wireClient) waitNotification(ok func(message) bool) message {
	c.t.Helper()
	deadline := time.After(wireWait)
	for {
		select {
		case m := <-c.notifications:
			if ok(m) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("expected notification did not arrive within %v", wireWait)
			return message{}
		}
	}
}

func (c *wireClient) initialize(version string, caps map[string]any) {
	c.t.Helper()
	c.result("initialize", map[string]any{
		"protocolVersion": version,
		"capabilities":    caps,
		"clientInfo":      map[string]any{"name": "wire-test", "version": "0"},
	}, nil)
	c.notify("notifications/initialized", map[string]any{})
}
