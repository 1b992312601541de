package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// callTool serves a plain (not task-augmented) tools/call. The call still
// runs as a task record of KindCall, so that its guest can suspend on input
// and be relayed exactly like a task's.
func (s *Server) callTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	st, ok := s.servedTool(req.Params.Name)
	if !ok {
		return nil, unknownTool(req.Params.Name)
	}
	sess := s.sessionFor(req.Session)
	if taskSupport(st.entry.Tool) == abi.TaskRequired && !sess.modern() {
		return nil, &jsonrpc.Error{
			Code:    jsonrpc.CodeMethodNotFound,
			Message: fmt.Sprintf("tool %s must be called as a task: add a task field to tools/call", st.entry.Tool.Name),
		}
	}
	if req.Params.RequestState == "" {
		if bad := st.checkArgs(ctx, s.opts.RunBudget, req.Params.Arguments); bad != nil {
			return bad, nil
		}
	}
	t, state, err := s.runGuest(ctx, sess, guestRequest{
		spec:      st.spec(),
		args:      req.Params.Arguments,
		params:    req.Params,
		responses: req.Params.InputResponses,
		state:     req.Params.RequestState,
	})
	switch {
	case err != nil:
		return nil, err
	case state != "":
		return &mcp.CallToolResult{InputRequests: mcpInputRequests(t.InputRequests), RequestState: state}, nil
	case t.Kind == tasks.KindTask:
		return &mcp.CallToolResult{Meta: mcp.Meta{metaDetached: t.ID}}, nil
	}
	return callResult(t)
}

// taskSpec is what a task record says about the guest entry point it runs.
type taskSpec struct {
	op         tasks.Op
	name       string // tool or prompt name, or resource URI
	idempotent bool
	deferTask  bool
}

func (st *servedTool) spec() taskSpec {
	a := st.entry.Tool.Annotations
	return taskSpec{name: st.entry.Tool.Name, idempotent: a != nil && a.IdempotentHint, deferTask: st.entry.Tool.DeferTask}
}

// guestRequest is a client request a guest serves: a tool call, a prompt
// or a resource read.
type guestRequest struct {
	spec      taskSpec
	args      json.RawMessage
	params    mcp.Params // for _meta: capabilities, progress token
	responses mcp.InputResponseMap
	state     string
}

// runGuest serves r as a plain (KindCall) request and returns its record
// once the guest has finished, or detached into a task, or, for a
// 2026-07-28 client, asked questions: then state is the requestState to
// return with them. A 2025 client is asked directly meanwhile.
func (s *Server) runGuest(ctx context.Context, sess *session, r guestRequest) (t *tasks.Task, state string, err error) {
	caps := clientCaps(sess.ss, r.params)
	if sess.modern() {
		return s.runMRTR(ctx, sess, r, caps)
	}
	if t, err = s.startTask(ctx, sess, r.spec, tasks.KindCall, r.args, r.params, caps, 0); err != nil {
		return nil, "", err
	}
	done, err := s.follow(ctx, sess, t.ID)
	if err != nil && ctx.Err() != nil {
		s.cancelAbandoned(t.ID)
	}
	return done, "", err
}

// startTask records a new task and queues it for a worker.
func (s *Server) startTask(ctx context.Context, sess *session, spec taskSpec, kind tasks.Kind, args json.RawMessage, params mcp.Params, caps *mcp.ClientCapabilities, ttl time.Duration) (*tasks.Task, error) {
	if ttl <= 0 {
		ttl = s.opts.TaskTTL
	}
	now := time.Now().UTC()
	t := &tasks.Task{
		ID:           tasks.NewID(),
		Kind:         kind,
		Owner:        sess.owner,
		Op:           spec.op,
		Tool:         spec.name,
		Args:         args,
		Accepts:      accepts(caps),
		Detachable:   spec.deferTask && declaresTasks(caps),
		Idempotent:   spec.idempotent,
		Status:       tasks.Working,
		CreatedAt:    now,
		UpdatedAt:    now,
		TTL:          min(ttl, s.opts.MaxTaskTTL),
		PollInterval: s.opts.PollInterval,
	}
	t.LogsMuted, t.LogFloor = sess.logFloor()
	if p, ok := params.(interface{ GetProgressToken() any }); ok {
		if tok := p.GetProgressToken(); tok != nil {
			t.ProgressToken, _ = json.Marshal(tok)
		}
	}
	if err := s.store.Create(ctx, t); err != nil {
		return nil, storeError(err)
	}
	// Known before any event can arrive. A plain call's notifications go
	// on its request's stream (HTTP); a task's on the session's.
	var notifyCtx context.Context
	if kind == tasks.KindCall {
		notifyCtx = ctx
	}
	s.track(t, notifyCtx)
	if err := s.store.Queue().Enqueue(ctx, t.ID); err != nil {
		_ = s.store.Fail(context.WithoutCancel(ctx), t.ID, 0, "could not queue the task: "+err.Error())
		return nil, storeError(err)
	}
	return t, nil
}

