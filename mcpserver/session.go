package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// stdioOwner owns every task created over stdio. A stdio server has exactly
// one client, and a client that restarts wasmhost must still reach the
// tasks it created (they live on in Redis), so the owner is not per process.
const stdioOwner = "stdio"

// session is one connected client as the front end needs it.
type session struct {
	s     *Server
	ss    *mcp.ServerSession
	conn  *stdioConn      // nil where go-sdk owns the connection (HTTP)
	owner string          // "" for the stateless 2026-07-28 lifecycle: no owner
	ctx   context.Context // ends when the client disconnects
	out   *outbox         // its notifications, written in order by one goroutine

	mu       sync.Mutex
	logLevel mcp.LoggingLevel // from logging/setLevel; "" sends none
	saved    time.Time        // when keepSession last saved it
}

// attach registers ss so that events for its tasks reach it, until it
// disconnects.
func (s *Server) attach(ss *mcp.ServerSession, conn *stdioConn, owner string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{s: s, ss: ss, conn: conn, owner: owner, ctx: ctx}
	sess.out = newOutbox(sess)
	go sess.out.run(ctx)
	s.mu.Lock()
	s.sessions[ss] = sess
	if owner != "" {
		s.byOwner[owner] = sess
	}
	s.mu.Unlock()
	go func() {
		_ = ss.Wait()
		cancel()
		s.mu.Lock()
		delete(s.sessions, ss)
		if s.byOwner[owner] == sess {
			delete(s.byOwner, owner)
		}
		s.mu.Unlock()
	}()
	return sess
}

// sessionFor returns the registered session of ss, registering on first
// sight the sessions go-sdk creates itself over HTTP: a stateful session
// owns its tasks; a stateless request owns nothing, so that the next
// request (a new session) can reach the task by id.
func (s *Server) sessionFor(ss *mcp.ServerSession) *session {
	s.mu.Lock()
	sess, ok := s.sessions[ss]
	s.mu.Unlock()
	if ok {
		return sess
	}
	owner := ss.ID()
	if p := ss.InitializeParams(); p != nil && p.ProtocolVersion >= modernVersion {
		owner = ""
	}
	return s.attach(ss, nil, owner)
}

func (s *Server) sessionOf(owner string) *session {
	if owner == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byOwner[owner]
}

func (sess *session) protocolVersion() string {
	if p := sess.ss.InitializeParams(); p != nil {
		return p.ProtocolVersion
	}
	return ""
}

// modern reports whether the client speaks 2026-07-28 or later.
func (sess *session) modern() bool { return sess.protocolVersion() >= modernVersion }

// pushesInput reports whether input requests go to this client as
// server-to-client requests; from 2026-07-28 on, clients pull them.
func (sess *session) pushesInput() bool { return !sess.modern() }

// accepts lists the input methods caps declare the client can answer.
func accepts(caps *mcp.ClientCapabilities) []string {
	var methods []string
	if caps.Elicitation != nil {
		methods = append(methods, abi.MethodElicit)
	}
	if caps.Sampling != nil {
		methods = append(methods, abi.MethodSample)
	}
	if caps.RootsV2 != nil {
		methods = append(methods, abi.MethodListRoots)
	}
	return methods
}

// Ask sends one input request to the client (elicit.Client). Requests of a
// task carry the related-task _meta so the client can tie them to it.
func (sess *session) Ask(ctx context.Context, t *tasks.Task, req abi.InputRequest) (json.RawMessage, error) {
	var res any
	var err error
	switch req.Method {
	case abi.MethodElicit:
		var p mcp.ElicitParams
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, fmt.Errorf("guest sent invalid elicitation params: %w", err)
		}
		p.Meta = withRelatedTask(p.Meta, t)
		res, err = sess.ss.Elicit(ctx, &p)
	case abi.MethodSample:
		var p mcp.CreateMessageParams
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, fmt.Errorf("guest sent invalid sampling params: %w", err)
		}
		p.Meta = withRelatedTask(p.Meta, t)
		res, err = sess.ss.CreateMessage(ctx, &p)
	case abi.MethodListRoots:
		res, err = sess.ss.ListRoots(ctx, &mcp.ListRootsParams{Meta: withRelatedTask(nil, t)})
	default:
		return nil, fmt.Errorf("unknown input method %q", req.Method)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// metaRelatedTask ties a message to a task (SEP-1686).
