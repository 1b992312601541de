// Package abi is the contract between wasmhost and a tool plugin: the names
// of the functions each side exports, the JSON messages they exchange through
// the guest's linear memory, and the limits the host enforces.
//
// Both the host (package host) and the Go guest SDK (package sdk/guest) import
// this package, so it must stay free of dependencies beyond the standard
// library and must build for GOOS=wasip1 GOARCH=wasm. It owns no behaviour
// beyond the few pure rules both sides must apply identically (such as
// MatchTemplate): the step-by-step protocol is written down in README.md
// beside this file.
package abi

import "encoding/json"

// Version is the ABI version this build of wasmhost speaks. A guest reports
// its own from [ExportABIVersion]; the host refuses any other value.
const Version = 1

// ImportModule is the wasm module name under which the host provides its
// functions to guests.
const ImportModule = "wasmhost"

// Functions a guest exports.
const (
	// ExportABIVersion is () -> i32: the ABI version the guest was built for.
	ExportABIVersion = "wasmhost_abi_version"
	// ExportAlloc is (size i32) -> ptr i32: reserve size bytes of guest
	// memory for the host to write a message into. The buffer belongs to the
	// guest; the host never frees it.
	ExportAlloc = "wasmhost_alloc"
	// ExportDescribe is () -> packed i64: a [Description] as JSON.
	ExportDescribe = "wasmhost_describe"
	// ExportCall is (name_ptr, name_len, args_ptr, args_len i32) -> packed
	// i64: run one tool; the packed message is a [CallResult] as JSON.
	ExportCall = "wasmhost_call"
	// ExportGetPrompt is (name_ptr, name_len, args_ptr, args_len i32) ->
	// packed i64: render one prompt; args is a JSON object of strings, the
	// packed message a [PromptResult]. Required when [Description.Prompts]
	// is not empty, optional otherwise.
	ExportGetPrompt = "wasmhost_get_prompt"
	// ExportReadResource is (uri_ptr, uri_len i32) -> packed i64: read one
	// resource (a listed URI or one matching a listed template); the packed
	// message is a [ResourceResult]. Required when the description lists
	// resources or templates, optional otherwise.
	ExportReadResource = "wasmhost_read_resource"
)

// Functions the host provides in [ImportModule].
const (
	// ImportInput is (batch_ptr, batch_len i32) -> i32. The batch is a JSON
	// array of [InputRequest]. The guest is suspended until every request is
	// answered; the return value is the length of the JSON array of
	// [InputResponse] (same order) waiting to be collected with
	// [ImportResponse], or a negative [Status].
	ImportInput = "input"
	// ImportElicit is (req_ptr, req_len i32) -> i32: [ImportInput] for a
	// single elicitation; the message is the params object of
	// "elicitation/create", the pending response a single [InputResponse].
	ImportElicit = "elicit"
	// ImportResponse is (buf_ptr, buf_len i32) -> i32: copy the response
	// waiting since the last [ImportInput] or [ImportElicit] into the buffer
	// and return the number of bytes copied, or a negative [Status]. The
	// response is dropped once collected.
	ImportResponse = "response"
	// ImportLog is (level i32, msg_ptr, msg_len i32) -> (): a log line
	// ([LogLevel]) for the host's log and the client's notifications/message.
	ImportLog = "log"
	// ImportProgress is (msg_ptr, msg_len i32) -> (): a [Progress] as JSON.
	ImportProgress = "progress"
	// ImportCancelled is () -> i32: 1 once the call has been cancelled,
	// else 0. Cancellation also ends the guest at its next host call or
	// loop back-edge; this lets a guest stop tidily first.
	ImportCancelled = "cancelled"
	// ImportDetach is () -> i32: a tool with [Tool.DeferTask] says that the
	// rest of the call may run in the background. It returns 1 when the
	// host turned the call into a task (the client got a task handle), 0
	// when the client is waiting synchronously. Either way the guest goes
	// on; only the client's view changes.
	ImportDetach = "detach"
)

