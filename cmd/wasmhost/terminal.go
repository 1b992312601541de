package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/internal/safetext"
)

// terminalEnv is the host.Env of `wasmhost call`: a person at a terminal
// answers elicitations; sampling is not available.
type terminalEnv struct {
	in   *bufio.Reader
	out  io.Writer
	root string
}

func (e *terminalEnv) Input(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	out := make([]abi.InputResponse, len(reqs))
	for i, r := range reqs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch r.Method {
		case abi.MethodElicit:
			res, err := e.elicit(r.Params)
			if err != nil {
				out[i] = elicit.Failed(err)
				continue
			}
			out[i] = abi.InputResponse{Result: res}
		case abi.MethodListRoots:
			out[i] = abi.InputResponse{Result: e.roots()}
		default:
			out[i] = elicit.Unsupported(r.Method)
		}
	}
	return out, nil
}

type elicitSchema struct {
	Properties map[string]struct {
		Type        string   `json:"type"`
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Enum        []string `json:"enum"`
	} `json:"properties"`
	Required []string `json:"required"`
}

func (e *terminalEnv) elicit(params json.RawMessage) (json.RawMessage, error) {
	var p struct {
		Message         string       `json:"message"`
		RequestedSchema elicitSchema `json:"requestedSchema"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("unreadable elicitation: %w", err)
	}
	// Everything the guest wrote is escaped: a message must not clear the
	// screen, write the clipboard (OSC 52) or overwrite the question with a
	// carriage return.
	fmt.Fprintf(e.out, "\n? %s\n", safetext.Line(p.Message))
	action := strings.ToLower(e.ask("  [a]ccept, [d]ecline or [c]ancel", "a"))
	switch {
	case strings.HasPrefix(action, "d"):
		return json.Marshal(map[string]string{"action": "decline"})
	case strings.HasPrefix(action, "c"):
		return json.Marshal(map[string]string{"action": "cancel"})
	}
	names := make([]string, 0, len(p.RequestedSchema.Properties))
	for name := range p.RequestedSchema.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	content := map[string]any{}
	for _, name := range names {
		prop := p.RequestedSchema.Properties[name]
		label := safetext.Line(name)
		if prop.Description != "" {
			label += " — " + safetext.Line(prop.Description)
		}
		for {
			v, ok := e.field(label, prop.Type, prop.Enum, slices.Contains(p.RequestedSchema.Required, name))
			if ok {
				if v != nil {
					content[name] = v
				}
				break
			}
			fmt.Fprintf(e.out, "  not a valid %s, try again\n", safetext.Line(prop.Type))
		}
	}
	return json.Marshal(map[string]any{"action": "accept", "content": content})
}

// field reads one value; ok is false when the answer does not parse.
func (e *terminalEnv) field(label, typ string, enum []string, required bool) (any, bool) {
	switch {
	case len(enum) > 0:
		s := e.ask(fmt.Sprintf("  %s (%s)", label, safetext.Line(strings.Join(enum, "/"))), "")
		return s, slices.Contains(enum, s)
	case typ == "boolean":
		s := strings.ToLower(e.ask(fmt.Sprintf("  %s (y/n)", label), ""))
		return strings.HasPrefix(s, "y"), s != "" || !required
	case typ == "number" || typ == "integer":
		s := e.ask("  "+label, "")
		if s == "" && !required {
			return nil, true
		}
		n, err := strconv.ParseFloat(s, 64)
		return n, err == nil && (typ == "number" || n == float64(int64(n)))
	}
	s := e.ask("  "+label, "")
	if s == "" && !required {
		return nil, true
	}
	return s, s != "" || !required
}

func (e *terminalEnv) ask(prompt, def string) string {
	fmt.Fprintf(e.out, "%s: ", prompt)
	line, _ := e.in.ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		return def
	}
	return line
}

// Log does nothing: the host already writes guest log lines to stderr.
func (e *terminalEnv) Log(abi.LogLevel, string) {}

func (e *terminalEnv) Progress(p abi.Progress) {
	msg := safetext.Line(p.Message)
	if p.Total > 0 {
		fmt.Fprintf(e.out, "progress: %.0f/%.0f %s\n", p.Progress, p.Total, msg)
		return
	}
	fmt.Fprintf(e.out, "progress: %.0f %s\n", p.Progress, msg)
}

// roots asks the person before telling the tool where it runs: the working
// directory is no business of a tool unless they say so. No means an empty
// list.
func (e *terminalEnv) roots() json.RawMessage {
	answer := strings.ToLower(e.ask(fmt.Sprintf("\n? The tool asks for your roots. Share the working directory %s with it? [y/N]",
		safetext.Line(e.root)), "n"))
	if !strings.HasPrefix(answer, "y") {
		return json.RawMessage(`{"roots":[]}`)
	}
	return terminalRoot(e.root)
}
