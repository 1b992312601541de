package guest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
)

// Prompt describes one prompt template: its MCP name (unique within the
// plugin, A-Z a-z 0-9 _ - .), title, description and arguments.
type Prompt = abi.Prompt

// PromptArgument is one (string) argument of a prompt.
type PromptArgument = abi.PromptArgument

// PromptMessage is one message of a rendered prompt; build it with
// [UserMessage] or [AssistantMessage].
type PromptMessage = abi.PromptMessage

// PromptResult is a rendered prompt: MCP's GetPromptResult.
type PromptResult struct {
	// Description optionally describes this rendering.
	Description string
	Messages    []PromptMessage
}

// UserMessage returns a prompt message from the user.
func UserMessage(c Content) PromptMessage { return PromptMessage{Role: "user", Content: c} }

// AssistantMessage returns a prompt message from the assistant.
func AssistantMessage(c Content) PromptMessage { return PromptMessage{Role: "assistant", Content: c} }

// Resource describes one resource with a fixed URI; Name is required.
type Resource = abi.Resource

// ResourceTemplate describes a family of resources whose URIs match an RFC
// 6570 level-1 template such as "test://items/{id}": each {var} matches one
// or more characters other than "/". Name is required.
type ResourceTemplate = abi.ResourceTemplate

// TextResource returns the text contents of the resource at uri.
func TextResource(uri, mimeType, text string) EmbeddedResource {
	return EmbeddedResource{URI: uri, MimeType: mimeType, Text: text}
}

// BlobResource returns the binary contents of the resource at uri.
func BlobResource(uri, mimeType string, data []byte) EmbeddedResource {
	return EmbeddedResource{URI: uri, MimeType: mimeType, Blob: base64.StdEncoding.EncodeToString(data)}
}

// JSON-RPC error codes the SDK answers prompts and resources with.
const (
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603
)

var prompts struct {
	list   []Prompt
	byName map[string]func(*Call, map[string]string) (PromptResult, error)
}

var resources struct {
	list      []Resource
	byURI     map[string]func(*Call, string) ([]EmbeddedResource, error)
	templates []ResourceTemplate
	tmplRun   []func(*Call, string, map[string]string) ([]EmbeddedResource, error)
}

// RegisterPrompt adds a prompt rendered by handler. Call it from an init
// function. The handler gets the arguments as strings; the SDK has already
// checked that the required ones are present (a client that omits one gets
// a -32602 error). The handler may log, report progress and ask the client
// questions through c as a tool does.
//
// A handler error fails the request at the protocol level: a
// [ProtocolError] as given, anything else as -32603 with the error's text.
// A panic traps the guest. RegisterPrompt panics if the prompt has no name
// or its name is taken.
func RegisterPrompt(p Prompt, handler func(c *Call, args map[string]string) (PromptResult, error)) {
	if p.Name == "" {
		panic("guest: RegisterPrompt: prompt has no name")
	}
	if _, dup := prompts.byName[p.Name]; dup {
		panic(fmt.Sprintf("guest: RegisterPrompt: prompt %q registered twice", p.Name))
	}
	if prompts.byName == nil {
		prompts.byName = map[string]func(*Call, map[string]string) (PromptResult, error){}
	}
	p.Arguments = append([]PromptArgument(nil), p.Arguments...)
	prompts.list = append(prompts.list, p)
	prompts.byName[p.Name] = handler
}

// RegisterResource adds a resource with a fixed URI, read by handler. Call
// it from an init function. A content the handler returns without a URI
// gets r.URI. Errors and panics are handled as for [RegisterPrompt].
// RegisterResource panics if the resource has no URI or name, or its URI
// is taken.
func RegisterResource(r Resource, handler func(c *Call, uri string) ([]EmbeddedResource, error)) {
	if r.URI == "" || r.Name == "" {
		panic(fmt.Sprintf("guest: RegisterResource: resource %q needs a URI and a name", r.URI))
	}
	if _, dup := resources.byURI[r.URI]; dup {
		panic(fmt.Sprintf("guest: RegisterResource: resource %q registered twice", r.URI))
	}
	if resources.byURI == nil {
		resources.byURI = map[string]func(*Call, string) ([]EmbeddedResource, error){}
	}
	resources.list = append(resources.list, r)
	resources.byURI[r.URI] = handler
}

// RegisterResourceTemplate adds a family of resources: a URI that is no
// registered resource's but matches t.URITemplate is read by handler, with
// the template's variables. Templates are tried in registration order.
// Errors and panics are handled as for [RegisterPrompt].
// RegisterResourceTemplate panics if the template has no variable or no
// name, or is registered twice.
func RegisterResourceTemplate(t ResourceTemplate, handler func(c *Call, uri string, vars map[string]string) ([]EmbeddedResource, error)) {
	if !strings.Contains(t.URITemplate, "{") || t.Name == "" {
		panic(fmt.Sprintf("guest: RegisterResourceTemplate: template %q needs a {variable} and a name", t.URITemplate))
	}
	for _, have := range resources.templates {
		if have.URITemplate == t.URITemplate {
			panic(fmt.Sprintf("guest: RegisterResourceTemplate: template %q registered twice", t.URITemplate))
		}
	}
	resources.templates = append(resources.templates, t)
	resources.tmplRun = append(resources.tmplRun, handler)
}

