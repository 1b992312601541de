// Package worker runs queued tasks: it takes a task id from the queue, runs
// the tool's guest through the host with the task's elicit.GuestEnv, and
// records the outcome in the store. It owns the redelivery policy. It knows
// nothing of MCP: clients, sessions and protocol versions are the front
// end's.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

// Tools finds the plugin serving a tool; *host.Catalog is one.
type Tools interface {
	Lookup(name string) (host.ToolEntry, bool)
}

// Options configure a Worker. Zero values are defaults.
type Options struct {
	Store tasks.Store
	Tools Tools
	// Concurrency is how many tasks run at once; 0 means 8. A task waiting
	// for a human holds its slot.
	Concurrency int
	Logger      hclog.Logger
}

// Worker takes tasks from the store's queue and runs them.
type Worker struct {
	store  tasks.Store
	tools  Tools
	n      int
	logger hclog.Logger

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
}

// ErrTaskEnded is the cause given to a guest's context when its task was
// cancelled (or otherwise finished) elsewhere.
var ErrTaskEnded = errors.New("task ended")

// New returns a worker; Run starts it.
func New(opts Options) *Worker {
	w := &Worker{store: opts.Store, tools: opts.Tools, n: opts.Concurrency, logger: opts.Logger, running: map[string]context.CancelCauseFunc{}}
	if w.n <= 0 {
		w.n = 8
	}
	if w.logger == nil {
		w.logger = hclog.NewNullLogger()
	}
	return w
}

// Run works until ctx ends, then waits for the tasks it holds to stop.
func (w *Worker) Run(ctx context.Context) error {
	if _, err := tasks.NewWatcher(ctx, w.store, w.onEvent); err != nil {
		return fmt.Errorf("watch task store: %w", err)
	}
	var wg sync.WaitGroup
	for range w.n {
		wg.Go(func() { w.loop(ctx) })
	}
	wg.Wait()
	return nil
}

// onEvent stops a guest as soon as its task ends elsewhere (tasks/cancel).
func (w *Worker) onEvent(e tasks.Event) {
	if e.Kind != tasks.EventStatus || !e.Status.Terminal() {
		return
	}
	w.mu.Lock()
	cancel := w.running[e.TaskID]
	w.mu.Unlock()
	if cancel != nil {
		cancel(ErrTaskEnded)
	}
}

func (w *Worker) loop(ctx context.Context) {
	q := w.store.Queue()
	for {
		d, err := q.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.logger.Error("could not take work from the queue", "error", err)
			continue // Next blocks on the backend; a failing backend returns at its own pace
		}
		w.handle(ctx, d)
		if err := d.Ack(context.WithoutCancel(ctx)); err != nil {
			w.logger.Error("could not acknowledge task", "task", d.TaskID(), "error", err)
		}
	}
}

func (w *Worker) handle(ctx context.Context, d tasks.Delivery) {
	id := d.TaskID()
	t, err := w.store.Get(ctx, id)
	if err != nil {
		w.logger.Warn("queued task is gone", "task", id, "error", err)
		return
	}
	if t.Status.Terminal() {
		return
	}
	if d.Redelivered() && !t.Idempotent {
		w.fail(ctx, t, fmt.Sprintf("the worker running tool %s stopped before it finished, and the tool is not declared idempotent, so it was not run again", t.Tool))
		return
	}
	w.run(ctx, t)
}

// run executes t's guest and records how it ended.
func (w *Worker) run(ctx context.Context, t *tasks.Task) {
	entry, ok := w.tools.Lookup(t.Tool)
	if !ok {
		w.fail(ctx, t, fmt.Sprintf("tool %s is not served by any plugin any more", t.Tool))
		return
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[t.ID] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, t.ID)
		w.mu.Unlock()
	}()
	// The task may have been cancelled before we registered for the event.
	if cur, err := w.store.Get(ctx, t.ID); err == nil && cur.Status.Terminal() {
		return
	}

	env := elicit.NewGuestEnv(w.store, t, w.logger)
	res, err := entry.Plugin.Call(callCtx, t.Tool, t.Args, env)
	switch {
	case errors.Is(context.Cause(callCtx), ErrTaskEnded):
		return // cancelled through the store: that already recorded the outcome
	case ctx.Err() != nil:
		w.fail(ctx, t, "wasmhost shut down while the task was running")
	case err != nil:
		w.fail(ctx, t, err.Error())
	default:
		w.complete(ctx, t, res)
	}
}

func (w *Worker) complete(ctx context.Context, t *tasks.Task, res *abi.CallResult) {
	raw, err := json.Marshal(res)
	if err != nil {
		w.fail(ctx, t, fmt.Sprintf("encode result: %v", err))
		return
	}
	w.record(t, w.store.Complete(context.WithoutCancel(ctx), t.ID, raw))
}

func (w *Worker) fail(ctx context.Context, t *tasks.Task, msg string) {
	err := w.store.Fail(context.WithoutCancel(ctx), t.ID, msg)
	if err == nil {
		w.logger.Warn("task failed", "task", t.ID, "tool", t.Tool, "reason", msg)
	}
	w.record(t, err)
}

func (w *Worker) record(t *tasks.Task, err error) {
	switch {
	case err == nil:
	case errors.Is(err, tasks.ErrTerminal):
		w.logger.Debug("task ended elsewhere first", "task", t.ID, "error", err)
	default:
		w.logger.Error("could not record task outcome", "task", t.ID, "error", err)
	}
}
