// Package tasks owns the task record, its state machine, the Store that
// keeps records (in memory or in Redis) and the queue that hands work to
// workers. It knows nothing of MCP sessions or of wasm: the front end and the
// workers meet only here.
package tasks

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wasmhost/wasmhost/abi"
)

// Status is where a task is in its life.
//
//	working → input_required ⇄ working → completed | failed | cancelled
//
// input_required may also end directly in any terminal state. Terminal
// states are final.
type Status string

const (
	Working       Status = "working"
	InputRequired Status = "input_required"
	Completed     Status = "completed"
	Failed        Status = "failed"
	Cancelled     Status = "cancelled"
)

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == Completed || s == Failed || s == Cancelled
}

// CanTransition reports whether the state machine allows from → to.
func CanTransition(from, to Status) bool {
	switch from {
	case Working:
		return to == InputRequired || to.Terminal()
	case InputRequired:
		return to == Working || to == InputRequired || to.Terminal()
	}
	return false
}

// Kind separates tasks a client asked for from plain tool calls that run
// through the same machinery so that every call can suspend on input.
type Kind string

const (
	// KindTask is a task the client created and may list, get and cancel.
	KindTask Kind = "task"
	// KindCall backs a synchronous tools/call; clients never see its id as
	// a task.
	KindCall Kind = "call"
)

// Op is the MCP request a task serves.
type Op string

const (
	OpCallTool     Op = "" // tools/call, the zero value
	OpGetPrompt    Op = "prompts/get"
	OpReadResource Op = "resources/read"
)

// Noun names what an op runs, for messages: tool, prompt or resource.
func (o Op) Noun() string {
	switch o {
	case OpGetPrompt:
		return "prompt"
	case OpReadResource:
		return "resource"
	}
	return "tool"
}

// Task is one tool call and everything needed to run, relay and answer it
// from any process sharing the store.
type Task struct {
	ID    string `json:"id"`
	Kind  Kind   `json:"kind"`
	Owner string `json:"owner,omitempty"` // who may see it; "" is anyone
	// Op is what the guest is asked to do; Tool names the tool or the
	// prompt, or is the resource URI.
	Op   Op              `json:"op,omitempty"`
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args,omitempty"`
	// Accepts lists the input methods (abi.MethodElicit…) the client can
	// answer; the guest gets an "unsupported" answer at once for others.
	Accepts []string `json:"accepts,omitempty"`
	// ProgressToken is the client's token from the originating request.
	ProgressToken json.RawMessage `json:"progressToken,omitempty"`
	// LogsMuted and LogFloor say which guest log lines the client wanted
	// when the call started (its logging/setLevel): none when muted, else
	// those at LogFloor or above. Lines it did not want are not published.
	LogsMuted bool         `json:"logsMuted,omitempty"`
	LogFloor  abi.LogLevel `json:"logFloor,omitempty"`
	// Idempotent tools may be re-run from the start after a worker died.
	Idempotent bool `json:"idempotent,omitempty"`
	// Detachable: a KindCall whose guest may turn it into a KindTask (its
	// tool defers tasks and its client takes them).
	Detachable bool `json:"detachable,omitempty"`

	Status        Status        `json:"status"`
	StatusMessage string        `json:"statusMessage,omitempty"`
	CreatedAt     time.Time     `json:"createdAt"`
	UpdatedAt     time.Time     `json:"updatedAt"`
	TTL           time.Duration `json:"ttl"`
	PollInterval  time.Duration `json:"pollInterval"`

	// InputRequests holds the questions still unanswered, by key; it is
	// empty unless Status is InputRequired.
	InputRequests map[string]abi.InputRequest `json:"inputRequests,omitempty"`
	// Result is the tool's CallToolResult JSON once Completed.
	Result json.RawMessage `json:"result,omitempty"`
	// Error explains a Failed task.
	Error string `json:"error,omitempty"`
}

// ExpiresAt is when the store may forget the task.
func (t *Task) ExpiresAt() time.Time { return t.CreatedAt.Add(t.TTL) }

// Accepting reports whether the client can answer requests of method.
func (t *Task) Accepting(method string) bool {
	for _, m := range t.Accepts {
		if m == method {
			return true
		}
	}
	return false
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("task not found")
	// ErrTerminal: the task already completed, failed or was cancelled.
	ErrTerminal = errors.New("task already finished")
	// ErrNotPending: an answer names an input request the task is not
	// waiting on (never asked, already answered, or the task moved on).
	ErrNotPending = errors.New("input request is not pending")
	// ErrIllegalTransition: the state machine forbids the change.
	ErrIllegalTransition = errors.New("illegal task status transition")
	// ErrUnavailable: the store cannot be reached; the operation may be
	// retried.
	ErrUnavailable = errors.New("task store unavailable")
	// ErrWatchStopped: the process stopped watching the store (shutdown).
	ErrWatchStopped = errors.New("task watch stopped")
	// ErrFenced: the call came from a run of the task that is no longer
	// its latest (StartRun began another); the run must stop without
	// recording anything.
	ErrFenced = errors.New("another run of the task took it over")
	// ErrJournalFull: the task's journal would outgrow the store's bound.
	ErrJournalFull = errors.New("task journal is full")
)

// NewID returns an unguessable task id: 128 random bits, URL-safe.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("tasks: crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// fencedError explains a refused call of run token.
func fencedError(id string, token, current int64) error {
	return fmt.Errorf("task %s: run %d is not the task's current run %d: %w", id, token, current, ErrFenced)
}

// journalFullError explains a refused journal write.
func journalFullError(id string, size, limit int64) error {
	return fmt.Errorf("task %s: the journal would be %d bytes, over the store's bound of %d: %w", id, size, limit, ErrJournalFull)
}

// transitionError explains a refused transition with the states involved.
func transitionError(id string, from, to Status) error {
	if from.Terminal() {
		return fmt.Errorf("task %s is %s: %w", id, from, ErrTerminal)
	}
	return fmt.Errorf("task %s: %s → %s: %w", id, from, to, ErrIllegalTransition)
}
