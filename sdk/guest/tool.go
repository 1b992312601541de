package guest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
)

// TaskSupport says whether a tool may, must or must not run as a background
// task (MCP's execution.taskSupport).
type TaskSupport = abi.TaskSupport

const (
	// TaskForbidden: the tool only runs as an ordinary, synchronous call.
	TaskForbidden = abi.TaskForbidden
	// TaskOptional: the client chooses.
	TaskOptional = abi.TaskOptional
	// TaskRequired: the tool only runs as a task.
	TaskRequired = abi.TaskRequired
)

// Annotations are MCP's behavioural hints about a tool.
type Annotations = abi.ToolAnnotations

// Tool is what a plugin says about one tool; the SDK adds the schemas.
type Tool struct {
	// Name is the tool's MCP name, unique within the plugin.
	Name string
	// Title is a short human-readable name.
	Title string
	// Description tells the model what the tool does and when to use it.
	Description string
	// Annotations are optional hints (read-only, idempotent, ...).
	Annotations *Annotations
	// TaskSupport defaults to [TaskForbidden].
	TaskSupport TaskSupport
	// DeferTask makes a tool that supports tasks start as an ordinary
	// call even when the client would take a task: it can ask its
	// questions while the client waits, then call [Call.Detach] to let the
	// rest run in the background. It needs TaskSupport optional or
	// required.
	DeferTask bool
	// MaxConcurrency caps the calls of this tool the host runs at once
	// (within the plugin's share of its run slots); 0 means no cap of its
	// own.
	MaxConcurrency int
	// InputSchema, if set, is published as the tool's inputSchema verbatim
	// instead of the schema derived from the handler's input type, for a
	// schema the SDK cannot derive ($defs, allOf, if/then/else, vendor
	// keywords). It must be a JSON object with "type": "object". The
	// arguments are still decoded into the input type, but not checked
	// against it for required fields: the published schema is the contract.
	InputSchema json.RawMessage
}

// Text is a tool output that becomes a single text content block.
type Text string

// Content is one MCP content block; build it with [TextContent],
// [ImageContent], [AudioContent], [ResourceContent] or
// [ResourceBlobContent].
type Content = abi.Content

// EmbeddedResource is the resource inside a resource content block.
type EmbeddedResource = abi.EmbeddedResource

// TextContent returns a text content block.
func TextContent(text string) Content { return Content{Type: "text", Text: text} }

// ImageContent returns an image content block holding data.
func ImageContent(data []byte, mimeType string) Content {
	return Content{Type: "image", Data: base64.StdEncoding.EncodeToString(data), MimeType: mimeType}
}

// AudioContent returns an audio content block holding data.
func AudioContent(data []byte, mimeType string) Content {
	return Content{Type: "audio", Data: base64.StdEncoding.EncodeToString(data), MimeType: mimeType}
}

// ResourceContent returns a resource content block embedding a text
// resource: its URI, MIME type and contents.
func ResourceContent(uri, mimeType, text string) Content {
	return Content{Type: "resource", Resource: &EmbeddedResource{URI: uri, MimeType: mimeType, Text: text}}
}

// ResourceBlobContent returns a resource content block embedding a binary
// resource.
func ResourceBlobContent(uri, mimeType string, data []byte) Content {
	return Content{Type: "resource", Resource: &EmbeddedResource{URI: uri, MimeType: mimeType, Blob: base64.StdEncoding.EncodeToString(data)}}
}

// ProtocolError, returned by a handler (as a value or a pointer, possibly
// wrapped), fails the call at the protocol level with this JSON-RPC error
// instead of returning a result: the client gets an error response, not a
// tool error for the model to read. Use it for what MCP defines as a
// protocol error, such as -32021 when the client lacks a capability the
// tool cannot do without; report everything else as an ordinary error.
//
//	if errors.Is(err, guest.ErrUnsupported) {
//		return "", guest.ProtocolError{Code: -32021, Message: "this tool needs sampling",
//			Data: map[string]any{"requiredCapabilities": map[string]any{"sampling": map[string]any{}}}}
//	}
//
// A ProtocolError without a code or a message, or whose Data does not
// encode, becomes a tool error saying so.
type ProtocolError struct {
	// Code is the JSON-RPC error code; it must not be 0.
	Code int
	// Message says what went wrong; it must not be empty.
	Message string
	// Data, if not nil, is encoded as the error's data.
	Data any
}

func (e ProtocolError) Error() string {
	return fmt.Sprintf("protocol error %d: %s", e.Code, e.Message)
}