// Status is the negative result of a host function that failed.
type Status int32

const (
	// StatusBadMessage: a pointer/length outside guest memory, a message over
	// [MaxMessageSize], or JSON that does not parse as the expected type.
	StatusBadMessage Status = -1
	// StatusCancelled: the call was cancelled while the guest waited.
	StatusCancelled Status = -2
	// StatusNoResponse: [ImportResponse] called with nothing pending.
	StatusNoResponse Status = -3
	// StatusBufferTooSmall: the buffer given to [ImportResponse] is shorter
	// than the pending response; nothing was copied.
	StatusBufferTooSmall Status = -4
)

// Limits the host enforces on every message crossing the boundary.
const (
	// MaxMessageSize caps any single message in either direction.
	MaxMessageSize = 4 << 20
	// MaxInputBatch caps the number of requests in one [ImportInput] call.
	MaxInputBatch = 16
	// MaxLogSize caps one log line; longer lines are truncated.
	MaxLogSize = 16 << 10
)

// Pack and Unpack encode a (ptr, len) pair in the i64 returned by
// [ExportDescribe] and [ExportCall]: ptr in the high 32 bits.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack is the inverse of [Pack].
func Unpack(packed uint64) (ptr, length uint32) {
	return uint32(packed >> 32), uint32(packed)
}

// TaskSupport says whether a tool may, must or must not run as a task. The
// values are MCP's execution.taskSupport.
type TaskSupport string

const (
	TaskForbidden TaskSupport = "forbidden"
	TaskOptional  TaskSupport = "optional"
	TaskRequired  TaskSupport = "required"
)

// Description is what [ExportDescribe] returns. Field names and shapes of
// its entries follow MCP's Tool, Prompt, Resource and ResourceTemplate.
type Description struct {
	Tools             []Tool             `json:"tools"`
	Prompts           []Prompt           `json:"prompts,omitempty"`
	Resources         []Resource         `json:"resources,omitempty"`
	ResourceTemplates []ResourceTemplate `json:"resourceTemplates,omitempty"`
	// Needs is what the plugin may use beyond computing and asking (hosts,
	// directories, configuration, secrets); the operator grants from it.
	Needs Needs `json:"needs,omitzero"`
}

