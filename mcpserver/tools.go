package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

// servedTool is a catalog tool as registered with go-sdk, with its input
// schema resolved once for validating every call.
type servedTool struct {
	entry  host.ToolEntry
	schema *jsonschema.Resolved
	linear bool            // host.LinearSchema: validated inline
	raw    json.RawMessage // the tool as last registered, to spot changes
}

// CatalogChanged brings the served tools, prompts and resources in line
// with the catalog; go-sdk sends the list_changed notifications.
func (s *Server) CatalogChanged() {
	want := make(map[string]host.ToolEntry)
	for _, e := range s.opts.Catalog.Tools() {
		want[e.Tool.Name] = e
	}
	refused := map[host.Conflict]string{}
	for _, p := range s.opts.Catalog.Problems() {
		if p.Conflict.Kind != "" {
			refused[p.Conflict] = filepath.Base(p.File)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Told once the tools below are in place, so that a client listing
	// them on the warning sees the note.
	defer s.announceRefused(refused)
	s.syncPromptsAndResources()
	var gone []string
	for name := range s.tools {
		if _, ok := want[name]; !ok {
			gone = append(gone, name)
			delete(s.tools, name)
		}
	}
	if len(gone) > 0 {
		s.mcp.RemoveTools(gone...)
	}
	for name, e := range want {
		if note := refusedNote(refused, name); note != "" {
			e.Tool.Description = strings.TrimLeft(e.Tool.Description+"\n\n"+note, "\n")
		}
		raw, _ := json.Marshal(e.Tool)
		if cur, ok := s.tools[name]; ok && string(cur.raw) == string(raw) && cur.entry.Plugin == e.Plugin {
			continue
		}
		st, err := newServedTool(e, raw)
		if err != nil {
			s.logger.Warn("tool not served", "tool", name, "plugin", e.Plugin.Path(), "error", err)
			continue
		}
		s.tools[name] = st
		s.mcp.AddTool(&mcp.Tool{
			Name:         e.Tool.Name,
			Title:        e.Tool.Title,
			Description:  e.Tool.Description,
			InputSchema:  e.Tool.InputSchema,
			OutputSchema: nilIfEmpty(e.Tool.OutputSchema),
			Annotations:  mcpAnnotations(e.Tool.Annotations),
		}, s.callTool)
	}
}

// refusedNote is what a served tool's description says about the plugins
// refused its name, so that the model and the person reading tools/list
// know one tried: "" when none did.
func refusedNote(refused map[host.Conflict]string, name string) string {
	var files []string
	for c, file := range refused {
		if c.Kind == "tool" && c.Name == name {
			files = append(files, safetext.Line(file))
		}
	}
	if len(files) == 0 {
		return ""
	}
	sort.Strings(files)
	return fmt.Sprintf("Note: %s also offered a tool named %s; wasmhost serves only this one, from the plugin that served it first.",
		strings.Join(files, ", "), safetext.Line(name))
}

// announceRefused tells every connected client, by a warning log message,
// of each name newly refused to a newcomer (the operator's log says it
// too): a tool that silently failed to appear would hide an attempt to
// take another's name. Called with s.mu held; the messages go out
// without it. go-sdk sends log messages only to clients that set a log
// level; the others learn it from the tool's description (refusedNote).
func (s *Server) announceRefused(refused map[host.Conflict]string) {
	var fresh []*mcp.LoggingMessageParams
	for c, file := range refused {
		if _, told := s.refused[c]; told {
			continue
		}
		fresh = append(fresh, &mcp.LoggingMessageParams{Level: "warning", Logger: "wasmhost", Data: map[string]any{
			"message": fmt.Sprintf("plugin %s was refused the %s name %q: plugin %s serves it; rename one of them",
				safetext.Line(file), c.Kind, safetext.Line(c.Name), safetext.Line(c.Holder)),
			"plugin": safetext.Line(file), "kind": c.Kind, "name": safetext.Line(c.Name), "servedBy": safetext.Line(c.Holder),
		}})
	}
	s.refused = refused
	if len(fresh) == 0 {
		return
	}
	for _, sess := range s.sessions {
		go func() {
			ctx, cancel := context.WithTimeout(sess.ctx, 10*time.Second)
			defer cancel()
			for _, m := range fresh {
				if err := sess.ss.Log(ctx, m); err != nil {
					s.logger.Debug("could not tell a client of a refused name", "error", err)
					return
				}
			}
		}()
	}
}

func newServedTool(e host.ToolEntry, raw json.RawMessage) (*servedTool, error) {
	var schema jsonschema.Schema
	if err := json.Unmarshal(e.Tool.InputSchema, &schema); err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	resolved, err := schema.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	return &servedTool{entry: e, schema: resolved, linear: host.LinearSchema(e.Tool.InputSchema), raw: raw}, nil
}

func (s *Server) servedTool(name string) (*servedTool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tools[name]
	return st, ok
}

// checkArgs validates arguments against the tool's input schema, inline
// when the schema is linear (host.LinearSchema), else under the call's
// context and run budget (host.Validate), and returns a tool-error result
// naming what is wrong, or nil.
func (st *servedTool) checkArgs(ctx context.Context, budget time.Duration, args json.RawMessage) *mcp.CallToolResult {
	var v any = map[string]any{}
	if len(args) > 0 && string(args) != "null" {
		if err := json.Unmarshal(args, &v); err != nil {
			return toolError(fmt.Sprintf("invalid arguments for tool %s: %s", st.entry.Tool.Name, clip(err.Error(), 300)))
		}
	}
	check := func() error { return st.schema.Validate(v) }
	var err error
	if st.linear && ctx.Err() == nil { // a call already ended is refused by Validate
		err = host.ValidateInline(check)
	} else {
		err = host.Validate(ctx, budget, check)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, host.ErrRunBudget) || ctx.Err() != nil:
		return toolError(fmt.Sprintf("arguments for tool %s not checked: %v", st.entry.Tool.Name, err))
	}
	return toolError(fmt.Sprintf("invalid arguments for tool %s: %s", st.entry.Tool.Name, clip(strings.TrimPrefix(err.Error(), "validating root: "), 300)))
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: msg}}, IsError: true}
}

func taskSupport(t abi.Tool) abi.TaskSupport {
	if t.TaskSupport == "" {
		return abi.TaskForbidden
	}
	return t.TaskSupport
}

// toolsListWithExecution adds execution.taskSupport to each tool of a
// tools/list result; go-sdk's Tool has no such field.
func (s *Server) toolsListWithExecution(res mcp.Result) (mcp.Result, error) {
	out, err := newRawResult(res)
	if err != nil {
		return nil, err
	}
	list, _ := out.body["tools"].([]any)
	for _, item := range list {
		tool, ok := item.(map[string]any)
		if !ok {
			continue
		}
		name, _ := tool["name"].(string)
		if st, ok := s.servedTool(name); ok {
			tool["execution"] = map[string]any{"taskSupport": taskSupport(st.entry.Tool)}
		}
	}
	return out, nil
}

func nilIfEmpty(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

func mcpAnnotations(a *abi.ToolAnnotations) *mcp.ToolAnnotations {
	if a == nil {
		return nil
	}
	return &mcp.ToolAnnotations{
		Title:           a.Title,
		ReadOnlyHint:    a.ReadOnlyHint,
		DestructiveHint: a.DestructiveHint,
		IdempotentHint:  a.IdempotentHint,
		OpenWorldHint:   a.OpenWorldHint,
	}
}
