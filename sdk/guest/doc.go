// Package guest is the Go SDK for writing wasmhost tool plugins: a plugin
// registers typed tool handlers, and the SDK implements the guest side of
// ABI v1 (package [github.com/wasmhost/wasmhost/abi], specified step by
// step in abi/README.md) around them.
//
// The package owns the guest's exports (wasmhost_abi_version,
// wasmhost_alloc, wasmhost_describe, wasmhost_call), its calls to the host's
// imports, the JSON Schema derived from handler types, the encoding of
// results, and the plugin's declared needs. It must not own policy: what a
// tool may do, and what the client is asked, is the host's business. It
// depends on the standard library and package abi only (net/http lives in
// the subpackage guesthttp, so plugins that make no requests do not link
// it).
//
// # Writing a plugin
//
// A plugin is a main package that registers its tools in init and has an
// empty main:
//
//	type GreetIn struct {
//		// Name of the person to greet.
//		Name string `json:"name"`
//	}
//
//	func init() {
//		guest.Register(guest.Tool{Name: "greet", Description: "Say hello"},
//			func(c *guest.Call, in GreetIn) (guest.Text, error) {
//				return guest.Text("Hello, " + in.Name + "!"), nil
//			})
//	}
//
//	func main() {}
//
// Build it as a WASI reactor (wasmhost build does this, adding the field
// docs described at [RegisterFieldDocs]):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o greet.wasm .
//
// The host runs _initialize (package init, so Register) once per instance,
// then calls one tool; main is never called.
//
// # Schemas
//
// Input and output schemas are derived from the Go types by reflection:
// bool, integers, floats, strings, slices, arrays, maps, structs and
// pointers map to the JSON Schema types encoding/json produces for them;
// json tags name the properties; a field is required unless it is a pointer
// or tagged omitempty (or omitzero, or jsonschema:"optional"). Descriptions
// come from a field's `description:"..."` tag or its doc comment (see
// [RegisterFieldDocs]); `jsonschema:"enum=a|b|c,default=b,format=email,
// minimum=0,maximum=10,title=T"` adds the rest. A schema the types cannot
// express can be given verbatim: [Tool.InputSchema] for a tool's input,
// [NewRawElicitation] for a form.
//
// # Failing
//
// A handler has two ways to fail. Returning an error is a tool error: the
// model sees the message (isError in the result) and may try again. A panic
// is a protocol error: the guest traps, the host fails the call (or task)
// and logs the panic from the guest's stderr. Use errors for anything the
// model or user can act on, panics for bugs. A handler that must fail with
// a particular JSON-RPC error, as MCP asks of a tool that needs a client
// capability the client lacks (-32021), returns a [ProtocolError].
//
// # Asking the client
//
// [Elicit] asks the user to fill in a small form; [Sample] asks the
// client's model; [Roots] asks for the client's roots. While it waits, the
// guest is suspended inside the host call and the call (or task) shows as
// needing input. [Call.AskAll] asks several questions in one batch; a
// question's WithKey names it for the client. A client that cannot answer
// a kind of question at all (it did not declare the capability) makes that
// question fail with [ErrUnsupported]: that is how a guest learns what a
// client can do.
//
// # Deferred tasks
//
// A tool registered with [Tool.DeferTask] starts as an ordinary call even
// for a client that would take a task, so that its questions are answered
// while the client waits, and calls [Call.Detach] once it has what it needs:
// from then on the client holds a task and the rest runs in the background.
//
// # Network, files, config and secrets
//
// A plugin declares in init what it may need beyond computing and asking:
// [NeedHost], [NeedDir], [NeedConfig], [NeedSecret], each with a reason for
// the person deciding. The operator grants some or all of it (wasmhost's
// --grants file, docs/security.md); nothing is granted by default and no
// grant exceeds a declaration. In a call, [Call.Config] and [Call.Secret]
// read values, [Call.Dir] checks that a directory is mounted (then use os
// as usual), and package guesthttp gives a standard *http.Client whose
// requests the host performs. A refused use returns a [*CapabilityError]
// (errors.Is(err, [ErrNotGranted]) for a missing grant) whose message says
// how to grant it: return it as the tool's error.
//
//	func init() {
//		guest.NeedHost("api.github.com", "to read your issues")
//		guest.NeedSecret("token", "your GitHub token")
//	}
//
// # Determinism
//
// A tool run as a task may be stopped while it waits for an answer (to
// free its memory) or lost with its worker, and resumed later in another
// process by replay: the host runs the same tool with the same arguments
// from the same starting state and answers each of its host calls from the
// task's journal, until the journal is used up. For that to be correct the
// tool must make the same host calls, in the same order, given the same
// answers. The host journals everything that reaches the guest through
// it: the answers to [Elicit], [Sample], [Roots] and [Call.AskAll], the
// results of [Call.Capability] (HTTP through guesthttp, [Call.Config];
// [Call.Secret] by name only, its value is read again), [Call.Detach],
// time.Now and every clock reading, time.Sleep, and crypto/rand. A tool
// that does something else on replay fails its task with "replay diverged
// at host call N".
//
// So a plugin must not:
//
//   - make host calls from goroutines that race each other: the order of
//     the calls must follow from the code, not from scheduling (one
//     goroutine asking, or goroutines joined in a fixed order, is fine);
//   - read files under a granted directory before a question and assume
//     they are unchanged afterwards, or decide what to ask from them: a
//     replay reads the directory as it is then (files are not journalled);
//     read them after the last question, or pass what matters through an
//     answer;
//   - depend on anything that changes between processes without asking
//     the host: there is nothing else to read in the sandbox, but a value
//     cached in a global by an earlier call is not there on replay (every
//     call starts from the state after init);
//   - expect init to be random: package init and the runtime's seeds run
//     with a deterministic clock and a random stream derived from the
//     module itself, the same in every process, so math/rand's top-level
//     functions and map iteration order repeat from call to call and a key
//     generated in init is predictable. Generate secrets in the handler,
//     with crypto/rand.
//
// A side effect (an HTTP request other than GET, HEAD or OPTIONS) is
// journalled as started before it is sent; if the worker dies before its
// result is journalled, the task fails rather than send it again, unless
// the tool is annotated idempotent (IdempotentHint). Log lines and progress
// sent before the stop are not sent again. A journal is bounded (8 MiB by
// default): reading the clock in a busy loop, or fetching large responses
// over and over in one call, can fill it.
//
// # Testing
//
// A [Bridge] stands in for the host, so go test on the build machine can
// call a plugin's tools directly, answering their questions (and, with
// Bridge.Capability, their capability requests).
package guest