// follow waits for task id to finish, pushing its input requests to a
// client that takes server-to-client requests as they appear.
func (s *Server) follow(ctx context.Context, sess *session, id string) (*tasks.Task, error) {
	pushed := map[string]bool{}
	for {
		t, err := s.watcher.Wait(ctx, id, func(t *tasks.Task) bool {
			if t.Status.Terminal() {
				return true
			}
			for key := range t.InputRequests {
				if !pushed[key] {
					return true
				}
			}
			return false
		})
		if err != nil {
			return nil, storeError(err)
		}
		if t.Status.Terminal() {
			s.awaitFlushed(ctx, sess, id)
			return t, nil
		}
		for key := range t.InputRequests {
			pushed[key] = true
		}
		if sess.pushesInput() {
			s.relay.Push(ctx, sess, t)
		}
	}
}

// cancelAbandoned cancels a plain call whose client stopped waiting.
func (s *Server) cancelAbandoned(id string) {
	err := s.store.Cancel(context.Background(), id, "the client cancelled the request")
	if err != nil && !errors.Is(err, tasks.ErrTerminal) {
		s.logger.Warn("could not cancel abandoned call", "task", id, "error", err)
	}
}

// callResult turns a finished task into what tools/call returns: the tool's
// result, or a JSON-RPC error when the call failed at protocol level.
func callResult(t *tasks.Task) (*mcp.CallToolResult, error) {
	if t.Status == tasks.Completed {
		if res, ok := textResult(t.Result); ok {
			return res, nil
		}
	}
	var res mcp.CallToolResult
	if err := finished(t, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// textResult builds the result of a call whose content blocks are all
// plain text, most calls', without go-sdk's decoder: that allocates a
// 32 KiB buffer for every message, a quarter of what a plain call
// allocated. ok is false for anything else, which go-sdk decodes.
func textResult(raw json.RawMessage) (_ *mcp.CallToolResult, ok bool) {
	var r abi.CallResult
	if json.Unmarshal(raw, &r) != nil || r.Error != nil {
		return nil, false
	}
	res := &mcp.CallToolResult{Content: make([]mcp.Content, 0, len(r.Content)), IsError: r.IsError}
	for _, c := range r.Content {
		if c != (abi.Content{Type: "text", Text: c.Text}) {
			return nil, false
		}
		res.Content = append(res.Content, &mcp.TextContent{Text: c.Text})
	}
	if len(r.StructuredContent) > 0 {
		res.StructuredContent = r.StructuredContent
	}
	return res, true
}

// finished decodes a finished task's result into res, or returns the
// JSON-RPC error the request ends with instead: the guest's own protocol
// error, a failure, or the cancellation.
func finished(t *tasks.Task, res any) error {
	what := t.Op.Noun() + " " + t.Tool
	switch t.Status {
	case tasks.Completed:
		if perr := protocolError(t.Result); perr != nil {
			return perr
		}
		if err := json.Unmarshal(t.Result, res); err != nil {
			return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("%s returned an unreadable result: %v", what, err)}
		}
		return nil
	case tasks.Cancelled:
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("%s was cancelled: %s", what, t.StatusMessage)}
	default:
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("%s failed: %s", what, t.Error)}
	}
}

func unknownTool(name string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", name)}
}

// storeError turns a store failure into a JSON-RPC error a person can act
// on.
func storeError(err error) error {
	switch {
	case errors.Is(err, tasks.ErrNotFound):
		return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
	case errors.Is(err, tasks.ErrUnavailable):
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error() + " (is Redis running? wasmhost retries on the next request)"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
}