// Result is a tool output with full control over the MCP CallToolResult:
// several content blocks, structured content without an output schema, or
// a tool error with content of its own.
type Result struct {
	Content []Content
	// Structured, if not nil, is encoded as structuredContent; it must
	// encode as a JSON object.
	Structured any
	// IsError marks the result as a tool error: the tool ran and failed,
	// and the content says why, for the model to read.
	IsError bool
}

// outputKind is how a handler's output becomes a CallResult.
type outputKind int

const (
	outputText       outputKind = iota // Text or string: one text block
	outputResult                       // Result or *Result: as given
	outputStructured                   // struct or map: structuredContent + a JSON text block
)

// tool is one registered tool.
type tool struct {
	def     Tool
	in, out reflect.Type
	kind    outputKind
	// run decodes the arguments, calls the handler and encodes its output.
	// A panic in the handler is not recovered: it traps the guest.
	run func(c *Call, args []byte) abi.CallResult
}

// registry holds the tools in registration order.
var registry struct {
	tools  []*tool
	byName map[string]*tool
}

// Register adds a tool handled by handler. Call it from an init function:
// the host asks for the tools as soon as the plugin is loaded.
//
// In must be a struct: its fields are the tool's arguments and its schema
// the tool's inputSchema (see [SchemaFor] for the rules). Out decides the
// result:
//   - [Text] (or string): one text content block;
//   - a struct or map, or a pointer to one: the value is the result's
//     structuredContent, its schema the tool's outputSchema, and its JSON
//     also goes in a text block for clients that read only content;
//   - [Result] (or *Result): several content blocks, or a tool error with
//     content of its own.
//
// A handler that returns an error produces a tool error: a result with
// isError set and the error's text as its content, which the model reads.
// Arguments that do not decode into In produce a tool error naming the
// field. A handler that panics traps the guest: the call fails at the
// protocol level (the MCP client sees an error, not a result), and the
// panic's message and stack go to the guest's stderr, which the host logs.
//
// Register panics if the tool has no name, its name is taken, or In or Out
// cannot be described, since these are mistakes in the plugin's source.
func Register[In, Out any](t Tool, handler func(c *Call, in In) (Out, error)) {
	inType, outType := reflect.TypeFor[In](), reflect.TypeFor[Out]()
	// The fields a call must give, derived once here rather than per call
	// (addTool reports a type that cannot be derived).
	var required []string
	if t.InputSchema == nil {
		if s, err := newDeriver(nil).derive(inType, ""); err == nil {
			required = s.Required
		}
	}
	if err := addTool(t, inType, outType, func(c *Call, args []byte) abi.CallResult {
		var in In
		if err := decodeArgs(args, &in, required); err != nil {
			return toolError(err)
		}
		out, err := handler(c, in)
		if err != nil {
			return handlerError(err)
		}
		return encodeOutput(any(out))
	}); err != nil {
		panic(err)
	}
	warmCodecs[In]()
}

// warmCodecs fills encoding/json's caches for a tool's input type and for
// results while the guest initialises: the host snapshots the guest after
// initialisation and starts every call from there, so work left for the
// first call would be redone by every call.
func warmCodecs[In any]() {
	var in In
	_ = decodeArgs([]byte("{}"), &in, nil)
	_, _ = json.Marshal(abi.CallResult{Content: []abi.Content{TextContent("")}})
}

func addTool(t Tool, in, out reflect.Type, run func(*Call, []byte) abi.CallResult) error {
	if t.Name == "" {
		return errors.New("guest: Register: tool has no name")
	}
	if _, dup := registry.byName[t.Name]; dup {
		return fmt.Errorf("guest: Register: tool %q registered twice", t.Name)
	}
	if in.Kind() != reflect.Struct {
		return fmt.Errorf("guest: Register: tool %q: input type %s must be a struct", t.Name, in)
	}
	if _, err := newDeriver(nil).derive(in, ""); err != nil {
		return fmt.Errorf("guest: Register: tool %q: input type %s: %w", t.Name, in, err)
	}
	if t.InputSchema != nil {
		var s struct {
			Type any `json:"type"`
		}
		if !isJSONObject(bytes.TrimSpace(t.InputSchema)) || json.Unmarshal(t.InputSchema, &s) != nil {
			return fmt.Errorf("guest: Register: tool %q: InputSchema is not a JSON object", t.Name)
		}
		if s.Type != "object" {
			return fmt.Errorf(`guest: Register: tool %q: InputSchema must have "type": "object" (has %v)`, t.Name, s.Type)
		}
	}
	if t.DeferTask && t.TaskSupport != TaskOptional && t.TaskSupport != TaskRequired {
		return fmt.Errorf("guest: Register: tool %q: DeferTask needs TaskSupport optional or required", t.Name)
	}
	kind, err := outputKindOf(out)
	if err != nil {
		return fmt.Errorf("guest: Register: tool %q: %w", t.Name, err)
	}
	if kind == outputStructured {
		if _, err := newDeriver(nil).derive(out, ""); err != nil {
			return fmt.Errorf("guest: Register: tool %q: output type %s: %w", t.Name, out, err)
		}
	}
	t.InputSchema = bytes.Clone(t.InputSchema)
	if registry.byName == nil {
		registry.byName = map[string]*tool{}
	}
	tl := &tool{def: t, in: in, out: out, kind: kind, run: run}
	registry.tools = append(registry.tools, tl)
	registry.byName[t.Name] = tl
	return nil
}

