package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

// This file is the 2026-07-28 generation: tasks as the
// io.modelcontextprotocol/tasks extension (SEP-2663) and multi-round-trip
// input for plain calls (SEP-2322). No server-to-client requests: questions
// travel in results (inputRequests) and answers in requests
// (inputResponses, tasks/update).

// tasksExtension is the extension id of SEP-2663 tasks.
const tasksExtension = "io.modelcontextprotocol/tasks"

const metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"

// clientCaps are the capabilities in force for one request: a 2026-07-28
// request declares its own in _meta; otherwise the session's initialize.
func clientCaps(ss *mcp.ServerSession, params mcp.Params) *mcp.ClientCapabilities {
	if params != nil {
		if raw, ok := params.GetMeta()[metaClientCapabilities]; ok {
			var caps mcp.ClientCapabilities
			var roots struct {
				Roots *mcp.RootCapabilities `json:"roots"`
			}
			if data, err := json.Marshal(raw); err == nil && json.Unmarshal(data, &caps) == nil {
				_ = json.Unmarshal(data, &roots) // go-sdk's type cannot tell {} from absent
				caps.RootsV2 = roots.Roots
				return &caps
			}
		}
	}
	if p := ss.InitializeParams(); p != nil && p.Capabilities != nil {
		return p.Capabilities
	}
	return &mcp.ClientCapabilities{}
}

func declaresTasks(caps *mcp.ClientCapabilities) bool {
	_, ok := caps.Extensions[tasksExtension]
	return ok
}

// missingCapability is the -32021 error naming what the client must declare.
func missingCapability(msg string, required map[string]any) error {
	data, _ := json.Marshal(map[string]any{"requiredCapabilities": required})
	return &jsonrpc.Error{Code: codeMissingClientCapability, Message: msg, Data: data}
}

func missingTasks(what string) error {
	return missingCapability(what+" needs the "+tasksExtension+" extension: declare it in the request's client capabilities",
		map[string]any{"extensions": map[string]any{tasksExtension: map[string]any{}}})
}

// callModern routes a 2026-07-28 tools/call: a task for task-supporting
// tools when the client declared the extension, else a plain call whose
// questions come back as input_required results.
func (s *Server) callModern(ctx context.Context, sess *session, req *mcp.CallToolRequest, next mcp.MethodHandler) (mcp.Result, error) {
	st, ok := s.servedTool(req.Params.Name)
	if !ok {
		return nil, unknownTool(req.Params.Name)
	}
	caps := clientCaps(req.Session, req.Params)
	support := taskSupport(st.entry.Tool)
	switch {
	case support == abi.TaskRequired && !declaresTasks(caps):
		return nil, missingTasks("tool " + st.entry.Tool.Name)
	case support != abi.TaskForbidden && declaresTasks(caps) && !st.entry.Tool.DeferTask:
		if bad := st.checkArgs(ctx, s.opts.RunBudget, req.Params.Arguments); bad != nil {
			return bad, nil
		}
		t, err := s.startTask(ctx, sess, st.spec(), tasks.KindTask, req.Params.Arguments, req.Params, caps, 0)
		if err != nil {
			return nil, err
		}
		return s.createdTask(sess, t)
	}
	res, err := next(ctx, "tools/call", req)
	if r, ok := res.(*mcp.CallToolResult); ok && err == nil {
		if id, ok := r.Meta[metaDetached].(string); ok {
			t, err := s.store.Get(ctx, id)
			if err != nil {
				return nil, storeError(err)
			}
			return s.createdTask(sess, t)
		}
	}
	return res, err
}

// metaDetached marks, between callTool and the middleware, a plain call
// whose guest detached into a task.
const metaDetached = "io.github.wasmhost/detached"

// createdTask is the flat CreateTaskResult of SEP-2663.
func (s *Server) createdTask(sess *session, t *tasks.Task) (mcp.Result, error) {
	w := s.modernTask(t)
	out := map[string]any{"resultType": "task"}
	for _, k := range []string{"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} {
		if v, ok := w[k]; ok {
			out[k] = v
		}
	}
	return newRawResult(out)
}

