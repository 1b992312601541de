// Package elicit relays a guest's input requests (elicitation, sampling,
// roots) to the client that owns its task, and the answers back to the
// guest, through the task Store. The worker side (GuestEnv) turns a blocked
// guest into a task in input_required and keeps the task's journal of what
// the guest learnt (host.Recorder), so that any worker can resume it by
// replay; the front-end side (Relay) pushes pending requests to clients
// that take server-to-client requests.
//
// It must not reach into MCP sessions or wasm instances: clients are seen
// through the Client interface, guests through host.Env.
package elicit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

// GuestEnv is the host.Env of one run of a task: what the guest asks for
// goes into the store, what the client answers comes back from it, and what
// the guest learns from the host is journalled there (host.Recorder), so
// that another run can resume it by replay.
type GuestEnv struct {
	Store  tasks.Store
	Task   *tasks.Task
	Run    tasks.Run // from Store.StartRun: the fence token and the journal
	Logger hclog.Logger
	// Suspend, if set, is called before the guest waits for answers, with
	// the function that evicts it; the function it returns, after. The
	// worker uses it to let other guests run while this one waits for a
	// person, and to take the guest away (Input then fails with
	// host.ErrEvicted) when it waited too long or too many wait.
	Suspend func(evict func()) (resume func())
}

// NewGuestEnv returns the environment for run of t.
func NewGuestEnv(store tasks.Store, t *tasks.Task, run tasks.Run, logger hclog.Logger) *GuestEnv {
	return &GuestEnv{Store: store, Task: t, Run: run, Logger: logger}
}

// Recorded returns what earlier runs journalled (host.Recorder).
func (e *GuestEnv) Recorded() [][]byte { return e.Run.Journal }

// Record appends entries to the task's journal under this run's token and
// consumes the answers they record, in one step (host.Recorder). It fails
// with tasks.ErrFenced once another run took the task over.
func (e *GuestEnv) Record(ctx context.Context, entries [][]byte, consume []string) error {
	return e.Store.AppendJournal(ctx, e.Task.ID, e.Run.Token, entries, consume)
}

// Idempotent reports whether the tool may repeat an unfinished side effect
// on replay (host.Recorder).
func (e *GuestEnv) Idempotent() bool { return e.Task.Idempotent }

// Input records the requests the client can answer as pending, waits for
// every answer and returns them in order. Requests the client cannot answer
// (it did not declare the capability) get an "unsupported" error at once,
// so a guest never hangs on a client that will never reply. The answers
// stay in the store until the host records them (Record consumes them): a
// guest evicted or lost before that asks again under the same keys and
// gets the same answers.
func (e *GuestEnv) Input(ctx context.Context, reqs []abi.InputRequest) ([]abi.InputResponse, error) {
	out := make([]abi.InputResponse, len(reqs))
	pending := make(map[string]abi.InputRequest, len(reqs))
	keys := make([]string, 0, len(reqs))
	index := make(map[string]int, len(reqs))
	for i, r := range reqs {
		if !e.Task.Accepting(r.Method) {
			out[i] = Unsupported(r.Method)
			continue
		}
		// The host keys every request, the same way in every run of the
		// task, so that a replay asks under the keys the lost run used.
		if r.Key == "" {
			return nil, fmt.Errorf("task %s: input request %d has no key", e.Task.ID, i)
		}
		pending[r.Key] = r
		keys = append(keys, r.Key)
		index[r.Key] = i
	}
	if len(pending) == 0 {
		return out, nil
	}
	if err := e.Store.RequestInput(ctx, e.Task.ID, pending); err != nil {
		return nil, fmt.Errorf("record input request: %w", err)
	}
	wait, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	resume := func() {}
	if e.Suspend != nil {
		resume = e.Suspend(func() { stop(host.ErrEvicted) })
	}
	answers, err := e.Store.AwaitAnswers(wait, e.Task.ID, keys)
	resume()
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(wait), host.ErrEvicted) {
			return nil, fmt.Errorf("task %s: %w", e.Task.ID, host.ErrEvicted)
		}
		return nil, fmt.Errorf("wait for answer: %w", err)
	}
	for key, resp := range answers {
		out[index[key]] = resp
	}
	return out, nil
}

// Detach turns the call into a task when its tool defers tasks and its
// client takes them (host.Detacher); the front end then answers the waiting
// client with a task handle.
func (e *GuestEnv) Detach(ctx context.Context) bool {
	if !e.Task.Detachable {
		return false
	}
	if err := e.Store.Detach(ctx, e.Task.ID); err != nil {
		e.Logger.Warn("could not turn the call into a task", "task", e.Task.ID, "error", err)
		return false
	}
	return true
}

// Log forwards a guest log line to watchers (the front end turns it into
// notifications/message); the host has already written it to its log.
func (e *GuestEnv) Log(level abi.LogLevel, msg string) {
	if e.Task.LogsMuted || level < e.Task.LogFloor {
		return // the client's log level filters it out: never published
	}
	data, _ := json.Marshal(tasks.LogData{Level: level, Message: msg})
	e.publish(tasks.Event{Kind: tasks.EventLog, TaskID: e.Task.ID, Data: data})
}

// Progress forwards a progress report to watchers.
func (e *GuestEnv) Progress(p abi.Progress) {
	data, _ := json.Marshal(p)
	e.publish(tasks.Event{Kind: tasks.EventProgress, TaskID: e.Task.ID, Data: data})
}

func (e *GuestEnv) publish(ev tasks.Event) {
	// A lost log line must be visible, but must not fail the guest.
	if err := e.Store.Publish(context.Background(), ev); err != nil {
		e.Logger.Warn("could not publish guest event", "task", e.Task.ID, "kind", ev.Kind, "error", err)
	}
}

// Unsupported is the answer to a request the client cannot take.
func Unsupported(method string) abi.InputResponse {
	return abi.InputResponse{Error: &abi.InputError{
		Code:    abi.ErrCodeUnsupported,
		Message: fmt.Sprintf("the client did not declare support for %s", method),
	}}
}

// Failed is the answer when the relay or the client failed.
func Failed(err error) abi.InputResponse {
	return abi.InputResponse{Error: &abi.InputError{Code: abi.ErrCodeFailed, Message: err.Error()}}
}
