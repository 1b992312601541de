package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
)

// validateDescription checks what a plugin describes against what MCP
// clients (and go-sdk, which panics on some of it) accept, so that a bad
// plugin fails at Load and not in the middle of tools/list.
func validateDescription(d *abi.Description) error {
	if len(d.Tools) == 0 && len(d.Prompts) == 0 && len(d.Resources) == 0 && len(d.ResourceTemplates) == 0 {
		return errors.New("describes no tools, prompts or resources")
	}
	if n := len(d.Tools) + len(d.Prompts) + len(d.Resources) + len(d.ResourceTemplates); n > maxDescribed {
		return fmt.Errorf("describes %d tools, prompts and resources; at most %d are served per plugin", n, maxDescribed)
	}
	seen := make(map[string]bool, len(d.Tools))
	for i, t := range d.Tools {
		if err := validToolName(t.Name); err != nil {
			return fmt.Errorf("tool %d: %w", i, err)
		}
		if seen[t.Name] {
			return fmt.Errorf("tool %q is described twice", t.Name)
		}
		seen[t.Name] = true
		title := t.Title
		if t.Annotations != nil {
			title += t.Annotations.Title
		}
		if err := textSizes(title, t.Description); err != nil {
			return fmt.Errorf("tool %q: %w", t.Name, err)
		}
		if err := objectSchema(t.InputSchema); err != nil {
			return fmt.Errorf("tool %q: inputSchema %w", t.Name, err)
		}
		if err := schemaComplexity(t.InputSchema); err != nil {
			return fmt.Errorf("tool %q: inputSchema %w", t.Name, err)
		}
		if len(t.OutputSchema) > 0 && string(t.OutputSchema) != "null" {
			if err := objectSchema(t.OutputSchema); err != nil {
				return fmt.Errorf("tool %q: outputSchema %w", t.Name, err)
			}
			if err := schemaComplexity(t.OutputSchema); err != nil {
				return fmt.Errorf("tool %q: outputSchema %w", t.Name, err)
			}
		}
		switch t.TaskSupport {
		case "", abi.TaskForbidden, abi.TaskOptional, abi.TaskRequired:
		default:
			return fmt.Errorf("tool %q: taskSupport %.64q is not one of %q, %q, %q",
				t.Name, t.TaskSupport, abi.TaskForbidden, abi.TaskOptional, abi.TaskRequired)
		}
		if t.MaxConcurrency < 0 {
			return fmt.Errorf("tool %q: maxConcurrency %d is negative; 0 means no cap of its own", t.Name, t.MaxConcurrency)
		}
		if t.DeferTask && (t.TaskSupport == "" || t.TaskSupport == abi.TaskForbidden) {
			return fmt.Errorf("tool %q: deferTask needs taskSupport %q or %q: a tool that never runs as a task cannot become one",
				t.Name, abi.TaskOptional, abi.TaskRequired)
		}
	}
	return validateExtras(d)
}

