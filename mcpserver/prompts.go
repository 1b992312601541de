package mcpserver

import (
	"context"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// This file serves the prompts and resources plugins provide. Each
// prompts/get and resources/read runs its guest like a plain tool call: a
// record in the store, a worker, questions relayed to the client.

// syncPromptsAndResources brings the served prompts, resources and
// templates in line with the catalog; s.mu is held.
func (s *Server) syncPromptsAndResources() {
	prompts := map[string]any{}
	for _, e := range s.opts.Catalog.Prompts() {
		prompts[e.Prompt.Name] = e.Prompt
	}
	resources := map[string]any{}
	for _, e := range s.opts.Catalog.Resources() {
		resources[e.Resource.URI] = e.Resource
	}
	templates := map[string]any{}
	for _, e := range s.opts.Catalog.ResourceTemplates() {
		templates[e.Template.URITemplate] = e.Template
	}
	syncServed(s.prompts, prompts, s.mcp.RemovePrompts, func(_ string, v any) {
		p := v.(abi.Prompt)
		mp := &mcp.Prompt{Name: p.Name, Title: p.Title, Description: p.Description}
		for _, a := range p.Arguments {
			mp.Arguments = append(mp.Arguments, &mcp.PromptArgument{Name: a.Name, Title: a.Title, Description: a.Description, Required: a.Required})
		}
		s.mcp.AddPrompt(mp, s.getPrompt)
	})
	syncServed(s.resources, resources, s.mcp.RemoveResources, func(_ string, v any) {
		r := v.(abi.Resource)
		s.mcp.AddResource(&mcp.Resource{URI: r.URI, Name: r.Name, Title: r.Title, Description: r.Description, MIMEType: r.MimeType}, s.readResource)
	})
	syncServed(s.templates, templates, s.mcp.RemoveResourceTemplates, func(_ string, v any) {
		t := v.(abi.ResourceTemplate)
		s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: t.URITemplate, Name: t.Name, Title: t.Title, Description: t.Description, MIMEType: t.MimeType}, s.readResource)
	})
}

// syncServed makes served match want: remove what went, add what is new or
// changed (compared by JSON).
func syncServed(served map[string]string, want map[string]any, remove func(...string), add func(string, any)) {
	var gone []string
	for key := range served {
		if _, ok := want[key]; !ok {
			gone = append(gone, key)
			delete(served, key)
		}
	}
	if len(gone) > 0 {
		remove(gone...)
	}
	for key, v := range want {
		raw, _ := json.Marshal(v)
		if served[key] == string(raw) {
			continue
		}
		served[key] = string(raw)
		add(key, v)
	}
}

func (s *Server) getPrompt(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	args, _ := json.Marshal(req.Params.Arguments)
	t, state, err := s.runGuest(ctx, s.sessionFor(req.Session), guestRequest{
		spec:      taskSpec{op: tasks.OpGetPrompt, name: req.Params.Name},
		args:      args,
		params:    req.Params,
		responses: req.Params.InputResponses,
		state:     req.Params.RequestState,
	})
	switch {
	case err != nil:
		return nil, err
	case state != "":
		return &mcp.GetPromptResult{InputRequests: mcpInputRequests(t.InputRequests), RequestState: state}, nil
	}
	var res mcp.GetPromptResult
	return &res, finished(t, &res)
}

func (s *Server) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	t, state, err := s.runGuest(ctx, s.sessionFor(req.Session), guestRequest{
		spec:      taskSpec{op: tasks.OpReadResource, name: req.Params.URI},
		params:    req.Params,
		responses: req.Params.InputResponses,
		state:     req.Params.RequestState,
	})
	switch {
	case err != nil:
		return nil, err
	case state != "":
		return &mcp.ReadResourceResult{InputRequests: mcpInputRequests(t.InputRequests), RequestState: state}, nil
	}
	var res mcp.ReadResourceResult
	return &res, finished(t, &res)
}