func outputKindOf(t reflect.Type) (outputKind, error) {
	switch {
	case t == reflect.TypeFor[Text](), t == reflect.TypeFor[string]():
		return outputText, nil
	case t == reflect.TypeFor[Result](), t == reflect.TypeFor[*Result]():
		return outputResult, nil
	}
	base := t
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct || base.Kind() == reflect.Map {
		return outputStructured, nil
	}
	return 0, fmt.Errorf("output type %s must be guest.Text, guest.Result, a struct or a map", t)
}

// describe returns the description of every registered tool, deriving the
// schemas now so that every init, including the generated one that
// registers field docs, has run.
func describe() (abi.Description, error) {
	docs := docsSnapshot()
	desc := abi.Description{Tools: make([]abi.Tool, 0, len(registry.tools))}
	for _, t := range registry.tools {
		at := abi.Tool{
			Name:        t.def.Name,
			Title:       t.def.Title,
			Description: t.def.Description,
			Annotations: t.def.Annotations,
			TaskSupport: t.def.TaskSupport,
			DeferTask:   t.def.DeferTask,
			InputSchema: t.def.InputSchema,

			MaxConcurrency: t.def.MaxConcurrency,
		}
		if at.InputSchema == nil {
			in, err := rootSchema(t.in, docs)
			if err != nil {
				return abi.Description{}, fmt.Errorf("guest: tool %q: input schema: %w", t.def.Name, err)
			}
			if at.InputSchema, err = json.Marshal(in); err != nil {
				return abi.Description{}, fmt.Errorf("guest: tool %q: input schema: %w", t.def.Name, err)
			}
		}
		if t.kind == outputStructured {
			out, err := rootSchema(t.out, docs)
			if err != nil {
				return abi.Description{}, fmt.Errorf("guest: tool %q: output schema: %w", t.def.Name, err)
			}
			if at.OutputSchema, err = json.Marshal(out); err != nil {
				return abi.Description{}, fmt.Errorf("guest: tool %q: output schema: %w", t.def.Name, err)
			}
		}
		desc.Tools = append(desc.Tools, at)
	}
	desc.Prompts = append([]abi.Prompt(nil), prompts.list...)
	desc.Resources = append([]abi.Resource(nil), resources.list...)
	desc.ResourceTemplates = append([]abi.ResourceTemplate(nil), resources.templates...)
	desc.Needs = needs
	return desc, nil
}

// describeJSON is the message wasmhost_describe returns.
func describeJSON() ([]byte, error) {
	desc, err := describe()
	if err != nil {
		return nil, err
	}
	return json.Marshal(desc)
}

// errNoTool is returned for a call to a tool the plugin does not have; the
// host only calls tools it was told about, so this is a protocol error.
var errNoTool = errors.New("no such tool")

// dispatch runs one call and encodes its result as the JSON message
// wasmhost_call returns. Handler panics propagate.
func dispatch(h host, name string, args []byte) ([]byte, error) {
	t, ok := registry.byName[name]
	if !ok {
		return nil, fmt.Errorf("guest: tool %q: %w", name, errNoTool)
	}
	res := t.run(&Call{host: h, tool: name, deferTask: t.def.DeferTask}, args)
	msg, err := encodeCallResult(res)
	if err != nil {
		msg, _ = json.Marshal(toolError(fmt.Errorf("encoding the result: %w", err)))
	}
	if len(msg) > abi.MaxMessageSize {
		msg, _ = json.Marshal(toolError(fmt.Errorf("the result is %d bytes, over wasmhost's limit of %d", len(msg), abi.MaxMessageSize)))
	}
	return msg, nil
}

