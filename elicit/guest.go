// Package elicit relays a guest's input requests (elicitation, sampling,
// roots) to the client that owns its task, and the answers back to the
// guest, through the task Store. The worker side (GuestEnv) turns a blocked
// guest into a task in input_required; the front-end side (Relay) pushes
// pending requests to clients that take server-to-client requests.
//
// It must not reach into MCP sessions or wasm instances: clients are seen
// through the Client interface, guests through host.Env.
package elicit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// GuestEnv is the host.Env of one running task: what the guest asks for
// goes into the store, what the client answers comes back from it.
type GuestEnv struct {
	Store  tasks.Store
	Task   *tasks.Task
	Logger hclog.Logger
	// Suspend, if set, is called before the guest waits for answers; the
	// function it returns, after. The worker uses it to let other guests
	// run while this one waits for a person.
	Suspend func() (resume func())

	// run distinguishes keys of this run from those of an earlier run of
	// the same task (a redelivery), so a stale answer can never match.
	run  string
	next atomic.Int64
}

// NewGuestEnv returns the environment for one run of t.
func NewGuestEnv(store tasks.Store, t *tasks.Task, logger hclog.Logger) *GuestEnv {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &GuestEnv{Store: store, Task: t, Logger: logger, run: hex.EncodeToString(b[:])}
}

// Input records the requests the client can answer as pending, waits for
// every answer and returns them in order. Requests the client cannot answer
// (it did not declare the capability) get an "unsupported" error at once,
// so a guest never hangs on a client that will never reply.
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
		key := r.Key
		if key == "" {
			key = e.mintKey(r.Method)
		}
		pending[key] = r
		keys = append(keys, key)
		index[key] = i
	}
	if len(pending) == 0 {
		return out, nil
	}
	if err := e.Store.RequestInput(ctx, e.Task.ID, pending); err != nil {
		return nil, fmt.Errorf("record input request: %w", err)
	}
	resume := func() {}
	if e.Suspend != nil {
		resume = e.Suspend()
	}
	answers, err := e.Store.AwaitAnswers(ctx, e.Task.ID, keys)
	resume()
	if err != nil {
		return nil, fmt.Errorf("wait for answer: %w", err)
	}
	for key, resp := range answers {
		out[index[key]] = resp
	}
	return out, nil
}

// mintKey names one input request: readable for whoever debugs a session,
// unique within the task across runs.
func (e *GuestEnv) mintKey(method string) string {
	kind, _, _ := strings.Cut(method, "/")
	return fmt.Sprintf("%s-%s-%d", kind, e.run, e.next.Add(1))
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
