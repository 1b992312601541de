package host

import "errors"

// Errors callers can branch on with errors.Is. The messages they appear in
// name the plugin file and, for calls, the tool.
var (
	// ErrInvalidPlugin: Load refused the file (not WebAssembly, missing
	// exports, an unsatisfiable import, or an invalid description).
	ErrInvalidPlugin = errors.New("invalid plugin")
	// ErrIncompatibleABI: the plugin was built for another ABI version.
	// Errors with it also match ErrInvalidPlugin.
	ErrIncompatibleABI = errors.New("incompatible ABI version")
	// ErrUnknownTool: the plugin offers no tool of that name.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrUnknownPrompt: the plugin offers no prompt of that name.
	ErrUnknownPrompt = errors.New("unknown prompt")
	// ErrUnknownResource: the URI is none of the plugin's resources and
	// matches none of its templates.
	ErrUnknownResource = errors.New("unknown resource")
	// ErrBadArguments: the call's arguments are not a JSON object or are
	// larger than abi.MaxMessageSize.
	ErrBadArguments = errors.New("bad arguments")
	// ErrGuestTrapped: the guest trapped, panicked or exited during a call.
	ErrGuestTrapped = errors.New("guest trapped")
	// ErrBadGuestMessage: the guest broke the ABI (a pointer outside its
	// memory, a message over the size cap, JSON that does not parse).
	ErrBadGuestMessage = errors.New("bad message from guest")
	// ErrCallTimeout: the call ran past Options.CallTimeout. Errors with it
	// also match context.DeadlineExceeded.
	ErrCallTimeout = errors.New("call timed out")
	// ErrRunBudget: the call ran (not counting time waiting for input)
	// past Options.RunBudget. Errors with it also match
	// context.DeadlineExceeded.
	ErrRunBudget = errors.New("call used up its run-time budget")
	// ErrClosed: the plugin or runtime was closed.
	ErrClosed = errors.New("closed")
)

// tagged is an error whose own message is complete and which also matches
// kind under errors.Is, for messages where the sentinel's text would read
// awkwardly.
type tagged struct {
	err  error
	kind error
}

func (t *tagged) Error() string   { return t.err.Error() }
func (t *tagged) Unwrap() []error { return []error{t.err, t.kind} }

func tag(kind, err error) error { return &tagged{err: err, kind: kind} }
