package host

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/abi"
)

// validateDescription checks what a plugin describes against what MCP
// clients (and go-sdk, which panics on some of it) accept, so that a bad
// plugin fails at Load and not in the middle of tools/list.
func validateDescription(d *abi.Description) error {
	if len(d.Tools) == 0 {
		return errors.New("describes no tools")
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
		if err := objectSchema(t.InputSchema); err != nil {
			return fmt.Errorf("tool %q: inputSchema %w", t.Name, err)
		}
		if len(t.OutputSchema) > 0 && string(t.OutputSchema) != "null" {
			if err := objectSchema(t.OutputSchema); err != nil {
				return fmt.Errorf("tool %q: outputSchema %w", t.Name, err)
			}
		}
		switch t.TaskSupport {
		case "", abi.TaskForbidden, abi.TaskOptional, abi.TaskRequired:
		default:
			return fmt.Errorf("tool %q: taskSupport %q is not one of %q, %q, %q",
				t.Name, t.TaskSupport, abi.TaskForbidden, abi.TaskOptional, abi.TaskRequired)
		}
		if t.DeferTask && (t.TaskSupport == "" || t.TaskSupport == abi.TaskForbidden) {
			return fmt.Errorf("tool %q: deferTask needs taskSupport %q or %q: a tool that never runs as a task cannot become one",
				t.Name, abi.TaskOptional, abi.TaskRequired)
		}
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
