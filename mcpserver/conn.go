package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// metaTaskRequest is where the stdio connection moves the 2025-11-25 "task"
// field of tools/call params, because go-sdk's CallToolParamsRaw has no
// such field and would drop it. See docs/protocol.md.
const metaTaskRequest = "io.github.wasmhost/task"

// maxLine caps one JSON-RPC message on stdio.
const maxLine = 16 << 20

// stdioTransport is MCP's stdio transport (newline-delimited JSON-RPC),
// written here rather than taken from go-sdk for three reasons:
//   - a line that is not JSON-RPC gets a -32700 error response and the
//     session goes on; go-sdk's decoder cannot resynchronise and ends it;
//   - the task field of tools/call must survive decoding (see
//     metaTaskRequest);
//   - notifications/tasks/status must be sent, and go-sdk has no API for
//     custom notifications.
type stdioTransport struct {
	in   io.Reader
	out  io.Writer
	conn *stdioConn // set by Connect
}

func (t *stdioTransport) Connect(context.Context) (mcp.Connection, error) {
	t.conn = &stdioConn{out: t.out, lines: make(chan []byte), closed: make(chan struct{}), drained: make(chan struct{})}
	go t.conn.readLines(t.in)
	return t.conn, nil
}

type stdioConn struct {
	out io.Writer
	wmu sync.Mutex

	lines     chan []byte // nil message: input ended
	readErr   error
	closed    chan struct{}
	closeOnce sync.Once

	// unanswered counts requests read whose response is not written yet;
	// drained is signalled whenever it drops to zero.
	mu         sync.Mutex
	unanswered int
	drained    chan struct{}
}

// drainGrace is how long a client that closed its input still gets the
// answers to the requests it sent before (`echo request | wasmhost serve`).
const drainGrace = 5 * time.Second

// drain waits until every request read has been answered, or the grace
// period or ctx ends.
func (c *stdioConn) drain(ctx context.Context) {
	timer := time.NewTimer(drainGrace)
	defer timer.Stop()
	for {
		c.mu.Lock()
		n, ch := c.unanswered, c.drained
		c.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		}
	}
}

// readLines feeds lines to Read until input ends or the conn closes.
func (c *stdioConn) readLines(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		select {
		case c.lines <- bytes.Clone(line):
		case <-c.closed:
			return
		}
	}
	c.readErr = sc.Err()
	close(c.lines)
}

func (c *stdioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		var line []byte
		var ok bool
		select {
		case line, ok = <-c.lines:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closed:
			return nil, io.EOF
		}
		if !ok {
			c.drain(ctx)
			if c.readErr != nil {
				return nil, fmt.Errorf("read stdin: %w", c.readErr)
			}
			return nil, io.EOF
		}
		msg, err := decodeMessage(line)
		if err != nil {
			c.replyParseError(ctx, line, err)
			continue
		}
		if req, ok := msg.(*jsonrpc.Request); ok {
			if req.Method == "tools/call" && len(req.Params) > 0 {
				req.Params = liftTaskField(req.Params)
			}
			if req.IsCall() {
				c.mu.Lock()
				c.unanswered++
				c.mu.Unlock()
			}
		}
		return msg, nil
	}
}

// replyParseError answers a line that is not a JSON-RPC message. The id is
// echoed when the line is JSON with one, else null, as JSON-RPC 2.0 says.
func (c *stdioConn) replyParseError(ctx context.Context, line []byte, err error) {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	code, id := -32700, json.RawMessage("null")
	if json.Unmarshal(line, &probe) == nil {
		code = -32600 // valid JSON, not a valid request
		if len(probe.ID) > 0 {
			id = probe.ID
		}
	}
	resp, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": code, "message": fmt.Sprintf("not a JSON-RPC message: %v", err)},
	})
	_ = c.writeLine(ctx, resp)
}

func (c *stdioConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		return err
	}
	err = c.writeLine(ctx, data)
	if _, ok := msg.(*jsonrpc.Response); ok {
		c.mu.Lock()
		if c.unanswered > 0 {
			c.unanswered--
		}
		if c.unanswered == 0 {
			close(c.drained)
			c.drained = make(chan struct{})
		}
		c.mu.Unlock()
	}
	return err
}

func (c *stdioConn) writeLine(_ context.Context, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return io.ErrClosedPipe
	default:
	}
	_, err := c.out.Write(append(data, '\n'))
	return err
}

func (c *stdioConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *stdioConn) SessionID() string { return "" }

// Notify sends a notification go-sdk has no method for.
func (c *stdioConn) Notify(ctx context.Context, method string, params any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return c.Write(ctx, &jsonrpc.Request{Method: method, Params: raw})
}

// decodeMessage is jsonrpc.DecodeMessage, without go-sdk's decoder for
// the messages a server reads most, requests and notifications: that
// decoder allocates a 32 KiB buffer per message, a third of what a plain
// call allocated. Anything else, and anything the fast path is not sure
// of, goes to go-sdk, so the result is always go-sdk's
// (FuzzDecodeMessage).
func decodeMessage(line []byte) (jsonrpc.Message, error) {
	if req, ok := decodeRequest(line); ok {
		return req, nil
	}
	return jsonrpc.DecodeMessage(line)
}

// maxMessageDepth is go-sdk's limit on how deep a message nests.
const maxMessageDepth = 1000

// decodeRequest decodes line if it is a plain request or notification:
// only the four members a request has, a valid version, id and method,
// nothing nested deeper than go-sdk allows. ok is false for anything else.
func decodeRequest(line []byte) (_ *jsonrpc.Request, ok bool) {
	if !utf8.Valid(line) || nestsDeeper(line, maxMessageDepth) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil || m["method"] == nil {
		return nil, false
	}
	for k := range m {
		switch k {
		case "jsonrpc", "id", "method", "params":
		default:
			return nil, false
		}
	}
	var version, method string
	var rawID any
	if json.Unmarshal(m["jsonrpc"], &version) != nil || version != "2.0" ||
		json.Unmarshal(m["method"], &method) != nil {
		return nil, false
	}
	if raw, ok := m["id"]; ok && json.Unmarshal(raw, &rawID) != nil {
		return nil, false
	}
	id, err := jsonrpc.MakeID(rawID)
	if err != nil {
		return nil, false
	}
	return &jsonrpc.Request{ID: id, Method: method, Params: m["params"]}, true
}

// nestsDeeper reports whether the JSON text data nests objects and arrays
// more than max levels deep.
func nestsDeeper(data []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > max {
				return true
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return false
}

// liftTaskField moves params.task to params._meta[metaTaskRequest]; params
// it cannot parse are left for go-sdk to reject.
func liftTaskField(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte(`"task"`)) && !bytes.Contains(params, []byte(`\u`)) {
		return params // no task field, not even an escaped one
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil {
		return params
	}
	task, ok := p["task"]
	if !ok || string(task) == "null" {
		return params
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := p["_meta"]; ok && json.Unmarshal(raw, &meta) != nil {
		return params
	}
	meta[metaTaskRequest] = task
	delete(p, "task")
	p["_meta"], _ = json.Marshal(meta)
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}
