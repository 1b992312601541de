package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// SessionStore keeps what a front end needs to take over a stateful HTTP
// session that another front end (or an earlier run of this one) served:
// its initialize params. *tasks.Redis is one.
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

// keepSession saves an HTTP session's initialize params, again every
// quarter of the session timeout while it is used, so that a front end
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
	sess.mu.Unlock()
	if !due {
		return
	}
	p := sess.ss.InitializeParams()
	if p == nil {
		return
	}
	data, err := json.Marshal(p)
	if err == nil {
		err = st.SaveSession(context.WithoutCancel(ctx), sess.owner, data, s.sessionTTL)
	}
	if err != nil {
		s.logger.Warn("could not keep the HTTP session for other front ends", "session", sess.owner, "error", err)
	}
}

// revive recreates in go-sdk a session this process does not know but the
// session store does, under the same id: it replays the session's
// initialize with that id forced, then notifications/initialized. Its
// tasks (owned by the session id) and its kept streams (the event store)
// are then reachable as before; its log level is not (the client sets it
// again).
func (s *Server) revive(r *http.Request, h http.Handler, id string) {
	if s.sessionStore == nil || !validSessionID(id) || s.sessionOf(id) != nil {
		return
	}
	ctx := r.Context()
	data, err := s.sessionStore.LoadSession(ctx, id)
	if err != nil {
		return // unknown: go-sdk answers 404 and the client starts afresh
	}
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(data, &p) != nil {
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
		req.Header.Set("Mcp-Protocol-Version", p.ProtocolVersion)
		if sessionID != "" {
			req.Header.Set("Mcp-Session-Id", sessionID)
		}
		h.ServeHTTP(&discardWriter{header: http.Header{}}, req)
	}
	post("", map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": json.RawMessage(data)})
	s.idMu.Lock()
	forced := s.forcedID
	s.forcedID = ""
	s.idMu.Unlock()
	if forced != "" {
		return // go-sdk made no session
	}
	post(id, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized", "params": map[string]any{}})
	s.logger.Info("took over HTTP session from the session store", "session", id)
}

// discardWriter swallows the answers to a revival's replayed requests.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