// modernTask is t as tasks/get shows it to 2026-07-28 clients: the result
// inlined once completed, the error once failed, the questions while
// input_required.
func (s *Server) modernTask(t *tasks.Task) map[string]any {
	out := map[string]any{
		"resultType":     "complete",
		"taskId":         t.ID,
		"status":         t.Status,
		"createdAt":      t.CreatedAt.UTC().Format(time.RFC3339Nano),
		"lastUpdatedAt":  t.UpdatedAt.UTC().Format(time.RFC3339Nano),
		"ttlMs":          t.TTL.Milliseconds(),
		"pollIntervalMs": t.PollInterval.Milliseconds(),
	}
	if t.StatusMessage != "" {
		out["statusMessage"] = t.StatusMessage
	}
	switch t.Status {
	case tasks.Completed:
		if perr := protocolError(t.Result); perr != nil {
			out["status"] = tasks.Failed
			out["error"] = perr
			break
		}
		var result map[string]any
		_ = json.Unmarshal(t.Result, &result)
		out["result"] = result
	case tasks.Failed:
		out["error"] = map[string]any{"code": jsonrpc.CodeInternalError, "message": t.Error}
	case tasks.InputRequired:
		out["inputRequests"] = inputRequestsJSON(t.InputRequests)
	}
	return out
}

func inputRequestsJSON(reqs map[string]abi.InputRequest) map[string]any {
	out := make(map[string]any, len(reqs))
	for key, r := range reqs {
		entry := map[string]any{"method": r.Method}
		if len(r.Params) > 0 {
			entry["params"] = r.Params
		} else {
			entry["params"] = map[string]any{}
		}
		out[key] = entry
	}
	return out
}

// protocolError returns the JSON-RPC error a guest chose to fail its call
// with (abi.CallResult.Error), if any.
func protocolError(result json.RawMessage) *jsonrpc.Error {
	var r struct {
		Error *abi.CallError `json:"error"`
	}
	if json.Unmarshal(result, &r) != nil || r.Error == nil {
		return nil
	}
	return &jsonrpc.Error{Code: int64(r.Error.Code), Message: r.Error.Message, Data: r.Error.Data}
}

// runMRTR runs a 2026-07-28 plain request. A question from the guest ends
// the request with an input_required result carrying the questions and a
// signed requestState naming the suspended call; the client's retry carries
// the answers, which resume the same guest where it waits. Answers offered
// before the guest asks (a client may know the keys) are used when it does.
func (s *Server) runMRTR(ctx context.Context, sess *session, r guestRequest, caps *mcp.ClientCapabilities) (*tasks.Task, string, error) {
	var t *tasks.Task
	var err error
	if r.state != "" {
		badState := &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: it was not issued by this server, was altered, or belongs to another call"}
		id, ok := s.states.verify(r.state)
		if !ok {
			return nil, "", badState
		}
		t, err = s.store.Get(ctx, id)
		if err == nil && t.Owner != "" && t.Owner != sess.owner {
			// Another client's call (the stdio client's): a state that
			// leaked must not let anyone else answer it.
			return nil, "", badState
		}
		if err != nil || t.Kind != tasks.KindCall || t.Op != r.spec.op || t.Tool != r.spec.name {
			return nil, "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid requestState: the call it names has ended or expired; send the request again"}
		}
	} else if t, err = s.startTask(ctx, sess, r.spec, tasks.KindCall, r.args, r.params, caps, 0); err != nil {
		return nil, "", err
	}
	offered := responsesJSON(r.responses)
	t, err = s.watcher.Wait(ctx, t.ID, func(t *tasks.Task) bool {
		if t.Status.Terminal() || t.Kind == tasks.KindTask {
			return true
		}
		if t.Status != tasks.InputRequired {
			return false
		}
		return !s.applyOffered(ctx, t, offered) // answered: wait for the guest's next move
	})
	if err != nil {
		return nil, "", storeError(err)
	}
	if t.Status == tasks.InputRequired && t.Kind == tasks.KindCall {
		return t, s.states.sign(t.ID), nil
	}
	return t, "", nil
}