// dispatchPrompt renders a prompt and encodes the PromptResult message
// wasmhost_get_prompt returns. Handler panics propagate.
func dispatchPrompt(h host, name string, args []byte) []byte {
	res := runPrompt(h, name, args)
	if res.Messages == nil {
		res.Messages = []PromptMessage{}
	}
	return encodeMessage(res, func(err error) any {
		return abi.PromptResult{Messages: []PromptMessage{}, Error: internalError(err)}
	})
}

func runPrompt(h host, name string, args []byte) abi.PromptResult {
	fail := func(code int, msg string) abi.PromptResult {
		return abi.PromptResult{Error: &abi.CallError{Code: code, Message: msg}}
	}
	if len(prompts.list) == 0 {
		return fail(codeMethodNotFound, "no prompts")
	}
	handler, ok := prompts.byName[name]
	if !ok {
		return fail(codeInvalidParams, fmt.Sprintf("unknown prompt %q", name))
	}
	var values map[string]string
	if len(args) > 0 && string(args) != "null" {
		if err := json.Unmarshal(args, &values); err != nil {
			return fail(codeInvalidParams, fmt.Sprintf("prompt %q: arguments must be a JSON object of strings: %v", name, err))
		}
	}
	if values == nil {
		values = map[string]string{}
	}
	for _, p := range prompts.list {
		if p.Name != name {
			continue
		}
		for _, a := range p.Arguments {
			if _, ok := values[a.Name]; a.Required && !ok {
				return fail(codeInvalidParams, fmt.Sprintf("prompt %q: missing required argument %q", name, a.Name))
			}
		}
	}
	out, err := handler(&Call{host: h}, values)
	if err != nil {
		return abi.PromptResult{Error: protocolError(err)}
	}
	return abi.PromptResult{Description: out.Description, Messages: out.Messages}
}

// dispatchResource reads a resource and encodes the ResourceResult message
// wasmhost_read_resource returns. Handler panics propagate.
func dispatchResource(h host, uri string) []byte {
	res := runResource(h, uri)
	if res.Contents == nil {
		res.Contents = []EmbeddedResource{}
	}
	return encodeMessage(res, func(err error) any {
		return abi.ResourceResult{Contents: []EmbeddedResource{}, Error: internalError(err)}
	})
}

func runResource(h host, uri string) abi.ResourceResult {
	var (
		contents []EmbeddedResource
		err      error
	)
	if handler, ok := resources.byURI[uri]; ok {
		contents, err = handler(&Call{host: h}, uri)
	} else {
		found := false
		for i, t := range resources.templates {
			if vars, ok := abi.MatchTemplate(t.URITemplate, uri); ok {
				contents, err = resources.tmplRun[i](&Call{host: h}, uri, vars)
				found = true
				break
			}
		}
		if !found {
			data, _ := json.Marshal(map[string]string{"uri": uri})
			return abi.ResourceResult{Error: &abi.CallError{Code: codeInvalidParams, Message: "Resource not found", Data: data}}
		}
	}
	if err != nil {
		return abi.ResourceResult{Error: protocolError(err)}
	}
	for i := range contents {
		if contents[i].URI == "" {
			contents[i].URI = uri
		}
	}
	return abi.ResourceResult{Contents: contents}
}

// encodeMessage encodes a result message, or the failure made by fail when
// it does not encode or is over wasmhost's size limit.
func encodeMessage(res any, fail func(error) any) []byte {
	msg, err := json.Marshal(res)
	if err == nil && len(msg) > abi.MaxMessageSize {
		err = fmt.Errorf("the result is %d bytes, over wasmhost's limit of %d", len(msg), abi.MaxMessageSize)
	}
	if err != nil {
		msg, _ = json.Marshal(fail(err))
	}
	return msg
}

// protocolError turns a prompt or resource handler's error into the
// JSON-RPC error the request fails with: a valid [ProtocolError] as given,
// anything else as -32603.
func protocolError(err error) *abi.CallError {
	pe, ok := asProtocolError(err)
	if !ok {
		return internalError(err)
	}
	if pe.Code == 0 || pe.Message == "" {
		return internalError(fmt.Errorf("a protocol error without a code or a message: %w", err))
	}
	ce, err := pe.callError()
	if err != nil {
		return internalError(err)
	}
	return ce
}

func internalError(err error) *abi.CallError {
	return &abi.CallError{Code: codeInternalError, Message: err.Error()}
}
