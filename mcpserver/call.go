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
	if taskSupport(st.entry.Tool) == abi.TaskRequired && !s.sessionFor(req.Session).modern() {
		return nil, &jsonrpc.Error{
			Code:    jsonrpc.CodeMethodNotFound,
			Message: fmt.Sprintf("tool %s must be called as a task: add a task field to tools/call", st.entry.Tool.Name),
		}
	}
	sess := s.sessionFor(req.Session)
	if sess.modern() {
		return s.callMRTR(ctx, sess, st, req)
	}
	if bad := st.checkArgs(req.Params.Arguments); bad != nil {
		return bad, nil
	}
	t, err := s.startTask(ctx, sess, st, tasks.KindCall, req.Params, clientCaps(req.Session, req.Params), 0)
	if err != nil {
		return nil, err
	}
	t, err = s.follow(ctx, sess, t.ID)
	if err != nil {
		if ctx.Err() != nil {
			s.cancelAbandoned(t.ID)
		}
		return nil, err
	}
	return callResult(t)
}

// startTask records a new task for the call and queues it for a worker.
func (s *Server) startTask(ctx context.Context, sess *session, st *servedTool, kind tasks.Kind, p *mcp.CallToolParamsRaw, caps *mcp.ClientCapabilities, ttl time.Duration) (*tasks.Task, error) {
	if ttl <= 0 {
		ttl = s.opts.TaskTTL
	}
	now := time.Now().UTC()
	t := &tasks.Task{
		ID:           tasks.NewID(),
		Kind:         kind,
		Owner:        sess.owner,
		Tool:         st.entry.Tool.Name,
		Args:         p.Arguments,
		Accepts:      accepts(caps),
		Detachable:   st.entry.Tool.DeferTask && declaresTasks(caps),
		Idempotent:   st.entry.Tool.Annotations != nil && st.entry.Tool.Annotations.IdempotentHint,
		Status:       tasks.Working,
		CreatedAt:    now,
		UpdatedAt:    now,
		TTL:          min(ttl, s.opts.MaxTaskTTL),
		PollInterval: s.opts.PollInterval,
	}
	if tok := p.GetProgressToken(); tok != nil {
		t.ProgressToken, _ = json.Marshal(tok)
	}
	if err := s.store.Create(ctx, t); err != nil {
		return nil, storeError(err)
	}
	if err := s.store.Queue().Enqueue(ctx, t.ID); err != nil {
		_ = s.store.Fail(context.WithoutCancel(ctx), t.ID, "could not queue the task: "+err.Error())
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
	switch t.Status {
	case tasks.Completed:
		if perr := protocolError(t.Result); perr != nil {
			return nil, perr
		}
		var res mcp.CallToolResult
		if err := json.Unmarshal(t.Result, &res); err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("tool %s returned an unreadable result: %v", t.Tool, err)}
		}
		return &res, nil
	case tasks.Cancelled:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("tool %s was cancelled: %s", t.Tool, t.StatusMessage)}
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("tool %s failed: %s", t.Tool, t.Error)}
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
