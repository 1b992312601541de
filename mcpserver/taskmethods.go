package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/internal/stack"
	"github.com/wasmhost/wasmhost/tasks"
)

// wireTask is a task as 2025-11-25 clients see it (SEP-1686).
type wireTask struct {
	TaskID        string       `json:"taskId"`
	Status        tasks.Status `json:"status"`
	StatusMessage string       `json:"statusMessage,omitempty"`
	CreatedAt     string       `json:"createdAt"`
	LastUpdatedAt string       `json:"lastUpdatedAt"`
	TTL           int64        `json:"ttl"`
	PollInterval  int64        `json:"pollInterval,omitempty"`
}

// wireTask is t as a 2025-11-25 client sees it. That generation counts a
// tool error as a failure (SEP-1686: isError → failed), while 2026-07-28
// reports it as completed with isError; the store keeps the latter and the
// front end maps. tasks/result returns the isError result either way.
func (s *Server) wireTask(t *tasks.Task) wireTask {
	status, msg := t.Status, t.StatusMessage
	if status == tasks.Completed {
		if text, isErr := toolErrorText(t.Result); isErr {
			status, msg = tasks.Failed, text
		}
	}
	return wireTask{
		TaskID:        t.ID,
		Status:        status,
		StatusMessage: msg,
		CreatedAt:     t.CreatedAt.UTC().Format(time.RFC3339Nano),
		LastUpdatedAt: t.UpdatedAt.UTC().Format(time.RFC3339Nano),
		TTL:           t.TTL.Milliseconds(),
		PollInterval:  t.PollInterval.Milliseconds(),
	}
}

// taskRequest is the task field of a 2025-11-25 tools/call.
type taskRequest struct {
	TTL *int64 `json:"ttl,omitempty"` // milliseconds
}

// middleware adds what go-sdk does not model to the standard methods.
func (s *Server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	route := s.route(next)
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		stack.Reserve() // a fresh goroutine per request (go-sdk)
		res, err := route(ctx, method, req)
		if ss, ok := req.GetSession().(*mcp.ServerSession); ok && err == nil && s.sessionStore != nil {
			s.keepSession(ctx, s.sessionFor(ss))
		}
		// go-sdk stamps resultType on its own results for 2026-07-28
		// clients; the results we build need it too.
		if raw, ok := res.(*rawResult); ok && raw != nil && raw.body["resultType"] == nil {
			if ss, ok := req.GetSession().(*mcp.ServerSession); ok && s.sessionFor(ss).modern() {
				raw.body["resultType"] = "complete"
			}
		}
		return res, err
	}
}

func (s *Server) route(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "initialize":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return withTasksCapability(res)
		case "logging/setLevel":
			res, err := next(ctx, method, req)
			if p, ok := req.GetParams().(*mcp.SetLoggingLevelParams); ok && err == nil {
				if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
					s.sessionFor(ss).setLogLevel(p.Level)
				}
			}
			return res, err
		case "tools/list":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			return s.toolsListWithExecution(res)
		case "tools/call":
			if call, ok := req.(*mcp.CallToolRequest); ok {
				if sess := s.sessionFor(call.Session); sess.modern() {
					return s.callModern(ctx, sess, call, next)
				}
				if raw, ok := call.Params.Meta[metaTaskRequest]; ok {
					return s.createTask(ctx, call, raw)
				}
			}
		}
		return next(ctx, method, req)
	}
}

// withTasksCapability declares 2025-11-25 task support in the initialize
// result; go-sdk's ServerCapabilities has no tasks field.
func withTasksCapability(res mcp.Result) (mcp.Result, error) {
	out, err := newRawResult(res)
	if err != nil {
		return nil, err
	}
	caps, _ := out.body["capabilities"].(map[string]any)
	if caps == nil {
		caps = map[string]any{}
		out.body["capabilities"] = caps
	}
	caps["tasks"] = map[string]any{
		"list":     map[string]any{},
		"cancel":   map[string]any{},
		"requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}},
	}
	return out, nil
}