// validateExtras checks the optional prompts, resources and templates.
func validateExtras(d *abi.Description) error {
	prompts := make(map[string]bool, len(d.Prompts))
	for i, p := range d.Prompts {
		if err := validToolName(p.Name); err != nil {
			return fmt.Errorf("prompt %d: %s", i, strings.Replace(err.Error(), "tool name", "prompt name", 1))
		}
		if prompts[p.Name] {
			return fmt.Errorf("prompt %q is described twice", p.Name)
		}
		prompts[p.Name] = true
		if err := textSizes(p.Title, p.Description); err != nil {
			return fmt.Errorf("prompt %q: %w", p.Name, err)
		}
		args := make(map[string]bool, len(p.Arguments))
		for j, a := range p.Arguments {
			if a.Name == "" {
				return fmt.Errorf("prompt %q: argument %d has no name", p.Name, j)
			}
			if err := textSizes(a.Name+a.Title, a.Description); err != nil {
				return fmt.Errorf("prompt %q: argument %d: %w", p.Name, j, err)
			}
			if args[a.Name] {
				return fmt.Errorf("prompt %q: argument %.64q is described twice", p.Name, a.Name)
			}
			args[a.Name] = true
		}
	}
	uris := make(map[string]bool, len(d.Resources))
	for i, r := range d.Resources {
		if r.URI == "" {
			return fmt.Errorf("resource %d (%.64q) has no uri", i, r.Name)
		}
		if uris[r.URI] {
			return fmt.Errorf("resource %.64q is described twice", r.URI)
		}
		uris[r.URI] = true
		if r.Name == "" {
			return fmt.Errorf("resource %.64q has no name", r.URI)
		}
		if err := textSizes(r.Name+r.Title+r.MimeType, r.Description); err != nil {
			return fmt.Errorf("resource %q: %w", r.URI, err)
		}
	}
	tmpls := make(map[string]bool, len(d.ResourceTemplates))
	for i, t := range d.ResourceTemplates {
		if err := validTemplate(t.URITemplate); err != nil {
			return fmt.Errorf("resource template %d: %w", i, err)
		}
		if tmpls[t.URITemplate] {
			return fmt.Errorf("resource template %.64q is described twice", t.URITemplate)
		}
		tmpls[t.URITemplate] = true
		if t.Name == "" {
			return fmt.Errorf("resource template %.64q has no name", t.URITemplate)
		}
		if err := textSizes(t.Name+t.Title+t.MimeType, t.Description); err != nil {
			return fmt.Errorf("resource template %q: %w", t.URITemplate, err)
		}
	}
	return nil
}

// Caps on what a plugin describes: every client lists it, and models read
// it on every turn.
const (
	maxDescribed       = 1000
	maxTitleSize       = 256
	maxDescriptionSize = 8 << 10
)

// textSizes checks a title (names and titles joined) and a description
// against their caps.
func textSizes(title, description string) error {
	if len(title) > maxTitleSize {
		return fmt.Errorf("name and title are %d bytes, over the %d byte limit", len(title), maxTitleSize)
	}
	if len(description) > maxDescriptionSize {
		return fmt.Errorf("description is %d bytes, over the %d byte limit", len(description), maxDescriptionSize)
	}
	return nil
}

// validTemplate accepts RFC 6570 level-1 templates with at least one
// variable: "{name}" expressions of A-Z a-z 0-9 _ . between literals.
func validTemplate(tmpl string) error {
	if !strings.Contains(tmpl, "{") {
		return fmt.Errorf("uriTemplate %.64q has no {variable}; describe a fixed URI as a resource", tmpl)
	}
	rest := tmpl
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			break
		}
		if rest[open] == '}' {
			return fmt.Errorf("uriTemplate %.64q has an unmatched }", tmpl)
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return fmt.Errorf("uriTemplate %.64q has an unclosed {", tmpl)
		}
		name := rest[open+1 : open+end]
		if name == "" {
			return fmt.Errorf("uriTemplate %.64q has an empty {}", tmpl)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
				return fmt.Errorf("uriTemplate %.64q: variable %.64q contains %q; only level-1 {name} expressions are supported", tmpl, name, r)
			}
		}
		rest = rest[open+end+1:]
	}
	return nil
}

// validToolName applies MCP's tool name rule: 1 to 128 characters from
// A-Z a-z 0-9 _ - .
func validToolName(name string) error {
	if name == "" {
		return errors.New("tool name is empty")
	}
	if len(name) > 128 {
		return fmt.Errorf("tool name %.20q... is longer than 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("tool name %q contains %q; use only A-Z a-z 0-9 _ - .", name, r)
		}
	}
	return nil
}

// objectSchema checks that raw is a JSON Schema for objects.
func objectSchema(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New("is missing")
	}
	var s struct {
		Type any `json:"type"`
	}
	if !isObject(raw) || json.Unmarshal(raw, &s) != nil {
		return errors.New("is not a JSON object")
	}
	if s.Type != "object" {
		return fmt.Errorf(`must have "type": "object" (has %v)`, s.Type)
	}
	return nil
}
