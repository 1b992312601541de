package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// SessionStore keeps what a front end needs to take over a stateful HTTP
// session that another front end (or an earlier run of this one) served:
// its initialize params and log level (keptSession). *tasks.Redis is one.
type SessionStore interface {
	SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error
	LoadSession(ctx context.Context, id string) ([]byte, error)
	DeleteSession(ctx context.Context, id string) error
}

// nextSessionID is go-sdk's GetSessionID: a random id, or the id of a
// session being revived.
func (s *Server) nextSessionID() string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if id := s.forcedID; id != "" {
		s.forcedID = ""
		return id
	}
	return rand.Text()
}

// validSessionID accepts what nextSessionID makes (rand.Text: base32), so
// that a hostile header never names another key.
func validSessionID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) < 0
}

// keptSession is what the session store keeps of a stateful HTTP session:
// what a front end replays to take it over.
type keptSession struct {
	Initialize json.RawMessage  `json:"initialize"`         // the client's initialize params
	LogLevel   mcp.LoggingLevel `json:"logLevel,omitempty"` // from logging/setLevel
}

// maxKeptSession bounds a kept session, both ways: a client's initialize
// params larger than this are not kept, a stored value larger is not read.
const maxKeptSession = 64 << 10

// keepSession saves an HTTP session's initialize params and log level,
// again every quarter of the session timeout while it is used and at once
// after logging/setLevel (setLogLevel makes it due), so that a front end
// sharing the store can take it over.
func (s *Server) keepSession(ctx context.Context, sess *session) {
	st := s.sessionStore
	if st == nil || sess.conn != nil || sess.owner == "" {
		return
	}
	now := time.Now()
	sess.mu.Lock()
	due := now.Sub(sess.saved) > s.sessionTTL/4
	if due {
		sess.saved = now
	}
	level := sess.logLevel
	sess.mu.Unlock()
	if !due {
		return
	}
	p := sess.ss.InitializeParams()
	if p == nil {
		return
	}
	var data []byte
	init, err := json.Marshal(p)
	if err == nil {
		data, err = json.Marshal(keptSession{Initialize: init, LogLevel: level})
	}
	if err == nil && len(data) > maxKeptSession {
		err = fmt.Errorf("its record is %d bytes, over %d", len(data), maxKeptSession)
	}
	if err == nil {
		err = st.SaveSession(context.WithoutCancel(ctx), sess.owner, data, s.sessionTTL)
	}
	if err != nil {
		s.logger.Warn("could not keep the HTTP session for other front ends", "session", sess.owner, "error", err)
	}
}

// loadKeptSession decodes and checks a kept session. The stored value is
// hostile (anyone who can write to the Redis can change it): it is bounded,
// its initialize params must be an object with a plain protocol version
// (the replay puts it in a header), and a log level MCP does not define is
// dropped.
func loadKeptSession(data []byte) (k keptSession, protocolVersion string, ok bool) {
	if len(data) > maxKeptSession || json.Unmarshal(data, &k) != nil {
		return k, "", false
	}
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if len(k.Initialize) == 0 || k.Initialize[0] != '{' || json.Unmarshal(k.Initialize, &p) != nil || !validProtocolVersion(p.ProtocolVersion) {
		return k, "", false
	}
	if _, known := logLevels[k.LogLevel]; !known {
		k.LogLevel = ""
	}
	return k, p.ProtocolVersion, true
}

// validProtocolVersion accepts MCP's dated versions (2025-11-25).
func validProtocolVersion(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	return strings.IndexFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '-') }) < 0
}

// revive recreates in go-sdk a session this process does not know but the
// session store does, under the same id: it replays the session's
// initialize with that id forced, then notifications/initialized, then
// the client's logging/setLevel if it had set one (so that go-sdk's own
// log filter and ours agree). Its tasks (owned by the session id), its
// kept streams (the event store) and its log level are then as before.
func (s *Server) revive(r *http.Request, h http.Handler, id string) {
	if s.sessionStore == nil || !validSessionID(id) || s.sessionOf(id) != nil {
		return
	}
	ctx := r.Context()
	data, err := s.sessionStore.LoadSession(ctx, id)
	if err != nil {
		return // unknown: go-sdk answers 404 and the client starts afresh
	}
	kept, protocolVersion, ok := loadKeptSession(data)
	if !ok {
		s.logger.Warn("not taking over an HTTP session: its kept record is malformed", "session", id)
		return
	}
	s.reviveMu.Lock()
	defer s.reviveMu.Unlock()
	if s.sessionOf(id) != nil {
		return // revived by a concurrent request
	}
	s.idMu.Lock()
	s.forcedID = id
	s.idMu.Unlock()
	post := func(sessionID string, msg map[string]any) {
		body, _ := json.Marshal(msg)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL.String(), strings.NewReader(string(body)))
		if err != nil {
			return
		}
		req.Host = r.Host
		req.RemoteAddr = r.RemoteAddr
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", protocolVersion)
		if sessionID != "" {
			req.Header.Set("Mcp-Session-Id", sessionID)
		}
		h.ServeHTTP(&discardWriter{header: http.Header{}}, req)
	}
	post("", map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": kept.Initialize})
	s.idMu.Lock()
	forced := s.forcedID
	s.forcedID = ""
	s.idMu.Unlock()
	if forced != "" {
		return // go-sdk made no session
	}
	post(id, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized", "params": map[string]any{}})
	if kept.LogLevel != "" {
		post(id, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": map[string]any{"level": kept.LogLevel}})
	}
	s.logger.Info("took over HTTP session from the session store", "session", id)
}

// discardWriter swallows the answers to a revival's replayed requests.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