// applyOffered answers the pending questions of t that offered has a valid
// answer for; it reports whether it answered any.
func (s *Server) applyOffered(ctx context.Context, t *tasks.Task, offered map[string]json.RawMessage) bool {
	answered := false
	for key, req := range t.InputRequests {
		raw, ok := offered[key]
		if !ok {
			continue
		}
		delete(offered, key) // one use: a re-asked question needs a new answer
		if err := validAnswer(ctx, s.opts.RunBudget, req, raw); err != nil {
			s.logger.Debug("answer refused", "task", t.ID, "key", key, "error", err)
			continue
		}
		if err := s.store.Answer(ctx, t.ID, key, abi.InputResponse{Result: raw}); err == nil {
			answered = true
		}
	}
	return answered
}

// validAnswer checks an answer against the question: the right kind of
// result, and for an accepted elicitation, content matching the
// requestedSchema, validated under ctx and budget (host.Validate).
func validAnswer(ctx context.Context, budget time.Duration, req abi.InputRequest, raw json.RawMessage) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return fmt.Errorf("answer is not an object: %w", err)
	}
	switch req.Method {
	case abi.MethodElicit:
		var res mcp.ElicitResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return err
		}
		switch res.Action {
		case "accept":
		case "decline", "cancel":
			return nil
		default:
			return fmt.Errorf("elicitation action %.64q is not accept, decline or cancel", res.Action)
		}
		var p struct {
			RequestedSchema *jsonschema.Schema `json:"requestedSchema"`
		}
		if json.Unmarshal(req.Params, &p) != nil || p.RequestedSchema == nil {
			return nil
		}
		resolved, err := p.RequestedSchema.Resolve(nil)
		if err != nil {
			return nil // the guest's schema is its own problem; do not block the answer
		}
		content := map[string]any{}
		for k, v := range res.Content {
			content[k] = v
		}
		if err := host.Validate(ctx, budget, func() error { return resolved.Validate(content) }); err != nil {
			return errors.New(clip(err.Error(), 300)) // it may quote the value
		}
	case abi.MethodSample:
		if _, ok := probe["content"]; !ok {
			return errors.New("sampling answer has no content")
		}
	case abi.MethodListRoots:
		if _, ok := probe["roots"]; !ok {
			return errors.New("roots answer has no roots")
		}
	}
	return nil
}

func responsesJSON(m mcp.InputResponseMap) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if raw, err := json.Marshal(v); err == nil {
			out[k] = raw
		}
	}
	return out
}

// mcpInputRequests converts the guest's questions to go-sdk's typed form.
func mcpInputRequests(reqs map[string]abi.InputRequest) mcp.InputRequestMap {
	out := make(mcp.InputRequestMap, len(reqs))
	for key, r := range reqs {
		var v mcp.InputRequest
		switch r.Method {
		case abi.MethodElicit:
			v = &mcp.ElicitParams{}
		case abi.MethodSample:
			v = &mcp.CreateMessageParams{}
		case abi.MethodListRoots:
			v = &mcp.ListRootsParams{}
		default:
			continue
		}
		if len(r.Params) > 0 {
			if err := json.Unmarshal(r.Params, v); err != nil {
				continue
			}
		}
		out[key] = v
	}
	return out
}

type updateTaskParams struct {
	mcp.ParamsBase
	TaskID         string                     `json:"taskId"`
	InputResponses map[string]json.RawMessage `json:"inputResponses"`
}

// updateTask is tasks/update: answers to some or all of a task's questions.
// Answers to keys that are not pending are ignored, as SEP-2663 asks.
func (s *Server) updateTask(ctx context.Context, ss *mcp.ServerSession, p *updateTaskParams) (*rawResult, error) {
	sess := s.sessionFor(ss)
	if !sess.modern() {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "tasks/update is part of protocol 2026-07-28; this session speaks " + sess.protocolVersion()}
	}
	if p == nil {
		p = &updateTaskParams{}
	}
	if err := modernGate(ss, p, "tasks/update"); err != nil {
		return nil, err
	}
	_, t, err := s.ownedTask(ctx, ss, &taskIDParams{TaskID: p.TaskID})
	if err != nil {
		return nil, err
	}
	s.applyOffered(ctx, t, p.InputResponses)
	return newRawResult(map[string]any{"resultType": "complete"})
}
