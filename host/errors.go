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

// Errors of calls whose Env is a [Recorder] (durable suspension): each
// appears wrapped, in a message that says what happened, and fails the
// call.
var (
	// ErrEvicted: returned (wrapped) by Env.Input when the caller takes the
	// waiting guest away. The host stops the guest at once (it never sees a
	// status for that input), closes the instance and the call returns an
	// error wrapping ErrEvicted. The journal is complete up to (not
	// including) that input.
	ErrEvicted = errors.New("guest evicted while waiting for input")
	// ErrReplayDiverged: replaying the journal, the guest made a host call
	// other than the one recorded (or finished before the journal did): the
	// plugin is not deterministic.
	ErrReplayDiverged = errors.New("replay diverged")
	// ErrUnfinishedSideEffect: the journal holds a side effect (an HTTP
	// request other than GET, HEAD or OPTIONS) that was started but whose
	// result was never recorded, and the tool is not idempotent: it may or
	// may not have happened, so it is not repeated.
	ErrUnfinishedSideEffect = errors.New("unfinished side effect")
	// ErrJournalFull: the call's journal would grow past
	// Options.MaxJournalBytes.
	ErrJournalFull = errors.New("task journal full")
)

// abortError stops a running guest from inside a host function: the host
// function panics with it, wazero unwinds the guest and returns the panic
// as the export's error, and invoke turns it back into err. No guest code
// runs after it, so the guest never sees a result that was not recorded.
type abortError struct{ err error }

func (a *abortError) Error() string { return a.err.Error() }
func (a *abortError) Unwrap() error { return a.err }

// abort stops the running guest with err; see abortError.
func abort(err error) { panic(&abortError{err: err}) }