// Prompt describes one prompt template.
type Prompt struct {
	Name        string           `json:"name"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Arguments   []PromptArgument `json:"arguments,omitempty"`
}

// PromptArgument is one argument a prompt takes (a string).
type PromptArgument struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// Resource describes one resource with a fixed URI.
type Resource struct {
	URI         string `json:"uri"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// ResourceTemplate describes a family of resources whose URIs match an RFC
// 6570 level-1 template ("test://items/{id}").
type ResourceTemplate struct {
	URITemplate string `json:"uriTemplate"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

// PromptResult is what [ExportGetPrompt] returns: MCP's GetPromptResult,
// or a protocol error.
type PromptResult struct {
	Description string          `json:"description,omitempty"`
	Messages    []PromptMessage `json:"messages"`
	Error       *CallError      `json:"error,omitempty"`
}

// PromptMessage is one message of a rendered prompt.
type PromptMessage struct {
	Role    string  `json:"role"` // "user" or "assistant"
	Content Content `json:"content"`
}

// ResourceResult is what [ExportReadResource] returns: MCP's
// ReadResourceResult, or a protocol error (for an unknown URI, code -32602
// with data {"uri": …}).
type ResourceResult struct {
	Contents []EmbeddedResource `json:"contents"`
	Error    *CallError         `json:"error,omitempty"`
}

// Tool describes one tool. Field names and shapes follow MCP's Tool, so the
// host can pass them to clients unchanged.
type Tool struct {
	Name         string           `json:"name"`
	Title        string           `json:"title,omitempty"`
	Description  string           `json:"description,omitempty"`
	InputSchema  json.RawMessage  `json:"inputSchema"`
	OutputSchema json.RawMessage  `json:"outputSchema,omitempty"`
	Annotations  *ToolAnnotations `json:"annotations,omitempty"`
	// TaskSupport defaults to [TaskForbidden] when empty.
	TaskSupport TaskSupport `json:"taskSupport,omitempty"`
	// DeferTask makes a task-supporting tool start synchronously even for
	// a client that takes tasks: it may ask questions first (answered in
	// the call), and becomes a task when it calls [ImportDetach].
	DeferTask bool `json:"deferTask,omitempty"`
	// MaxConcurrency caps the calls of this tool the host runs at once,
	// within the plugin's own share of the run slots; 0 means no cap of
	// its own. For a tool that is heavy, or that drives something that
	// takes one request at a time.
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
}

// ToolAnnotations are MCP's behavioural hints. IdempotentHint also decides
// whether a task may be re-run from the start after its worker died.
type ToolAnnotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    bool   `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  bool   `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// CallResult is what [ExportCall] returns: MCP's CallToolResult. A tool that
// fails sets IsError and explains in Content; a guest that traps or returns
// something unreadable fails the call at the protocol level instead.
type CallResult struct {
	Content           []Content       `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent,omitempty"`
	IsError           bool            `json:"isError,omitempty"`
	// Error, when set, fails the call at protocol level with this JSON-RPC
	// error instead of returning a result (for instance -32021 when the
	// client lacks a capability the tool needs). Content is then ignored.
	Error *CallError `json:"error,omitempty"`
}

// CallError is a JSON-RPC error a guest chose to fail its call with.
type CallError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Content is one MCP content block: text, image, audio or an embedded
// resource.
type Content struct {
	Type     string            `json:"type"`
	Text     string            `json:"text,omitempty"`
	Data     string            `json:"data,omitempty"`
	MimeType string            `json:"mimeType,omitempty"`
	Resource *EmbeddedResource `json:"resource,omitempty"`
}

// EmbeddedResource is the resource of a "resource" content block: text or
// base64 blob contents with their URI.
type EmbeddedResource struct {
	URI      string `json:"uri"`
	MimeType string `json:"mimeType,omitempty"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"`
}

// Methods an [InputRequest] may carry: the MCP client methods a tool can
// need an answer from.
const (
	MethodElicit    = "elicitation/create"
	MethodSample    = "sampling/createMessage"
	MethodListRoots = "roots/list"
)

// InputRequest is one question for the client, in the shape of MCP's
// inputRequests entries: the method and its params as the client expects
// them ("elicitation/create" params carry message and requestedSchema).
type InputRequest struct {
	// Key optionally names the request; clients of 2026-07-28 see it as
	// the inputRequests key. Keys must be unique within a batch; the host
	// assigns "<first word of Method>-<n>" when it is empty (n counts the
	// call's requests), so that a replay asks under the same keys.
	Key    string          `json:"key,omitempty"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// InputResponse answers one [InputRequest]: either the client's result (for
// an elicitation {"action":"accept|decline|cancel","content":{...}}) or an
// error, for instance [ErrCodeUnsupported] when the client cannot answer
// that kind of request at all.
type InputResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *InputError     `json:"error,omitempty"`
}

// InputError explains why a request got no answer.
type InputError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes in [InputError].
const (
	// ErrCodeUnsupported: the client did not declare the capability needed.
	ErrCodeUnsupported = "unsupported"
	// ErrCodeFailed: the client answered with an error, or the relay failed.
	ErrCodeFailed = "failed"
)

// LogLevel is the level passed to [ImportLog], ordered as MCP's levels.
type LogLevel int32

const (
	LogDebug LogLevel = iota
	LogInfo
	LogNotice
	LogWarning
	LogError
)

// Progress is the message passed to [ImportProgress].
type Progress struct {
	Progress float64 `json:"progress"`
	Total    float64 `json:"total,omitempty"`
	Message  string  `json:"message,omitempty"`
}