const metaRelatedTask = "io.modelcontextprotocol/related-task"

func relatedTask(id string) map[string]any {
	return map[string]any{"taskId": id}
}

func withRelatedTask(meta mcp.Meta, t *tasks.Task) mcp.Meta {
	if t.Kind != tasks.KindTask {
		return meta
	}
	if meta == nil {
		meta = mcp.Meta{}
	}
	meta[metaRelatedTask] = relatedTask(t.ID)
	return meta
}

// notifyStatus sends notifications/tasks/status: over stdio on the
// connection, over HTTP on the session's standalone SSE stream (go-sdk has
// no API for custom notifications; see sseWriter). A client with no stream
// open polls. A failure is logged, never swallowed.
func (sess *session) notifyStatus(t *tasks.Task, status tasks.Status) {
	if sess.modern() {
		return
	}
	wt := sess.s.wireTask(t)
	if status != tasks.Completed {
		wt.Status = status // the status this event reports, which may have moved on
	}
	const method = "notifications/tasks/status"
	if sess.conn != nil {
		if err := sess.conn.Notify(sess.ctx, method, wt); err != nil {
			sess.s.logger.Warn("could not send task status notification", "task", t.ID, "status", status, "error", err)
		}
		return
	}
	if l := sess.s.listener(sess.ss.ID()); l == nil || !l.notify(method, wt) {
		sess.s.logger.Debug("no open stream for a task status notification; the client polls", "task", t.ID, "status", status)
	}
}

var mcpLogLevels = [...]mcp.LoggingLevel{"debug", "info", "notice", "warning", "error"}

// mcpLevel maps a guest's log level onto MCP's.
func mcpLevel(l abi.LogLevel) mcp.LoggingLevel {
	return mcpLogLevels[min(max(int(l), 0), len(mcpLogLevels)-1)]
}

func (sess *session) log(ti *taskInfo, data json.RawMessage) {
	var l tasks.LogData
	if json.Unmarshal(data, &l) != nil {
		return
	}
	err := sess.ss.Log(ti.notifyCtx(sess.ctx), &mcp.LoggingMessageParams{
		Level:  mcpLevel(l.Level),
		Logger: ti.tool,
		Data:   l.Message,
		Meta:   ti.relatedMeta(),
	})
	if err != nil {
		sess.s.logger.Warn("could not send log message", "task", ti.id, "error", err)
	}
}

func (sess *session) progress(ti *taskInfo, data json.RawMessage) {
	if len(ti.progressToken) == 0 {
		return
	}
	var p abi.Progress
	var token any
	if json.Unmarshal(data, &p) != nil || json.Unmarshal(ti.progressToken, &token) != nil {
		return
	}
	err := sess.ss.NotifyProgress(ti.notifyCtx(sess.ctx), &mcp.ProgressNotificationParams{
		ProgressToken: token,
		Progress:      p.Progress,
		Total:         p.Total,
		Message:       p.Message,
	})
	if err != nil {
		sess.s.logger.Warn("could not send progress notification", "task", ti.id, "error", err)
		return
	}
	ti.progressed.Store(true)
}

// pushGrace is how long a task's new questions wait for the client to look
// (tasks/get reporting input_required, or tasks/result) before they are
// pushed anyway, beyond the poll interval the client was told.
//
// Why wait at all: a polling client (the TypeScript SDK's callToolStream)
// sleeps a whole pollInterval after every tasks/get that says working. A
// question pushed during that sleep is answered during it, the task goes
// back to working, and the result waits for the end of the sleep: up to a
// second between the answer and the result. Asked once the client has seen
// input_required, it is answered while the client blocks in tasks/result,
// which returns as soon as the task ends. A client that never looks still
// gets its questions, pushGrace later.
const pushGrace = time.Second

// pushLater pushes task id's pending questions to the client after the poll
// interval and pushGrace, unless they were pushed (or answered) meanwhile;
// the relay never puts one question out twice at once.
func (sess *session) pushLater(id string) {
	delay := sess.s.opts.PollInterval + pushGrace
	time.AfterFunc(delay, func() {
		if sess.ctx.Err() != nil {
			return
		}
		t, err := sess.s.store.Get(sess.ctx, id)
		if err != nil || t.Status != tasks.InputRequired {
			return
		}
		sess.s.relay.Push(sess.ctx, sess, t)
	})
}