// decodeArgs decodes a call's arguments into in (a pointer to a struct),
// turning every failure into an error the model can act on. required
// names the fields that must be present.
func decodeArgs(args []byte, in any, required []string) error {
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	if err := json.Unmarshal(args, in); err != nil {
		var present map[string]json.RawMessage
		if err := json.Unmarshal(args, &present); err != nil {
			return fmt.Errorf("invalid arguments: want a JSON object: %v", err)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fmt.Errorf("invalid arguments: field %q: got a JSON %s, want %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type))
		}
		return fmt.Errorf("invalid arguments: %v", err)
	}
	if len(required) == 0 {
		return nil
	}
	// Only the top level is checked: the host validates against the schema,
	// this is a backstop for clients that skip it. args is a JSON object
	// now: a struct takes nothing else.
	if name, missing := missingField(args, required); missing {
		return fmt.Errorf("invalid arguments: missing required field %q", name)
	}
	return nil
}

// jsonKind names the JSON type that decodes into t, for error messages.
func jsonKind(t reflect.Type) string {
	if s, err := newDeriver(nil).derive(t, ""); err == nil && s.Type != "" {
		switch s.Type {
		case "integer", "array", "object":
			return "an " + s.Type
		}
		return "a " + s.Type
	}
	return t.String()
}

// handlerError turns a handler's error into a tool error, or into a
// protocol error if it is a [ProtocolError].
func handlerError(err error) abi.CallResult {
	pe, ok := asProtocolError(err)
	if !ok {
		return toolError(err)
	}
	if pe.Code == 0 || pe.Message == "" {
		return toolError(fmt.Errorf("the tool failed with a protocol error without a code or a message: %w", err))
	}
	ce, err := pe.callError()
	if err != nil {
		return toolError(err)
	}
	return abi.CallResult{Content: []abi.Content{}, Error: ce}
}

// asProtocolError finds a [ProtocolError], as a value or a pointer, in
// err's chain.
func asProtocolError(err error) (ProtocolError, bool) {
	var pe ProtocolError
	var ptr *ProtocolError
	switch {
	case errors.As(err, &ptr) && ptr != nil:
		return *ptr, true
	case errors.As(err, &pe):
		return pe, true
	}
	return ProtocolError{}, false
}

// callError encodes pe for the ABI; only its Data can fail to encode.
func (pe ProtocolError) callError() (*abi.CallError, error) {
	ce := &abi.CallError{Code: pe.Code, Message: pe.Message}
	if pe.Data != nil {
		data, err := json.Marshal(pe.Data)
		if err != nil {
			return nil, fmt.Errorf("encoding the data of protocol error %d (%s): %w", pe.Code, pe.Message, err)
		}
		ce.Data = data
	}
	return ce, nil
}

func toolError(err error) abi.CallResult {
	return abi.CallResult{Content: []abi.Content{TextContent(err.Error())}, IsError: true}
}

// encodeOutput turns a handler's output into a CallResult.
func encodeOutput(out any) abi.CallResult {
	switch o := out.(type) {
	case Text:
		return abi.CallResult{Content: []abi.Content{TextContent(string(o))}}
	case string:
		return abi.CallResult{Content: []abi.Content{TextContent(o)}}
	case *Result:
		if o == nil {
			return toolError(errors.New("the tool returned a nil *guest.Result"))
		}
		return encodeResult(*o)
	case Result:
		return encodeResult(o)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return toolError(fmt.Errorf("encoding the result: %w", err))
	}
	if !isJSONObject(data) {
		return toolError(fmt.Errorf("the tool returned %s, not a JSON object", data))
	}
	return abi.CallResult{Content: []abi.Content{TextContent(string(data))}, StructuredContent: data}
}

func encodeResult(r Result) abi.CallResult {
	res := abi.CallResult{Content: r.Content, IsError: r.IsError}
	if res.Content == nil {
		res.Content = []abi.Content{}
	}
	if r.Structured != nil {
		data, err := json.Marshal(r.Structured)
		if err != nil {
			return toolError(fmt.Errorf("encoding the structured result: %w", err))
		}
		if !isJSONObject(data) {
			return toolError(fmt.Errorf("the tool's structured result is %s, not a JSON object", data))
		}
		res.StructuredContent = data
	}
	return res
}

func isJSONObject(data []byte) bool {
	return strings.HasPrefix(string(data), "{")
}
