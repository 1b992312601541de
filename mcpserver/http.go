package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPOptions configure the Streamable HTTP endpoint.
type HTTPOptions struct {
	// AllowedHosts are host names (without port) accepted in the Host and
	// Origin headers besides the loopback names; everything else is
	// refused with 403 to stop DNS rebinding. "*" allows any.
	AllowedHosts []string
	// SessionTimeout closes stateful sessions idle this long; 0 means 30m.
	SessionTimeout time.Duration
	// Sessions, if set, keeps each stateful session's initialize params
	// (for SessionTimeout after its last use) so that a front end sharing
	// it takes over a session it does not know, under the same id: after
	// a restart, or behind a load balancer without sticky sessions.
	// tasks.Redis is one.
	Sessions SessionStore
	// EventStore keeps what is sent on each stream of a stateful session
	// so that a client reconnecting with Last-Event-ID gets what it
	// missed; nil means go-sdk's in-memory store (10 MiB over all
	// sessions, this process only). tasks.Redis.EventStore shares it
	// between front ends.
	EventStore mcp.EventStore
}

// modernVersion is the first protocol version of the stateless lifecycle
// (SEP-2575), with tasks as an extension and multi-round-trip input.
const modernVersion = "2026-07-28"

// HTTPHandler serves MCP over Streamable HTTP. One URL serves both
// lifecycles: requests of 2026-07-28 and later (recognised by their
// MCP-Protocol-Version header) go to go-sdk's stateless handler, everything
// else to its stateful, session-based one. go-sdk serves the new protocol
// only in stateless mode and the old only with sessions, hence two handlers
// over the one server.
func (s *Server) HTTPHandler(opts HTTPOptions) http.Handler {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 30 * time.Minute
	}
	get := func(*http.Request) *mcp.Server { return s.mcp }
	logger := slogFor(s.logger.Named("http"))
	if opts.EventStore == nil {
		opts.EventStore = mcp.NewMemoryEventStore(nil)
	}
	s.sessionStore, s.sessionTTL = opts.Sessions, opts.SessionTimeout
	stateful := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Logger: logger, SessionTimeout: opts.SessionTimeout, EventStore: opts.EventStore})
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Logger: logger, Stateless: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r, opts.AllowedHosts) {
			http.Error(w, "forbidden: Host or Origin is not an allowed host (DNS rebinding protection; see --allow-host)", http.StatusForbidden)
			return
		}
		if v := r.Header.Get("Mcp-Protocol-Version"); v >= modernVersion {
			if r.Method == http.MethodPost && !checkTaskName(w, r) {
				return
			}
			stateless.ServeHTTP(w, r)
			return
		}
		id := r.Header.Get("Mcp-Session-Id")
		switch {
		case id != "":
			s.revive(r, stateful, id)
		case r.Method == http.MethodPost:
			// A new session: its id must not be one a revival forces.
			s.reviveMu.RLock()
			defer s.reviveMu.RUnlock()
		}
		switch r.Method {
		case http.MethodPost:
			liftTaskFieldInBody(r)
		case http.MethodGet:
			s.serveListen(stateful, w, r)
			return
		case http.MethodDelete:
			stateful.ServeHTTP(w, r)
			if s.sessionStore != nil && validSessionID(id) {
				_ = s.sessionStore.DeleteSession(context.WithoutCancel(r.Context()), id)
			}
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// hostAllowed is the DNS-rebinding check: the Host header, and the Origin
// header when a browser sent one, must name loopback or an allowed host.
func hostAllowed(r *http.Request, allowed []string) bool {
	ok := func(host string) bool {
		if slices.Contains(allowed, "*") || slices.Contains(allowed, host) {
			return true
		}
		if host == "localhost" {
			return true
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		return ip != nil && ip.IsLoopback()
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !ok(host) {
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !ok(u.Hostname()) {
			return false
		}
	}
	return true
}

// readBody returns the request body and puts it back for the next reader.
func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLine))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	return body
}

// liftTaskFieldInBody does for HTTP what the stdio connection does: keep the
// 2025-11-25 task field of tools/call from being dropped by go-sdk.
func liftTaskFieldInBody(r *http.Request) {
	body := readBody(r)
	var msg map[string]json.RawMessage
	if json.Unmarshal(body, &msg) != nil || string(msg["method"]) != `"tools/call"` || len(msg["params"]) == 0 {
		return
	}
	msg["params"] = liftTaskField(msg["params"])
	if out, err := json.Marshal(msg); err == nil {
		r.Body = io.NopCloser(bytes.NewReader(out))
		r.ContentLength = int64(len(out))
	}
}

// checkTaskName enforces SEP-2243's Mcp-Name header for the tasks methods,
// which go-sdk checks only for the methods it knows: the header must name
// the taskId of the body. It writes the error and returns false on a
// mismatch.
func checkTaskName(w http.ResponseWriter, r *http.Request) bool {
	method := r.Header.Get("Mcp-Method")
	if method != "tasks/get" && method != "tasks/update" && method != "tasks/cancel" {
		return true
	}
	body := readBody(r)
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			TaskID string `json:"taskId"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Method != method {
		return true // go-sdk reports malformed bodies and method mismatches
	}
	name := strings.TrimSpace(r.Header.Get("Mcp-Name"))
	if name == msg.Params.TaskID {
		return true
	}
	if len(msg.ID) == 0 {
		msg.ID = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0",
		"id":      msg.ID,
		"error": map[string]any{
			"code":    codeHeaderMismatch,
			"message": "header mismatch: Mcp-Name must be the taskId of the request",
		},
	})
	return false
}

// JSON-RPC error codes of the 2026-07-28 protocol.
const (
	codeHeaderMismatch          = -32020
	codeMissingClientCapability = -32021
)

// sseWriter wraps the response of a session's standalone SSE stream (its
// GET) so that the front end can write notifications go-sdk has no API
// for (notifications/tasks/status) between go-sdk's own events: go-sdk
// writes each event with one Write, and both go through mu.
type sseWriter struct {
	http.ResponseWriter
	mu     sync.Mutex
	open   bool // go-sdk has written the headers; the stream is live
	closed bool // the handler returned; w must not be touched
}

func (w *sseWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open = true
	return w.ResponseWriter.Write(p)
}

func (w *sseWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *sseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// notify writes one JSON-RPC notification as an SSE event. It reports
// false when the stream is not (or no longer) open. The event carries no
// id: it is not kept for replay (status notifications are advisory; a
// resumed client polls tasks/get).
func (w *sseWriter) notify(method string, params any) bool {
	data, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.open || w.closed {
		return false
	}
	if _, err := fmt.Fprintf(w.ResponseWriter, "event: message\ndata: %s\n\n", data); err != nil {
		return false
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	return true
}

// serveListen serves a session's standalone SSE stream through an
// sseWriter registered under its session id while it lasts.
func (s *Server) serveListen(h http.Handler, w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("Mcp-Session-Id")
	if id == "" {
		h.ServeHTTP(w, r)
		return
	}
	sw := &sseWriter{ResponseWriter: w}
	s.infoMu.Lock()
	s.listeners[id] = sw
	s.infoMu.Unlock()
	defer func() {
		sw.mu.Lock()
		sw.closed = true
		sw.mu.Unlock()
		s.infoMu.Lock()
		if s.listeners[id] == sw {
			delete(s.listeners, id)
		}
		s.infoMu.Unlock()
	}()
	h.ServeHTTP(sw, r)
}

// listener returns the open standalone stream of an HTTP session, or nil.
func (s *Server) listener(sessionID string) *sseWriter {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	return s.listeners[sessionID]
}