// createTask answers a task-augmented tools/call with CreateTaskResult.
func (s *Server) createTask(ctx context.Context, req *mcp.CallToolRequest, rawTask any) (mcp.Result, error) {
	st, ok := s.servedTool(req.Params.Name)
	if !ok {
		return nil, unknownTool(req.Params.Name)
	}
	if taskSupport(st.entry.Tool) == abi.TaskForbidden {
		return nil, &jsonrpc.Error{
			Code:    jsonrpc.CodeMethodNotFound,
			Message: fmt.Sprintf("tool %s does not support tasks: call it without a task field", st.entry.Tool.Name),
		}
	}
	var tr taskRequest
	if data, err := json.Marshal(rawTask); err == nil {
		_ = json.Unmarshal(data, &tr)
	}
	var ttl time.Duration
	if tr.TTL != nil {
		ttl = time.Duration(*tr.TTL) * time.Millisecond
	}
	sess := s.sessionFor(req.Session)
	t, err := s.startTask(ctx, sess, st.spec(), tasks.KindTask, req.Params.Arguments, req.Params, clientCaps(req.Session, req.Params), ttl)
	if err != nil {
		return nil, err
	}
	// Arguments that violate the schema still make a task, one that is
	// already complete with the tool error, so the client's task flow holds.
	if bad := st.checkArgs(ctx, s.opts.RunBudget, req.Params.Arguments); bad != nil {
		s.completeNow(t, bad)
	}
	return newRawResult(map[string]any{"task": s.wireTask(t)})
}

func (s *Server) completeNow(t *tasks.Task, res *mcp.CallToolResult) {
	raw, _ := json.Marshal(res)
	if err := s.store.Complete(context.Background(), t.ID, 0, raw); err != nil {
		s.logger.Warn("could not complete task", "task", t.ID, "error", err)
	}
}

type taskIDParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
}

type listTasksParams struct {
	mcp.ParamsBase
	Cursor string `json:"cursor,omitempty"`
}

func (s *Server) addTaskMethods() error {
	return errors.Join(
		mcp.AddReceivingCustomMethod(s.mcp, "tasks/get", s.getTask),
		mcp.AddReceivingCustomMethod(s.mcp, "tasks/result", s.taskResult),
		mcp.AddReceivingCustomMethod(s.mcp, "tasks/list", s.listTasks),
		mcp.AddReceivingCustomMethod(s.mcp, "tasks/cancel", s.cancelTask),
		mcp.AddReceivingCustomMethod(s.mcp, "tasks/update", s.updateTask),
	)
}

// removedMethod is the answer to tasks/result and tasks/list from a
// 2026-07-28 client: SEP-2663 dropped them (results are inlined in
// tasks/get; there is no listing).
func removedMethod(method string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: method + " does not exist in protocol 2026-07-28: use tasks/get"}
}

// modernGate checks what every 2026-07-28 tasks method needs first: the
// client's declaration of the tasks extension.
func modernGate(ss *mcp.ServerSession, p mcp.Params, method string) error {
	if !declaresTasks(clientCaps(ss, p)) {
		return missingTasks(method)
	}
	return nil
}

// ownedTask returns the task if ss's client may see it; a task of another
// owner is reported exactly like a missing one.
func (s *Server) ownedTask(ctx context.Context, ss *mcp.ServerSession, p *taskIDParams) (*session, *tasks.Task, error) {
	sess := s.sessionFor(ss)
	if p == nil || p.TaskID == "" {
		return nil, nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "taskId is required"}
	}
	if len(p.TaskID) > maxTaskIDLen {
		return nil, nil, notFound(p.TaskID)
	}
	t, err := s.store.Get(ctx, p.TaskID)
	if err == nil && (t.Kind != tasks.KindTask || (t.Owner != "" && t.Owner != sess.owner)) {
		err = tasks.ErrNotFound
	}
	if errors.Is(err, tasks.ErrNotFound) {
		return nil, nil, notFound(p.TaskID)
	}
	if err != nil {
		return nil, nil, storeError(err)
	}
	return sess, t, nil
}

// maxTaskIDLen is longer than any id the stores issue (tasks.NewID: 22
// characters); a longer one is unknown without asking the store.
const maxTaskIDLen = 128

// notFound is the one answer for a task the caller may not see: unknown,
// expired, another session's, a plain call's. The same words for each, so
// that the answer says nothing about whether the id exists.
func notFound(id string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("task %s: %v", clip(id, 64), tasks.ErrNotFound)}
}

// clip shortens what a client sent (an id, a cursor, a validation message
// quoting a value) to at most n runes, so that an error names it without
// echoing megabytes back or into the log.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func (s *Server) getTask(ctx context.Context, ss *mcp.ServerSession, p *taskIDParams) (*rawResult, error) {
	if p == nil {
		p = &taskIDParams{}
	}
	modern := s.sessionFor(ss).modern()
	if modern {
		if err := modernGate(ss, p, "tasks/get"); err != nil {
			return nil, err
		}
	}
	sess, t, err := s.ownedTask(ctx, ss, p)
	if err != nil {
		return nil, err
	}
	if modern {
		return newRawResult(s.modernTask(t))
	}
	if t.Status == tasks.InputRequired && sess.pushesInput() {
		// The client has seen the questions' status: it is not asleep
		// between two polls, so ask now (see pushGrace).
		s.relay.Push(sess.ctx, sess, t)
	}
	return newRawResult(s.wireTask(t))
}

// taskResult blocks until the task finishes, relaying its input requests
// to the waiting client meanwhile, and returns what tools/call would have.
func (s *Server) taskResult(ctx context.Context, ss *mcp.ServerSession, p *taskIDParams) (*rawResult, error) {
	if s.sessionFor(ss).modern() {
		return nil, removedMethod("tasks/result")
	}
	sess, t, err := s.ownedTask(ctx, ss, p)
	if err != nil {
		return nil, err
	}
	if t, err = s.follow(ctx, sess, t.ID); err != nil {
		return nil, err
	}
	res, err := callResult(t)
	if err != nil {
		return nil, err
	}
	res.Meta = mcp.Meta{metaRelatedTask: relatedTask(t.ID)}
	return newRawResult(res)
}

func (s *Server) listTasks(ctx context.Context, ss *mcp.ServerSession, p *listTasksParams) (*rawResult, error) {
	sess := s.sessionFor(ss)
	if sess.modern() {
		return nil, removedMethod("tasks/list")
	}
	if p == nil {
		p = &listTasksParams{} // params are optional
	}
	page, next, err := s.store.List(ctx, sess.owner, p.Cursor, 0)
	if errors.Is(err, tasks.ErrUnavailable) {
		return nil, storeError(err)
	}
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: clip(err.Error(), 200) + "; pass the nextCursor of an earlier tasks/list, or none"}
	}
	out := struct {
		Tasks      []wireTask `json:"tasks"`
		NextCursor string     `json:"nextCursor,omitempty"`
	}{Tasks: []wireTask{}, NextCursor: next}
	for _, t := range page {
		out.Tasks = append(out.Tasks, s.wireTask(t))
	}
	return newRawResult(out)
}

func (s *Server) cancelTask(ctx context.Context, ss *mcp.ServerSession, p *taskIDParams) (*rawResult, error) {
	if p == nil {
		p = &taskIDParams{}
	}
	modern := s.sessionFor(ss).modern()
	if modern {
		if err := modernGate(ss, p, "tasks/cancel"); err != nil {
			return nil, err
		}
	}
	_, t, err := s.ownedTask(ctx, ss, p)
	if err != nil {
		return nil, err
	}
	err = s.store.Cancel(ctx, t.ID, "cancelled by the client")
	if modern && (err == nil || errors.Is(err, tasks.ErrTerminal)) {
		return newRawResult(map[string]any{"resultType": "complete"}) // idempotent in SEP-2663
	}
	if err != nil {
		if errors.Is(err, tasks.ErrTerminal) {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("cannot cancel task %s: it is already %s", t.ID, t.Status)}
		}
		return nil, storeError(err)
	}
	if t, err = s.store.Get(ctx, t.ID); err != nil {
		return nil, storeError(err)
	}
	return newRawResult(s.wireTask(t))
}

// toolErrorText reports whether a CallToolResult is a tool error, with its
// text.
func toolErrorText(result json.RawMessage) (string, bool) {
	var r struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(result, &r) != nil || !r.IsError {
		return "", false
	}
	var parts []string
	for _, c := range r.Content {
		if c.Text != "" {
			parts = append(parts, c.Text)
		}
	}
	if len(parts) == 0 {
		return "the tool reported an error", true
	}
	return strings.Join(parts, "\n"), true
}
